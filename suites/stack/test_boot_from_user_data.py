"""What runs is what ships: the registry container against the user data EC2 hands the instance."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from fixtures.booted_registry import LOCAL_ENV_OVERRIDES, LOCAL_OVERRIDES, USER
from fixtures.instance_boot import BootScript, local_path, ssm_parameter_file_content
from provisioning import names
from provisioning.render import paths
from provisioning.render.registry_config import CONFIG_PATH_IN_CONTAINER, render_registry_config
from provisioning.secrets import htpasswd_matches

pytestmark = pytest.mark.stack

VARIANTS = ["redirect-on", "selfsigned"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_running_config_is_the_shipped_config_byte_for_byte(variant, booted_registries):
    registry = booted_registries(variant)
    major = registry.spec.registry.version_major

    running = registry.container.read_file(CONFIG_PATH_IN_CONTAINER[major])

    assert running == registry.registry_config()  # what the instance's cloud-init writes
    assert running == render_registry_config(registry.spec).encode("utf-8")  # what the renderer makes


@pytest.mark.parametrize("variant", VARIANTS)
def test_container_is_the_boot_scripts_docker_run_plus_the_listed_overrides_only(variant, booted_registries):
    registry = booted_registries(variant)
    run = registry.run
    script = BootScript.from_user_data(registry.user_data)
    assert script.registry_argv == run.docker_run_argv()  # the shipped script starts exactly this run

    inspected = registry.container.inspect()
    image_env = set(registry.container.container.image.attrs["Config"].get("Env") or [])
    env = dict(item.split("=", 1) for item in inspected["Config"]["Env"] if item not in image_env)

    assert inspected["Config"]["Image"] == run.image == registry.spec.registry.image
    assert tuple(inspected["Config"]["Cmd"]) == run.args
    assert inspected["HostConfig"]["NetworkMode"] == run.network
    assert inspected["HostConfig"]["LogConfig"] == {"Type": "json-file", "Config": dict(run.log_options)}
    assert inspected["Name"].lstrip("/").startswith(f"{run.name}-")  # LOCAL_OVERRIDES["--name"]
    # environment: the run's own (with the boot script's exports), and the listed overrides
    assert set(env) == set(run.environment(registry.boot_env)) | set(LOCAL_ENV_OVERRIDES)
    assert {key: env[key] for key in run.environment(registry.boot_env)} == run.environment(registry.boot_env)
    assert {key: env[key] for key in LOCAL_ENV_OVERRIDES} == dict(registry.overrides)
    # mounts: the run's, each from the local stand-in of the same instance path (TLS: listed override)
    mounts = {m["Destination"]: (m["Source"], m["RW"]) for m in inspected["Mounts"]}
    assert set(mounts) == {target for _, target, _ in run.volumes}
    for host, target, mode in run.volumes:
        source, writable = mounts[target]
        assert writable == (mode == "rw"), target
        if host == names.TLS_DIR and f"-v {names.TLS_DIR}" in LOCAL_OVERRIDES and registry.tls is not None:
            assert source == str(registry.tls.directory)
        else:
            assert source == str(local_path(registry.root, host)), target


@pytest.mark.parametrize("variant", VARIANTS)
def test_secrets_come_from_ssm_where_the_provisioner_put_them(variant, booted_registries):
    registry = booted_registries(variant)
    deployment = registry.deployment
    htpasswd = deployment.parameter(names.htpasswd_parameter(registry.spec))
    config = yaml.safe_load(registry.registry_config())

    served = registry.container.read_file(config["auth"]["htpasswd"]["path"])  # where the config looks

    assert served == ssm_parameter_file_content(htpasswd)
    assert htpasswd_matches(served.decode(), {USER: deployment.passwords[USER]})
    # the user data carries no secret: not the password, not the hash, not the local S3 key
    for secret in (deployment.passwords[USER], htpasswd.strip(), registry.overrides["REGISTRY_STORAGE_S3_SECRETKEY"]):
        assert secret not in registry.user_data


def test_shipped_tls_material_is_consistent_and_the_local_one_names_loopback(booted_registries):
    """The certificate in the user data, the key and CA in SSM belong together; locally the
    certificate is re-rendered for 127.0.0.1 (a listed override) because the shipped one names the
    instance's public name."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from provisioning.provisioner import tls_ca_parameter

    registry = booted_registries("selfsigned")
    deployment, spec = registry.deployment, registry.spec
    shipped_cert = x509.load_pem_x509_certificate(registry.written[paths.TLS_CERT_PATH])
    key = serialization.load_pem_private_key(
        deployment.parameter(names.tls_key_parameter(spec)).encode(), password=None
    )
    ca = x509.load_pem_x509_certificate(deployment.parameter(tls_ca_parameter(spec)).encode())

    def public(k: Any) -> bytes:
        return bytes(k.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))

    assert public(key.public_key()) == public(shipped_cert.public_key())
    shipped_cert.verify_directly_issued_by(ca)
    # the key file the boot script fetched is what a real instance would serve with
    assert local_path(registry.root, paths.TLS_KEY_PATH).read_bytes() == ssm_parameter_file_content(
        deployment.parameter(names.tls_key_parameter(spec))
    )

    assert registry.tls is not None
    config = yaml.safe_load(registry.registry_config())
    served = x509.load_pem_x509_certificate(registry.container.read_file(config["http"]["tls"]["certificate"]))
    san = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "127.0.0.1" in {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    shipped_names = shipped_cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(shipped_names.get_values_for_type(x509.DNSName)) <= set(san.get_values_for_type(x509.DNSName))

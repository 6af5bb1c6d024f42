"""What runs is what ships: the registry container against the user data EC2 hands the instance."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from fixtures.booted_registry import (
    LOCAL_ENV_OVERRIDES,
    LOCAL_OVERRIDES,
    USER,
    Deployment,
    StackVariant,
    create_hosted_zone,
    provision,
    stack_spec,
)
from fixtures.instance_boot import (
    BootScript,
    LocalBootError,
    instance_root,
    local_path,
    run_boot_steps,
    ssm_parameter_file_content,
)
from provisioning import names
from provisioning.aws.route53 import records_at
from provisioning.render import paths
from provisioning.render.boot_script import render_boot_script
from provisioning.render.registry_config import CONFIG_PATH_IN_CONTAINER, render_registry_config
from provisioning.secrets import htpasswd_matches
from provisioning.spec import spec_from_mapping

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


# --------------------------------------------------------------------------------------------------
# update_dns: what the boot script does to DNS, and what the local boot plays of it

STALE_ADDRESS = "192.0.2.44"  # TEST-NET-1: where a replaced spot instance left the name


def _dns_spec(mode: str) -> Any:
    dns: dict[str, str] = {"mode": mode}
    if mode in ("route53", "namecheap"):
        dns["hostname"] = "registry.example.com"
    if mode == "route53":
        dns["zone_id"] = "Z0SPOTREGSTACK"
    if mode == "namecheap":
        dns["password"] = "env:SPOTREG_DNS_PASSWORD"
    return spec_from_mapping(
        {
            "deployment": {"name": "dns-steps", "region": "us-east-1"},
            "storage": {"bucket": "spotreg-dns-steps"},
            "network": {"operator_cidrs": ["127.0.0.1/32"]},
            "dns": dns,
            "tls": {"mode": "none"},
            "registry": {"users": [{"name": USER, "password": "env:SPOTREG_PASSWORD_CI"}]},
        }
    )


@pytest.mark.parametrize(
    ("mode", "dns_steps"), [("route53", ["update_dns"]), ("namecheap", ["update_dns"]), ("eip", []), ("none", [])]
)
def test_the_registry_case_updates_dns_only_where_a_name_points_at_the_instance(mode, dns_steps):
    script = BootScript.parse(render_boot_script(_dns_spec(mode)))
    steps = [step[0] for step in script.registry_steps]

    assert steps == ["fetch_parameter", *dns_steps, "ensure_http_secret", "load_legacy_key", "start_registry"]


class _Ssm:
    """Just enough SSM for the steps before update_dns."""

    class exceptions:
        ParameterNotFound = KeyError

    def get_parameter(self, Name: str, WithDecryption: bool) -> dict[str, Any]:
        return {"Parameter": {"Value": f"value of {Name}"}}


def test_namecheap_is_refused_clearly_the_stack_cannot_reach_it(tmp_path: Path):
    script = BootScript.parse(render_boot_script(_dns_spec("namecheap")))

    with pytest.raises(LocalBootError, match=r"Namecheap.*cannot reach"):
        run_boot_steps(script, _Ssm(), instance_root(tmp_path), route53=object(), public_ipv4="198.51.100.7")


def test_route53_without_a_client_or_an_address_is_refused(tmp_path: Path):
    script = BootScript.parse(render_boot_script(_dns_spec("route53")))

    with pytest.raises(LocalBootError, match="needs a route53 client"):
        run_boot_steps(script, _Ssm(), instance_root(tmp_path))
    with pytest.raises(LocalBootError, match="no public IPv4 address"):
        run_boot_steps(script, _Ssm(), instance_root(tmp_path), route53=object(), public_ipv4="")


@pytest.fixture
def route53_deployment(moto_server, registry_image, stack_run_id) -> Iterator[Deployment]:
    """A deployment with dns.mode = "route53" in a zone of the session's moto server, torn down after."""
    route53 = moto_server.client("route53")
    domain = f"boot-{stack_run_id}.test"
    zone_id = create_hosted_zone(route53, domain)
    try:
        spec = stack_spec(
            StackVariant("route53", tls="none", redirect=True),
            registry_image,
            stack_run_id,
            dns={"mode": "route53", "hostname": f"registry.{domain}", "zone_id": zone_id},
        )
        deployment = provision(spec, moto_server, stack_run_id)
        try:
            yield deployment
        finally:
            deployment.provisioner.down()
    finally:
        route53.delete_hosted_zone(Id=zone_id)


def test_route53_boot_points_the_host_name_at_the_instance(route53_deployment, boot_registry):
    deployment = route53_deployment
    spec, route53 = deployment.spec, deployment.clients.route53
    zone_id, hostname = spec.dns.zone_id, spec.dns.hostname
    assert zone_id is not None and hostname is not None
    address = deployment.public_ipv4()
    assert address is not None
    # up pointed the name at the instance; a spot replacement boots with another address, and the name
    # still points at the old one: the boot must repoint it (and not touch up's owner marker)
    marker = records_at(route53, zone_id, hostname)["TXT"]
    route53.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": f"{hostname}.",
                        "Type": "A",
                        "TTL": 300,
                        "ResourceRecords": [{"Value": STALE_ADDRESS}],
                    },
                }
            ]
        },
    )
    assert records_at(route53, zone_id, hostname)["A"].values == (STALE_ADDRESS,)

    registry = boot_registry(deployment)

    script = BootScript.from_user_data(registry.user_data)
    assert [step for step in script.registry_steps if step[0] == "update_dns"] == [("update_dns",)]
    records = records_at(route53, zone_id, hostname)
    assert records["A"].values == (address,)
    assert records["A"].ttl == 60
    assert records["TXT"] == marker
    # one A record at the name, as Route 53 lists it (the boot's name has no trailing dot; up's has)
    listed = route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    a_records = [r for r in listed if r["Type"] == "A" and r["Name"].rstrip(".") == hostname]
    assert [[v["Value"] for v in r["ResourceRecords"]] for r in a_records] == [[address]], listed
    api = registry.api()
    try:
        assert api.request("GET", "/v2/").status_code == 200  # and the registry it booted answers
    finally:
        api.close()

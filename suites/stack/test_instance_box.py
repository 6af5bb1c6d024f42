"""What runs is what ships: the instance box boots the user data RunInstances was sent, with cloud-init,
systemd, bash, the AWS CLI and a Docker engine, and differs from EC2 only by the listed overrides."""

from __future__ import annotations

import json
import re
import socket
import ssl
from pathlib import Path

import pytest
import yaml

from fixtures.booted_registry import USER, BootedRegistry
from provisioning import names
from provisioning.names import tls_ca_parameter
from provisioning.rehearsal.overrides import BOX_OVERRIDES, UNIT_DROP_IN, UNIT_ENVIRONMENT, render_unit_drop_in
from provisioning.render import paths
from provisioning.render.container import render_front_run, render_registry_run
from provisioning.render.registry_config import CONFIG_PATH_IN_CONTAINER, render_registry_config
from provisioning.secrets import htpasswd_matches

pytestmark = pytest.mark.stack

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def registry(booted_registries) -> BootedRegistry:
    return booted_registries("redirect-on")


def test_cloud_init_is_done_without_errors_or_warnings(registry):
    status = registry.in_box("cloud-init", "status", "--long")
    assert "status: done" in status, status
    assert "DataSourceEc2Box" in status, status  # the Ec2 datasource read the metadata service
    result = json.loads(registry.in_box("cat", "/run/cloud-init/result.json"))
    assert result["v1"]["errors"] == [], result
    log = registry.in_box("cat", "/var/log/cloud-init.log")
    troubles = [line for line in log.splitlines() if re.search(r"\[(WARNING|ERROR|CRITICAL)\]|Traceback", line)]
    assert troubles == [], "\n".join(troubles)  # recoverable ones included
    assert registry.in_box("systemctl", "is-active", paths.REGISTRY_UNIT).strip() == "active"
    assert registry.box.exec(["systemctl", "is-system-running"])[1].strip() == "running"


def test_the_box_boots_the_user_data_run_instances_was_sent(registry):
    # cloud-init's copy of what it read from the metadata service, byte for byte
    # (packed: gzip -d refuses anything else)
    assert registry.in_box("gzip", "-dc", "/var/lib/cloud/instance/user-data.txt") == registry.user_data
    # and it came through IMDSv2: a session token first, no request refused
    served = registry.box.metadata.requests
    assert ("PUT", "/latest/api/token", 200) in served
    assert any(path.endswith("/user-data") and status == 200 for _, path, status in served)
    assert not [request for request in served if request[2] == 401], served
    # every file of write_files, where cloud-init put it
    document = yaml.safe_load(registry.user_data)
    for item in document["write_files"]:
        assert registry.in_box("cat", item["path"]) == item["content"], item["path"]
        assert registry.in_box("stat", "-c", "%a", item["path"]).strip() == item["permissions"].lstrip("0")


def test_running_config_is_the_shipped_config_byte_for_byte(registry):
    running = registry.container_file(CONFIG_PATH_IN_CONTAINER[registry.spec.registry.version_major])

    assert running == registry.registry_config()
    assert running == render_registry_config(registry.spec).encode("utf-8")


@pytest.mark.parametrize("render", [render_registry_run, render_front_run], ids=["registry", "front"])
def test_each_container_is_the_boot_scripts_docker_run_plus_the_listed_overrides_only(registry, render):
    run = render(registry.spec)
    inspected = registry.container(run.name)

    assert inspected["Name"] == f"/{run.name}"  # the shipped name: the instance's engine is its own
    assert inspected["Config"]["Image"] == run.image  # the spec's registry.image or registry.front_image
    assert tuple(inspected["Config"]["Cmd"]) == run.args
    assert inspected["HostConfig"]["NetworkMode"] == run.network == "host"
    assert inspected["HostConfig"]["AutoRemove"] is True  # --rm: systemd supervises it
    assert inspected["HostConfig"]["LogConfig"] == {"Type": "json-file", "Config": dict(run.log_options)}
    mounts = {m["Destination"]: (m["Source"], m["RW"]) for m in inspected["Mounts"]}
    assert mounts == {target: (host, mode == "rw") for host, target, mode in run.volumes}  # the instance's paths
    assert (inspected["HostConfig"].get("Tmpfs") or {}) == dict.fromkeys(run.tmpfs, "")
    image_env = set(json.loads(registry.in_box("docker", "image", "inspect", run.image))[0]["Config"]["Env"] or [])
    declared = [item for item in inspected["Config"]["Env"] if item not in image_env]
    unset = {item for item in declared if "=" not in item}  # "-e NAME" with NAME unset in the unit: no value
    assert unset <= set(run.optional_env), unset
    env = dict(item.split("=", 1) for item in declared if "=" in item)
    passed_through = {key: value for key, value in registry.box.unit_environment.items() if key in run.optional_env}
    assert set(env) == set(run.env) | set(run.inherited_env) | set(passed_through)
    assert set(passed_through) <= set(UNIT_ENVIRONMENT)
    assert {key: env[key] for key in passed_through} == passed_through


def test_the_box_differs_from_ec2_only_by_the_listed_overrides(registry):
    box = registry.box
    # the registry unit's environment: the drop-in, and only listed variables in it
    assert set(box.unit_environment) <= set(UNIT_ENVIRONMENT)
    assert registry.in_box("cat", UNIT_DROP_IN) == render_unit_drop_in(box.unit_environment)
    shown = registry.in_box("systemctl", "show", "-p", "Environment", "--value", paths.REGISTRY_UNIT).split()
    assert {item.split("=", 1)[0] for item in shown} == set(box.unit_environment)
    # the unit itself is the shipped one, and its drop-ins are the box's only
    unit = f"{paths.SYSTEMD_DIR}/{paths.REGISTRY_UNIT}"
    assert registry.in_box("cat", unit) == registry.shipped_file(unit).decode()
    drop_ins = registry.in_box("systemctl", "show", "-p", "DropInPaths", "--value", paths.REGISTRY_UNIT).split()
    assert drop_ins == [UNIT_DROP_IN]
    # the README's table is the list
    readme = README.read_text()
    for difference in BOX_OVERRIDES:
        assert f"| {difference} |" in readme, f"README lacks the box override {difference!r}"


def test_secrets_come_from_ssm_where_the_provisioner_put_them(registry):
    deployment, spec = registry.deployment, registry.spec
    htpasswd = deployment.parameter(names.htpasswd_parameter(spec))
    served = registry.container_file(paths.HTPASSWD_IN_CONTAINER, names.FRONT_CONTAINER_NAME)  # where the front looks
    assert served.decode() == htpasswd.rstrip("\n") + "\n"  # fetch_parameter's printf '%s\n'
    assert htpasswd_matches(served.decode(), {USER: deployment.passwords[USER]})
    assert registry.in_box("stat", "-c", "%a", names.HTPASSWD_PATH).strip() == "600"
    key = deployment.parameter(names.tls_key_parameter(spec))
    assert registry.in_box("cat", paths.TLS_KEY_PATH) == key.rstrip("\n") + "\n"
    assert registry.in_box("stat", "-c", "%a", paths.TLS_KEY_PATH).strip() == "600"
    for secret in (deployment.passwords[USER], htpasswd.strip(), key.strip()):
        assert secret not in registry.user_data  # the user data carries no secret


def test_the_registry_serves_the_shipped_certificate_for_the_instance_address(registry):
    from cryptography import x509

    shipped = x509.load_pem_x509_certificate(registry.shipped_file(paths.TLS_CERT_PATH))
    context = ssl.create_default_context(cafile=str(registry.ca_path))  # the CA from SSM, nothing else
    host, port = registry.address.rsplit(":", 1)
    with (
        socket.create_connection((host, int(port)), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        served = x509.load_der_x509_certificate(tls.getpeercert(binary_form=True) or b"")

    assert served == shipped  # verified by hostname (the address) and chain: no local certificate
    names_served = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert host in {str(ip) for ip in names_served.get_values_for_type(x509.IPAddress)}
    ca = x509.load_pem_x509_certificate(registry.deployment.parameter(tls_ca_parameter(registry.spec)).encode())
    served.verify_directly_issued_by(ca)

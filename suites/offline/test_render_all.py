"""Every valid spec (ordinary or hostile) renders every artifact, and the user data carries them byte-exact."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings

from fixtures.cloud_config import extract_write_file
from provisioning import names
from provisioning.render.boot_script import render_boot_script
from provisioning.render.caddyfile import render_caddyfile
from provisioning.render.container import render_proxy_run, render_registry_run
from provisioning.render.launch import render_launch_parameters
from provisioning.render.policy import render_assume_role_policy, render_registry_policy
from provisioning.render.registry_config import render_registry_config
from provisioning.render.security_group import render_ingress_rules, to_ip_permissions
from provisioning.render.user_data import MAX_USER_DATA_BYTES, pack_user_data
from provisioning.spec import Spec
from provisioning.spec_loading import spec_from_mapping
from suites.offline.render_samples import server_cert_for, user_data_for
from suites.offline.spec_strategies import valid_spec_mappings

RENDER = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def render_everything(spec: Spec) -> dict[str, Any]:
    user_data = user_data_for(spec)
    return {
        "policy": render_registry_policy(spec, "123456789012"),
        "trust": render_assume_role_policy(),
        "ingress": to_ip_permissions(render_ingress_rules(spec)),
        "config": render_registry_config(spec),
        "registry": render_registry_run(spec).docker_run_argv(),
        "proxy": render_proxy_run(spec),
        "caddyfile": render_caddyfile(spec) if spec.tls.mode == "letsencrypt" else None,
        "boot": render_boot_script(spec),
        "user_data": user_data,
        "launch": render_launch_parameters(
            spec,
            instance_type=spec.instance.types[0],
            image_id="ami-0123456789abcdef0",
            subnet_id=spec.instance.subnet_id,
            security_group_id="sg-0123456789abcdef0",
            instance_profile_arn="arn:aws:iam::123456789012:instance-profile/x",
            user_data=pack_user_data(user_data),
        ),
    }


def check_user_data(spec: Spec, artifacts: dict[str, Any]) -> None:
    user_data = artifacts["user_data"]
    assert len(pack_user_data(user_data)) < MAX_USER_DATA_BYTES
    assert extract_write_file(user_data, names.REGISTRY_CONFIG_PATH) == artifacts["config"].encode()
    assert extract_write_file(user_data, names.BOOT_SCRIPT_PATH) == artifacts["boot"].encode()
    if artifacts["caddyfile"] is not None:
        assert extract_write_file(user_data, "/etc/spotreg/caddy/Caddyfile") == artifacts["caddyfile"].encode()
    cert = server_cert_for(spec)
    if cert is not None:
        assert extract_write_file(user_data, "/etc/spotreg/tls/server.crt") == cert
    # Nothing the spec holds only for AWS reaches the instance: tags and user names stay out. (A tag
    # with an empty value, `auth: ""`, would read like the registry config's own `auth:` key: skipped.)
    lines = {line.strip() for line in user_data.splitlines()}
    for key, value in spec.tags.items():
        if value.strip():
            assert f"{key}: {value}".strip() not in lines
    assert render_everything(spec) == artifacts  # deterministic


@RENDER
@given(valid_spec_mappings())
def test_every_valid_spec_renders_every_artifact(mapping: dict[str, Any]) -> None:
    spec = spec_from_mapping(mapping)
    artifacts = render_everything(spec)
    assert yaml.safe_load(artifacts["config"])["storage"]["s3"]["bucket"] == spec.storage.bucket
    check_user_data(spec, artifacts)


@RENDER
@given(valid_spec_mappings(nasty=True))
def test_hostile_specs_render_and_round_trip_byte_exact(mapping: dict[str, Any]) -> None:
    spec = spec_from_mapping(mapping)
    artifacts = render_everything(spec)
    config = yaml.safe_load(artifacts["config"])
    assert config["storage"]["s3"]["rootdirectory"] == spec.storage.rootdirectory
    check_user_data(spec, artifacts)

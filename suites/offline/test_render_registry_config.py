"""The registry's config.yml: S3 storage, loopback without auth or TLS (the front's), per-major differences,
no secrets."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given, settings

from provisioning.render.container import render_registry_run
from provisioning.render.registry_config import CONFIG_PATH_IN_CONTAINER, render_registry_config
from provisioning.spec_loading import spec_from_mapping
from suites.offline.render_samples import MODES, matrix_spec, mode_id
from suites.offline.spec_strategies import example_mapping, valid_spec_mappings


def config_of(**sections: dict[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(render_registry_config(spec_from_mapping(example_mapping(**sections))))
    return loaded


def container_path(spec_mapping: dict[str, Any], host_path: str) -> str:
    """Where a host path shows up inside the registry container."""
    run = render_registry_run(spec_from_mapping(spec_mapping))
    for host, container, _ in run.volumes:
        if host_path.startswith(host + "/"):
            return container + host_path[len(host) :]
    raise AssertionError(f"{host_path} is not mounted")


@settings(max_examples=40, deadline=None)
@given(valid_spec_mappings(nasty=True))
def test_config_carries_the_spec_values_exactly(mapping: dict[str, Any]) -> None:
    spec = spec_from_mapping(mapping)
    text = render_registry_config(spec)
    assert text == render_registry_config(spec)
    config = yaml.safe_load(text)
    s3 = config["storage"]["s3"]
    assert (s3["region"], s3["bucket"], s3["rootdirectory"]) == (
        spec.deployment.region,
        spec.storage.bucket,
        spec.storage.rootdirectory,
    )
    assert config["storage"]["redirect"] == {"disable": not spec.storage.redirect}
    assert config["health"]["storagedriver"]["interval"] == f"{spec.registry.health_interval_seconds}s"
    assert "secret" not in config["http"]
    assert set(config) == {"version", "log", "storage", "http", "health"}  # no auth: the front checks


def test_major_2_config() -> None:
    config = config_of()
    assert config["version"] == 0.1
    assert config["storage"] == {
        "s3": {
            "region": "us-east-1",
            "bucket": "example-spotreg-images",
            "rootdirectory": "/registry",
            "encrypt": True,
            "secure": True,
            "chunksize": 10 * 1024 * 1024,
            "objectacl": "bucket-owner-full-control",
            "v4auth": True,
        },
        "redirect": {"disable": False},
        "delete": {"enabled": True},
        "cache": {"blobdescriptor": "inmemory"},
        "maintenance": {"uploadpurging": {"enabled": True, "age": "168h", "interval": "24h", "dryrun": False}},
    }
    assert config["http"] == {"addr": "127.0.0.1:5001", "headers": {"X-Content-Type-Options": ["nosniff"]}}
    assert config["health"] == {"storagedriver": {"enabled": True, "interval": "300s", "threshold": 3}}


def test_major_3_differs_only_in_s3_addressing() -> None:
    two, three = config_of(), config_of(registry={"image": "docker.io/library/registry:3.0.0"})
    assert three["storage"]["s3"].pop("forcepathstyle") is False
    assert two["storage"]["s3"].pop("v4auth") is True
    assert two == three
    assert CONFIG_PATH_IN_CONTAINER == {2: "/etc/docker/registry/config.yml", 3: "/etc/distribution/config.yml"}


@pytest.mark.parametrize("modes", MODES, ids=mode_id)
def test_loopback_plain_http_in_every_mode(modes: tuple[str, str]) -> None:
    config = yaml.safe_load(render_registry_config(matrix_spec(modes)))
    assert config["http"]["addr"] == "127.0.0.1:5001"  # the front listens on the registry port
    assert "tls" not in config["http"] and "auth" not in config


def test_redirect_off_and_health_interval() -> None:
    config = config_of(storage={"redirect": False}, registry={"health_interval_seconds": 60})
    assert config["storage"]["redirect"] == {"disable": True}
    assert config["health"]["storagedriver"]["interval"] == "60s"


@pytest.mark.parametrize("image", ["docker.io/library/registry:2.8.3", "docker.io/library/registry:3.0.0"])
def test_paths_in_config_are_where_the_container_mounts_them(image: str) -> None:
    mapping = example_mapping(registry={"image": image})
    major = int(image.rsplit(":", 1)[1][0])
    assert container_path(mapping, "/etc/spotreg/registry/config.yml") == CONFIG_PATH_IN_CONTAINER[major]

"""The registry and proxy containers as data, and the docker run argv they make."""

from __future__ import annotations

import dataclasses

import pytest

from provisioning.render.container import ContainerRun, render_front_run, render_proxy_run, render_registry_run
from provisioning.spec_loading import spec_from_mapping
from suites.offline.render_samples import MODES, matrix_spec, mode_id
from suites.offline.spec_strategies import example_mapping


def test_registry_run_selfsigned_major_2() -> None:
    run = render_registry_run(spec_from_mapping(example_mapping()))
    assert run == ContainerRun(
        name="spotreg-registry",
        image="docker.io/library/registry:2.8.3",
        network="host",
        volumes=(("/etc/spotreg/registry", "/etc/docker/registry", "ro"),),  # users and TLS: the front's
        env=(),
        args=("serve", "/etc/docker/registry/config.yml"),
        inherited_env=("REGISTRY_HTTP_SECRET",),
        # legacy mode's key; the instance box's S3 endpoint (unset on EC2: -e NAME then sets nothing)
        optional_env=(
            "REGISTRY_STORAGE_S3_ACCESSKEY",
            "REGISTRY_STORAGE_S3_SECRETKEY",
            "REGISTRY_STORAGE_S3_REGIONENDPOINT",
        ),
    )
    assert run.environment({"REGISTRY_HTTP_SECRET": "x"}) == {"REGISTRY_HTTP_SECRET": "x"}
    assert run.docker_run_argv() == (
        "docker", "run", "--rm", "--name", "spotreg-registry", "--network", "host",
        "--log-driver", "json-file", "--log-opt", "max-size=10m", "--log-opt", "max-file=3",
        "-v", "/etc/spotreg/registry:/etc/docker/registry:ro",
        "-e", "REGISTRY_HTTP_SECRET",
        "-e", "REGISTRY_STORAGE_S3_ACCESSKEY",
        "-e", "REGISTRY_STORAGE_S3_SECRETKEY",
        "-e", "REGISTRY_STORAGE_S3_REGIONENDPOINT",
        "docker.io/library/registry:2.8.3", "serve", "/etc/docker/registry/config.yml",
    )  # fmt: skip


def test_registry_run_major_3_turns_tracing_export_off() -> None:
    run = render_registry_run(spec_from_mapping(example_mapping(registry={"image": "registry:3.0.0"})))
    assert run.volumes[0] == ("/etc/spotreg/registry", "/etc/distribution", "ro")
    assert run.args == ("serve", "/etc/distribution/config.yml")
    assert run.env == (("OTEL_TRACES_EXPORTER", "none"),)
    argv = run.docker_run_argv()
    assert argv[argv.index("OTEL_TRACES_EXPORTER=none") - 1] == "-e"


@pytest.mark.parametrize("modes", MODES, ids=mode_id)
def test_secrets_are_passed_by_name_only(modes: tuple[str, str]) -> None:
    spec = matrix_spec(modes)
    registry = render_registry_run(spec)
    argv = registry.docker_run_argv()
    assert argv[argv.index("REGISTRY_HTTP_SECRET") - 1] == "-e"
    assert not any(word.startswith("REGISTRY_HTTP_SECRET=") for word in argv)
    assert argv[len(argv) - len(registry.args) - 1] == registry.image
    assert [host for host, _, _ in registry.volumes] == ["/etc/spotreg/registry"]  # no users, no TLS key
    assert all(mode == "ro" for _, _, mode in registry.volumes)


@pytest.mark.parametrize("modes", MODES, ids=mode_id)
def test_proxy_only_for_letsencrypt(modes: tuple[str, str]) -> None:
    proxy = render_proxy_run(matrix_spec(modes))
    if modes[0] != "letsencrypt":
        assert proxy is None
        return
    assert proxy is not None
    assert proxy.name == "spotreg-proxy" and proxy.image == "docker.io/library/caddy:2.8.4"
    assert proxy.network == "host"
    assert ("/etc/spotreg/caddy", "/etc/caddy", "ro") in proxy.volumes
    assert {container for _, container, mode in proxy.volumes if mode == "rw"} == {"/data", "/config"}
    assert proxy.args[-4:] == ("--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile")
    assert proxy.inherited_env == ()


def test_environment_takes_inherited_values_from_the_caller() -> None:
    run = ContainerRun(name="n", image="i", env=(("A", "1"),), inherited_env=("S",))
    assert run.environment({"S": "secret", "OTHER": "x"}) == {"A": "1", "S": "secret"}
    with pytest.raises(KeyError, match="S"):
        run.environment({})


def test_overrides_are_plain_dataclass_replacements() -> None:
    run = render_front_run(spec_from_mapping(example_mapping()))
    local = dataclasses.replace(
        run,
        image="spotreg/nginx:1.22.1-debian",
        volumes=tuple((f"/tmp/x{c}" if c == "/certs" else h, c, m) for h, c, m in run.volumes),
        env=(*run.env, ("REGISTRY_STORAGE_S3_REGIONENDPOINT", "http://127.0.0.1:9000")),
    )
    argv = local.docker_run_argv()
    assert "/tmp/x/certs:/certs:ro" in argv and "REGISTRY_STORAGE_S3_REGIONENDPOINT=http://127.0.0.1:9000" in argv
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.image = "other"  # type: ignore[misc]


def test_no_log_options_means_the_engine_default() -> None:
    argv = ContainerRun(name="n", image="i", log_options=()).docker_run_argv()
    assert argv == ("docker", "run", "--rm", "--name", "n", "--network", "host", "i")

"""The front (nginx before the registry): its config per TLS mode, its container, its unit, and the
registry behind it (loopback, no auth). The stack tier boots it; here the rendered text is held."""

from __future__ import annotations

import re

import pytest
import yaml

from provisioning import names
from provisioning.render import paths
from provisioning.render.boot_script import render_boot_script
from provisioning.render.container import render_front_run, render_registry_run
from provisioning.render.front_config import AUTH_CACHE_SECONDS, CONTENT_CACHE_SECONDS, render_front_config
from provisioning.render.registry_config import render_registry_config
from provisioning.render.user_data import pack_user_data, render_write_files, unpack_user_data
from provisioning.spec import Spec
from suites.offline.render_samples import MODES, matrix_spec, mode_id

DIGEST = "sha256:" + "a1" * 32


def spec_of(tls_mode: str) -> Spec:
    return matrix_spec((tls_mode, "route53"))


def cached_locations(config: str) -> dict[str, str]:
    """Each regex location's pattern, with the body of its block."""
    return dict(re.findall(r'location ~ "([^"]+)" \{(.*?)\n        \}', config, re.S))


@pytest.mark.parametrize(
    ("tls_mode", "listen"),
    [
        ("none", ["listen 443;", "listen [::]:443;"]),
        ("selfsigned", ["listen 443 ssl;", "listen [::]:443 ssl;"]),
        ("letsencrypt", ["listen 127.0.0.1:5000;"]),
    ],
)
def test_front_listens_where_operators_connect(tls_mode: str, listen: list[str]) -> None:
    config = render_front_config(spec_of(tls_mode))
    assert re.findall(r"^        (listen (?!unix).*;)$", config, re.M) == listen  # IPv4 and IPv6, as the registry
    assert (paths.TLS_CERT_IN_CONTAINER in config) == (tls_mode == "selfsigned")
    assert f"server {paths.REGISTRY_ADDR};" in config
    forwarded = "$http_x_forwarded_proto" if tls_mode == "letsencrypt" else "$scheme"
    assert f"proxy_set_header X-Forwarded-Proto {forwarded};" in config


def test_the_registry_behind_it_has_no_auth_no_tls_and_listens_on_loopback() -> None:
    for tls_mode in ("none", "selfsigned", "letsencrypt"):
        config = yaml.safe_load(render_registry_config(spec_of(tls_mode)))
        assert config["http"]["addr"] == paths.REGISTRY_ADDR == "127.0.0.1:5001"
        assert "auth" not in config
        assert "tls" not in config["http"]


def test_only_verified_passwords_are_remembered_and_only_briefly() -> None:
    config = render_front_config(spec_of("none"))
    auth_block = config.split("location = /.spotreg-auth {", 1)[1].split("}", 1)[0]
    assert "proxy_cache_key $http_authorization;" in auth_block
    assert re.findall(r"proxy_cache_valid ([^;]+);", auth_block) == [f"204 401 {AUTH_CACHE_SECONDS}s"]
    assert "proxy_cache_bypass $anonymous;" in auth_block and "proxy_no_cache $anonymous;" in auth_block
    assert "auth_basic_user_file /auth/htpasswd;" in config
    assert 'proxy_set_header Authorization "";' in config  # the registry never sees a password
    assert "auth_request /.spotreg-auth;" in config
    assert "/var/cache/spotreg-front/auth" in config


def test_only_content_addressed_answers_are_cached() -> None:
    locations = cached_locations(render_front_config(spec_of("none")))
    assert len(locations) == 2
    cacheable = [f"/v2/team/app/manifests/{DIGEST}", f"/v2/app/blobs/{DIGEST}"]
    never = ["/v2/app/manifests/latest", "/v2/app/tags/list", "/v2/_catalog", f"/v2/app/blobs/uploads/{DIGEST}x"]
    for path in cacheable:
        assert sum(bool(re.fullmatch(pattern, path)) for pattern in locations) == 1, path
    for path in never:
        assert not any(re.fullmatch(pattern, path) for pattern in locations), path
    manifests, blobs = (locations[p] for p in locations)
    assert f"proxy_cache_valid 200 {CONTENT_CACHE_SECONDS}s;" in manifests
    assert re.findall(r"proxy_cache_valid ([^;]+);", blobs) == [f"307 {CONTENT_CACHE_SECONDS}s"]  # never bytes


@pytest.mark.parametrize("modes", MODES, ids=mode_id)
def test_front_container_unit_and_boot_step(modes: tuple[str, str]) -> None:
    spec = matrix_spec(modes)
    run = render_front_run(spec)
    mounted = {container: host for host, container, _ in run.volumes}
    assert mounted[paths.FRONT_CONFIG_DIR_IN_CONTAINER] == paths.FRONT_CONFIG_DIR
    assert mounted[paths.AUTH_DIR_IN_CONTAINER] == paths.AUTH_DIR
    assert (paths.CERTS_DIR_IN_CONTAINER in mounted) == (spec.tls.mode == "selfsigned")
    assert all(mode == "ro" for _, _, mode in run.volumes)
    assert run.tmpfs == (paths.FRONT_CACHE_DIR_IN_CONTAINER,)
    argv = run.docker_run_argv()
    assert argv[argv.index("--tmpfs") + 1] == paths.FRONT_CACHE_DIR_IN_CONTAINER
    assert run.image == spec.registry.front_image
    registry_mounts = {container for _, container, _ in render_registry_run(spec).volumes}
    assert registry_mounts.isdisjoint({paths.AUTH_DIR_IN_CONTAINER, paths.CERTS_DIR_IN_CONTAINER})
    files = {
        entry["path"]: entry["content"]
        for entry in render_write_files(spec, b"cert" if spec.tls.mode == "selfsigned" else None)
    }
    assert files[paths.FRONT_CONFIG_PATH] == render_front_config(spec)
    unit = files[f"{paths.SYSTEMD_DIR}/{paths.FRONT_UNIT}"]
    assert f"ExecStart={names.BOOT_SCRIPT_PATH} front" in unit
    assert f"After=docker.service network-online.target {paths.REGISTRY_UNIT}" in unit
    script = render_boot_script(spec)
    start_front = script.split("start_front() {", 1)[1].split("\n}", 1)[0]
    waits_for = re.search(r"until (.*); do sleep 1; done", start_front)
    assert waits_for is not None
    assert '"$REGISTRY_URL"' in waits_for.group(1) and "$HTPASSWD_FILE" in waits_for.group(1)
    assert ("$TLS_KEY_FILE" in waits_for.group(1)) == (spec.tls.mode == "selfsigned")
    assert "        front)\n            start_front\n" in script


def test_packed_user_data_round_trips_and_plain_user_data_still_reads() -> None:
    text = "#cloud-config\nwrite_files: []\n" + "x" * 5000
    packed = pack_user_data(text)
    assert packed.startswith(b"\x1f\x8b") and len(packed) < len(text) / 10
    assert pack_user_data(text) == packed  # no timestamp: the same spec sends the same bytes
    assert unpack_user_data(packed) == text
    assert unpack_user_data(text.encode()) == text


def test_paths_in_the_front_config_are_where_its_container_mounts_them() -> None:
    spec = spec_of("selfsigned")
    config = render_front_config(spec)
    run = render_front_run(spec)
    in_container = {
        host + path[len(container) :]: path
        for host, container, _ in run.volumes
        for path in re.findall(r"(?:auth_basic_user_file|ssl_certificate|ssl_certificate_key) ([^;]+);", config)
        if path.startswith(container + "/")
    }
    assert in_container == {
        names.HTPASSWD_PATH: "/auth/htpasswd",
        paths.TLS_CERT_PATH: paths.TLS_CERT_IN_CONTAINER,
        paths.TLS_KEY_PATH: paths.TLS_KEY_IN_CONTAINER,
    }
    assert run.args == ("nginx", "-c", paths.FRONT_CONFIG_IN_CONTAINER)
    assert paths.FRONT_CONFIG_IN_CONTAINER.startswith(paths.FRONT_CONFIG_DIR_IN_CONTAINER + "/")

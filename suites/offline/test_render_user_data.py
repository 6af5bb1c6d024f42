"""The cloud-config user data: valid for cloud-init, every artifact byte-exact, units systemd accepts,
no secret, < 16 KiB."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from fixtures.cloud_config import extract_write_file
from provisioning import names
from provisioning.render.boot_script import render_boot_script
from provisioning.render.caddyfile import render_caddyfile
from provisioning.render.front_config import render_front_config
from provisioning.render.registry_config import render_registry_config
from provisioning.render.user_data import (
    MAX_USER_DATA_BYTES,
    REFRESH_INTERVAL_SECONDS,
    REFRESH_JITTER_SECONDS,
    USERS_TAKE_EFFECT_WITHIN_SECONDS,
    pack_user_data,
    render_user_data,
)
from provisioning.spec import Spec
from provisioning.spec_loading import spec_from_mapping
from suites.offline.render_samples import (
    MODES,
    matrix_spec,
    matrix_user_data,
    mode_id,
    run_in_parallel,
    tls_material,
    user_data_for,
)
from suites.offline.spec_strategies import example_mapping

CLOUD_INIT = shutil.which("cloud-init")
README = Path(__file__).resolve().parents[2] / "README.md"
SYSTEM_UNITS = Path("/lib/systemd/system")
UNIT_DIR = "/etc/systemd/system/"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
REGISTRY_UNIT = "/etc/systemd/system/spotreg-registry.service"
PROXY_UNIT = "/etc/systemd/system/spotreg-proxy.service"
FRONT_UNIT = "/etc/systemd/system/spotreg-front.service"
REFRESH_UNIT = "/etc/systemd/system/spotreg-refresh.service"
REFRESH_TIMER = "/etc/systemd/system/spotreg-refresh.timer"


def expected_files(spec: Spec, cert: bytes | None) -> dict[str, tuple[str, bytes]]:
    """path -> (permissions, bytes) of what the instance must get (units checked separately)."""
    files = {
        names.REGISTRY_CONFIG_PATH: ("0644", render_registry_config(spec).encode()),
        "/etc/spotreg/front/nginx.conf": ("0644", render_front_config(spec).encode()),
        names.BOOT_SCRIPT_PATH: ("0755", render_boot_script(spec).encode()),
    }
    if cert is not None:
        files["/etc/spotreg/tls/server.crt"] = ("0644", cert)
    if spec.tls.mode == "letsencrypt":
        files["/etc/spotreg/caddy/Caddyfile"] = ("0644", render_caddyfile(spec).encode())
    return files


def largest_spec(tls_mode: str) -> Spec:
    """Every field that reaches the user data at its longest."""
    label = "a" * 63
    mapping = example_mapping(
        storage={"bucket": "b" * 63, "rootdirectory": "/" + "r" * 254},
        network={"operator_cidrs": [f"2001:db8:{i:x}:ffff:ffff:ffff:ffff:0/112" for i in range(50)],
                 "ssh": True, "ssh_cidrs": [f"10.{i}.0.0/16" for i in range(50)]},
        dns={"mode": "namecheap", "hostname": ".".join([label, label, label, "a" * 61]),
             "password": "ssm:/" + "p" * 1000, "zone_id": None},
        tls={"mode": tls_mode, "email": "e" * 64 + "@" + "d" * 63 + ".com", "proxy_image": "c" * 240 + ":" + "t" * 14},
        registry={"image": "i" * 183 + "@sha256:" + "0" * 64, "major": 3,
                  "port": 5000 if tls_mode == "letsencrypt" else 443},
    )  # fmt: skip
    mapping["dns"].pop("zone_id")
    mapping["deployment"]["name"] = "d" * 32
    return spec_from_mapping(mapping)


# --- cloud-init's own schema check, every mode, in one parallel batch --------------------------------


@pytest.fixture(scope="module")
def schema_results(tmp_path_factory: pytest.TempPathFactory) -> dict[Any, tuple[int, str]]:
    if CLOUD_INIT is None:
        pytest.skip("cloud-init is not installed (Debian: apt-get install cloud-init)")
    directory = tmp_path_factory.mktemp("user-data")
    commands = {}
    for modes in MODES:
        path = directory / f"{mode_id(modes)}.yaml"
        path.write_text(matrix_user_data(modes), encoding="utf-8")
        commands[modes] = [CLOUD_INIT, "schema", "--config-file", str(path)]
    return run_in_parallel(commands)


@pytest.mark.parametrize("modes", MODES, ids=mode_id)
def test_cloud_init_schema_passes(schema_results: dict[Any, tuple[int, str]], modes: tuple[str, str]) -> None:
    status, output = schema_results[modes]
    assert status == 0 and "Valid cloud-config" in output, output


# --- contents -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("modes", MODES, ids=mode_id)
def test_user_data_contents_per_mode(modes: tuple[str, str]) -> None:
    spec = matrix_spec(modes)
    text = matrix_user_data(modes)
    assert text.startswith("#cloud-config\n")
    document = yaml.safe_load(text)
    assert list(document) == ["packages", "write_files", "runcmd"]
    assert document["packages"] == ["docker"]
    cert = tls_material().server_cert_pem if spec.tls.mode == "selfsigned" else None
    files = expected_files(spec, cert)
    proxy = [PROXY_UNIT] if spec.tls.mode == "letsencrypt" else []
    assert [entry["path"] for entry in document["write_files"]] == [
        *files, REGISTRY_UNIT, FRONT_UNIT, REFRESH_UNIT, REFRESH_TIMER, *proxy
    ]  # fmt: skip
    for entry in document["write_files"]:
        assert "owner" not in entry  # cloud-init's default: root:root
        if entry["path"] in files:
            assert entry["permissions"] == files[entry["path"]][0]
            assert extract_write_file(text, entry["path"]) == files[entry["path"]][1]
        else:
            assert entry["permissions"] == "0644"
    assert document["runcmd"] == [
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", "--now", "docker"],
        [
            "systemctl",
            "enable",
            "--now",
            *(Path(unit).name for unit in [REGISTRY_UNIT, FRONT_UNIT, REFRESH_TIMER, *proxy]),
        ],
    ]
    assert len(pack_user_data(text)) < MAX_USER_DATA_BYTES


@pytest.mark.parametrize("modes", MODES, ids=mode_id)
def test_no_secret_in_user_data(modes: tuple[str, str]) -> None:
    spec = matrix_spec(modes)
    text = matrix_user_data(modes)
    assert "PRIVATE KEY" not in text
    assert not re.search(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b", text)
    assert not re.search(r"(?i)aws_secret_access_key|aws_session_token|REGISTRY_HTTP_SECRET=[^$]", text)
    for user in spec.registry.users:
        assert user.password not in text
    if spec.dns.password is not None:
        assert spec.dns.password not in text


def test_registry_unit() -> None:
    unit = extract_write_file(matrix_user_data(("selfsigned", "route53")), REGISTRY_UNIT).decode()
    sections = dict(re.findall(r"\[(\w+)\]\n(.*?)(?=\n\[|\Z)", unit, flags=re.S))
    assert set(sections) == {"Unit", "Service", "Install"}
    settings = {line.split("=", 1)[0]: line.split("=", 1)[1] for line in unit.splitlines() if "=" in line}
    assert settings["Requires"] == "docker.service"
    assert settings["After"] == "docker.service network-online.target"
    assert settings["Wants"] == "network-online.target"
    assert settings["ExecStart"] == names.BOOT_SCRIPT_PATH
    assert settings["Restart"] == "always" and settings["RestartSec"] == "5"
    assert settings["WantedBy"] == "multi-user.target"


def test_proxy_unit_runs_the_boot_script_for_the_proxy() -> None:
    unit = extract_write_file(matrix_user_data(("letsencrypt", "route53")), PROXY_UNIT).decode()
    assert f"ExecStart={names.BOOT_SCRIPT_PATH} proxy\n" in unit
    assert "After=docker.service network-online.target spotreg-front.service\n" in unit
    assert "Restart=always\n" in unit


def unit_settings(unit: str) -> dict[str, dict[str, str]]:
    """A unit file's settings by section (each key once in these units)."""
    sections: dict[str, dict[str, str]] = {}
    for line in unit.splitlines():
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
        elif "=" in line:
            key, value = line.split("=", 1)
            assert key not in current, line
            current[key] = value
    return sections


@pytest.mark.parametrize("modes", MODES, ids=mode_id)
def test_a_timer_refreshes_the_users_every_minute_in_every_mode(modes: tuple[str, str]) -> None:
    text = matrix_user_data(modes)
    service = unit_settings(extract_write_file(text, REFRESH_UNIT).decode())
    timer = unit_settings(extract_write_file(text, REFRESH_TIMER).decode())
    # the service runs the boot script once, bounded; it is started by the timer, never enabled itself
    assert service["Service"] == {
        "Type": "oneshot",
        "ExecStart": f"{names.BOOT_SCRIPT_PATH} refresh",
        "TimeoutStartSec": "300",
    }
    assert "Install" not in service
    # the timer: a first run a minute after it starts (at boot), then a minute after each run started
    interval, jitter = str(REFRESH_INTERVAL_SECONDS), str(REFRESH_JITTER_SECONDS)
    assert timer["Timer"] == {
        "OnActiveSec": interval,
        "OnUnitActiveSec": interval,
        "RandomizedDelaySec": jitter,
        "AccuracySec": "1",  # systemd's default would let it slip by a minute
    }
    assert timer["Install"] == {"WantedBy": "timers.target"}
    # the README's promise covers the longest wait the timer allows, and says so
    assert REFRESH_INTERVAL_SECONDS + REFRESH_JITTER_SECONDS + 1 < USERS_TAKE_EFFECT_WITHIN_SECONDS
    assert f"within {USERS_TAKE_EFFECT_WITHIN_SECONDS} seconds" in README.read_text()


@pytest.fixture(scope="module")
def systemd_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root for ``systemd-analyze verify --root``: this host's system units, the boot script's path."""
    if SYSTEMD_ANALYZE is None or not SYSTEM_UNITS.is_dir():
        pytest.skip("systemd-analyze or the system's units are missing (Debian: apt-get install systemd)")
    root = tmp_path_factory.mktemp("systemd-root")
    shutil.copytree(SYSTEM_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    script = root / names.BOOT_SCRIPT_PATH.lstrip("/")
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    (root / "etc/systemd/system").mkdir(parents=True)
    return root


@pytest.mark.parametrize("modes", [("selfsigned", "none"), ("letsencrypt", "route53")], ids=mode_id)
def test_systemd_accepts_every_shipped_unit(systemd_root: Path, modes: tuple[str, str]) -> None:
    text = matrix_user_data(modes)
    paths = [entry["path"] for entry in yaml.safe_load(text)["write_files"] if entry["path"].startswith(UNIT_DIR)]
    units = [Path(path).name for path in paths]
    assert "spotreg-refresh.timer" in units
    for path in paths:
        (systemd_root / path.lstrip("/")).write_bytes(extract_write_file(text, path))
    result = subprocess.run(
        [SYSTEMD_ANALYZE or "systemd-analyze", "verify", "--man=no", f"--root={systemd_root}", *units],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_selfsigned_ships_the_certificate_but_never_the_key() -> None:
    text = matrix_user_data(("selfsigned", "none"))
    assert extract_write_file(text, "/etc/spotreg/tls/server.crt") == tls_material().server_cert_pem
    with pytest.raises(KeyError):
        extract_write_file(text, "/etc/spotreg/tls/server.key")


def test_certificate_is_needed_exactly_for_selfsigned() -> None:
    with pytest.raises(ValueError, match="server_cert_pem"):
        render_user_data(matrix_spec(("selfsigned", "none")))
    with pytest.raises(ValueError, match="server_cert_pem"):
        render_user_data(matrix_spec(("none", "none")), tls_material().server_cert_pem)


@pytest.mark.parametrize("tls_mode", ["letsencrypt", "selfsigned", "none"])
def test_largest_user_data_stays_under_the_ec2_limit(tls_mode: str) -> None:
    spec = largest_spec(tls_mode)
    if tls_mode == "none":
        # a plain-HTTP registry is not for the world: keep the largest spec valid
        assert not spec.open_to_world
    text = user_data_for(spec)
    size = len(pack_user_data(text))  # what EC2 is sent
    assert size < MAX_USER_DATA_BYTES, size
    assert yaml.safe_load(text)


def test_extract_write_file_reads_other_encodings_and_refuses_non_cloud_config() -> None:
    payload = b"\x00binary\xff"
    text = "#cloud-config\n" + yaml.safe_dump(
        {"write_files": [{"path": "/x", "encoding": "b64", "content": base64.b64encode(payload).decode()}]}
    )
    assert extract_write_file(text, "/x") == payload
    with pytest.raises(KeyError):
        extract_write_file(text, "/y")
    with pytest.raises(ValueError, match="cloud-config"):
        extract_write_file("#!/bin/sh\n", "/x")

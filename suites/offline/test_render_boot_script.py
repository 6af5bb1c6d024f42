"""The boot script: shellcheck-clean, IMDSv2 only, secrets from SSM, DNS per mode, values kept inert.

The behaviour tests source the script (without running main) in bash with stub ``aws``, ``curl``,
``docker`` and ``sleep`` on PATH, call its functions, and read back the exact argument vectors.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from provisioning import names
from provisioning.render.boot_script import (
    VALUES_BEGIN,
    VALUES_END,
    boot_script_values,
    namecheap_host_and_domain,
    render_boot_script,
)
from provisioning.render.container import render_front_run, render_proxy_run, render_registry_run
from provisioning.spec import Spec
from provisioning.spec_loading import spec_from_mapping
from suites.offline.render_samples import MODES, matrix_spec, mode_id, run_in_parallel
from suites.offline.spec_strategies import example_mapping, valid_spec_mappings

BASH = shutil.which("bash")
SHELLCHECK = shutil.which("shellcheck")
IMDS = "169.254.169.254"

# Values that are valid but hostile: double hyphens, mixed-case registry hosts, digests, ports.
NASTY_MAPPINGS = {
    "nasty-route53": example_mapping(
        dns={"hostname": "x--y.registry-1.example.com", "zone_id": "Z0AB"},
        registry={"image": "Local-Host:5000/a__b/c--d:2.8.3-rc.1@sha256:" + "a" * 64},
    ),
    "nasty-namecheap-letsencrypt": example_mapping(
        dns={"mode": "namecheap", "hostname": "example.com", "password": "ssm:/x", "zone_id": None},
        tls={"mode": "letsencrypt", "email": "a+b%c@example.com", "proxy_image": "caddy:2.8_x-rc"},
        registry={"port": 5000, "image": "registry@sha256:" + "0" * 64, "major": 3},
    ),
}


def nasty_spec(key: str) -> Spec:
    mapping = NASTY_MAPPINGS[key]
    mapping["dns"] = {k: v for k, v in mapping["dns"].items() if v is not None}
    return spec_from_mapping(mapping)


def logical_lines(script: str) -> list[str]:
    """Lines with backslash-newline continuations joined."""
    return script.replace("\\\n", " ").splitlines()


def values_block(script: str) -> str:
    return script[script.index(VALUES_BEGIN) : script.index(VALUES_END)]


def run_arrays(script: str) -> list[list[str]]:
    """The words of each ``local -a run=( ... )`` in the script, as the shell will see them."""
    return [shlex.split(body) for body in re.findall(r"local -a run=\(\n(.*?)\n    \)\n", script, flags=re.S)]


# --- shellcheck, every mode plus hostile values, in one parallel batch -----------------------------


@pytest.fixture(scope="module")
def shellcheck_results(tmp_path_factory: pytest.TempPathFactory) -> dict[Any, tuple[int, str]]:
    if SHELLCHECK is None:
        pytest.skip("shellcheck is not installed (Debian: apt-get install shellcheck)")
    directory = tmp_path_factory.mktemp("boot")
    specs: dict[Any, Spec] = {modes: matrix_spec(modes) for modes in MODES}
    specs.update({key: nasty_spec(key) for key in NASTY_MAPPINGS})
    commands = {}
    for key, spec in specs.items():
        path = directory / f"{mode_id(key) if isinstance(key, tuple) else key}.sh"
        path.write_text(render_boot_script(spec), encoding="utf-8")
        commands[key] = [SHELLCHECK, "-s", "bash", str(path)]
    return run_in_parallel(commands)


@pytest.mark.parametrize("key", [*MODES, *NASTY_MAPPINGS], ids=lambda k: mode_id(k) if isinstance(k, tuple) else k)
def test_shellcheck_passes(shellcheck_results: dict[Any, tuple[int, str]], key: Any) -> None:
    status, output = shellcheck_results[key]
    assert status == 0, output


# --- structure per mode ----------------------------------------------------------------------------


@pytest.mark.parametrize("modes", MODES, ids=mode_id)
def test_script_structure_per_mode(modes: tuple[str, str]) -> None:
    spec = matrix_spec(modes)
    script = render_boot_script(spec)
    assert script.startswith("#!/bin/bash\n")
    assert "\nset -euo pipefail\n" in script
    assert script == render_boot_script(spec)
    lines = logical_lines(script)
    ssm = [line.split() for line in lines if "aws ssm get-parameter" in line]
    assert ssm == [
        ["aws", "ssm", "get-parameter", "--region", '"$REGION"', "--name", '"$1"', "--with-decryption",
         "--query", "Parameter.Value", "--output", "text"]
    ]  # fmt: skip
    steps = script[script.index("        registry)") :]
    assert 'fetch_parameter "$HTPASSWD_PARAMETER" "$HTPASSWD_FILE"' in steps
    assert ('fetch_parameter "$TLS_KEY_PARAMETER" "$TLS_KEY_FILE"' in steps) == (spec.tls.mode == "selfsigned")
    assert ("        proxy)" in script) == (spec.tls.mode == "letsencrypt")
    dns = spec.dns.mode in ("route53", "namecheap")
    assert ("update_dns" in steps) == dns
    assert (IMDS in script) == dns
    assert ("route53" in script) == (spec.dns.mode == "route53")
    assert ("dynamicdns.park-your-domain.com" in script) == (spec.dns.mode == "namecheap")
    assert steps.index("ensure_http_secret") < steps.index("start_registry")
    # the refresh timer's service: the users again, nothing else (no DNS, no container)
    refresh = script[script.index("        refresh)\n") :].split(";;", 1)[0].split("\n")[1:-1]
    assert [line.strip() for line in refresh] == ['fetch_parameter "$HTPASSWD_PARAMETER" "$HTPASSWD_FILE"']


@pytest.mark.parametrize("modes", [m for m in MODES if m[1] in ("route53", "namecheap")], ids=mode_id)
def test_metadata_is_read_with_imdsv2_only(modes: tuple[str, str]) -> None:
    lines = [line for line in logical_lines(render_boot_script(matrix_spec(modes))) if IMDS in line]
    assert len(lines) == 2
    put, get = lines
    assert "-X PUT" in put and f"'http://{IMDS}/latest/api/token'" in put
    assert "-H 'X-aws-ec2-metadata-token-ttl-seconds: 300'" in put
    assert '-H "X-aws-ec2-metadata-token: ${token}"' in get and "-X" not in get


@pytest.mark.parametrize("modes", MODES, ids=mode_id)
def test_values_are_assigned_once_and_quoted(modes: tuple[str, str]) -> None:
    spec = matrix_spec(modes)
    values = boot_script_values(spec)
    assert values["HTPASSWD_PARAMETER"] == names.htpasswd_parameter(spec)
    assert values["LEGACY_KEY_PARAMETER"] == names.legacy_key_parameter(spec)
    assert values["REGISTRY_CONTAINER"] == names.CONTAINER_NAME
    assert values.get("TLS_KEY_PARAMETER") == (names.tls_key_parameter(spec) if spec.tls.mode == "selfsigned" else None)
    namecheap = spec.dns.mode == "namecheap"
    assert values.get("DNS_PASSWORD_PARAMETER") == (names.dns_password_parameter(spec) if namecheap else None)
    assert values["REGION"] == spec.deployment.region
    words = shlex.split(values_block(render_boot_script(spec)), comments=True)
    assert words == [w for k, v in values.items() for w in ("readonly", f"{k}={v}")]


def test_namecheap_host_and_domain() -> None:
    assert namecheap_host_and_domain("registry.example.com") == ("registry", "example.com")
    assert namecheap_host_and_domain("a.b.example.com") == ("a.b", "example.com")
    assert namecheap_host_and_domain("example.com") == ("@", "example.com")
    assert namecheap_host_and_domain("registry.example.co.uk", "example.co.uk") == ("registry", "example.co.uk")
    assert namecheap_host_and_domain("example.co.uk", "example.co.uk") == ("@", "example.co.uk")


# --- hostile values stay inert ---------------------------------------------------------------------


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_spec_mappings(nasty=True))
def test_hostile_values_reach_the_shell_unchanged(mapping: dict[str, Any]) -> None:
    spec = spec_from_mapping(mapping)
    script = render_boot_script(spec)
    values = boot_script_values(spec)
    assert shlex.split(values_block(script), comments=True) == [
        w for k, v in values.items() for w in ("readonly", f"{k}={v}")
    ]
    expected = [render_registry_run(spec).docker_run_argv(), render_front_run(spec).docker_run_argv()]
    proxy = render_proxy_run(spec)
    if proxy is not None:
        expected.append(proxy.docker_run_argv())
    assert [tuple(words) for words in run_arrays(script)] == expected
    if BASH is not None:
        # bash itself: the values block assigns exactly these values, and the whole script parses.
        printer = values_block(script) + "\nprintf '%s\\0' " + " ".join(f'"${k}"' for k in values) + "\n"
        out = subprocess.run([BASH, "-c", printer], capture_output=True, check=True).stdout
        assert out.decode().split("\0")[:-1] == list(values.values())
        subprocess.run([BASH, "-n", "-c", script], check=True)


# --- behaviour, with stubs for aws, curl, docker and sleep -----------------------------------------

_STUB = """#!/bin/sh
# record the call: name and arguments, NUL-separated, ended by an END record
{ printf '%s\\0' "${0##*/}" "$@"; printf 'END\\0'; } >> "$STUB_LOG"
case "${0##*/}" in
    curl)
        case " $* " in
            *" -X PUT "*) printf 'TOKEN-123' ;;
            *) printf '%s' "$STUB_CURL_ANSWER" ;;
        esac ;;
    aws) printf '%s\\n' "${STUB_AWS_ANSWER:-}" ;;
esac
exit "${STUB_EXIT:-0}"
"""


@pytest.fixture(scope="module")
def stub_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if BASH is None:
        pytest.skip("bash is not installed")
    directory = tmp_path_factory.mktemp("stubs")
    for name in ("aws", "curl", "docker", "sleep"):
        path = directory / name
        path.write_text(_STUB, encoding="utf-8")
        path.chmod(0o755)
    yield directory


def call_functions(stub_path: Path, spec: Spec, calls: str, **env: str) -> tuple[int, list[list[str]], str]:
    """Source the script without ``main``, run ``calls``; (status, recorded calls, stderr)."""
    script = render_boot_script(spec)
    assert script.endswith('\nmain "$@"\n')
    log = stub_path.parent / f"log-{os.getpid()}-{id(calls)}"
    log.write_bytes(b"")
    environment = {"PATH": f"{stub_path}:/usr/bin:/bin", "STUB_LOG": str(log), **env}
    result = subprocess.run(
        [BASH or "bash", "-c", script.removesuffix('main "$@"\n') + calls],
        capture_output=True,
        env=environment,
        check=False,
    )
    records: list[list[str]] = [[]]
    for word in log.read_bytes().split(b"\0")[:-1]:
        if word == b"END":
            records.append([])
        else:
            records[-1].append(word.decode())
    log.unlink()
    return result.returncode, records[:-1], result.stderr.decode()


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


@pytest.mark.parametrize("spec_key", ["route53", "nasty-route53"])
def test_route53_upsert_sends_the_record(stub_path: Path, spec_key: str) -> None:
    spec = matrix_spec(("selfsigned", "route53")) if spec_key == "route53" else nasty_spec(spec_key)
    status, calls, stderr = call_functions(stub_path, spec, "route53_upsert 203.0.113.9")
    assert status == 0, stderr
    [call] = calls
    assert call[:3] == ["aws", "route53", "change-resource-record-sets"]
    assert option(call, "--hosted-zone-id") == spec.dns.zone_id
    assert option(call, "--region") == spec.deployment.region
    batch = json.loads(option(call, "--change-batch"))
    assert batch["Changes"] == [
        {
            "Action": "UPSERT",
            "ResourceRecordSet": {
                "Name": spec.dns.hostname,
                "Type": "A",
                "TTL": 60,
                "ResourceRecords": [{"Value": "203.0.113.9"}],
            },
        }
    ]


def test_public_address_comes_from_imdsv2(stub_path: Path) -> None:
    spec = matrix_spec(("selfsigned", "route53"))
    status, calls, stderr = call_functions(stub_path, spec, "public_ipv4", STUB_CURL_ANSWER="198.51.100.4")
    assert status == 0, stderr
    put, get = calls
    assert put[:2] == ["curl", "-fsS"] and option(put, "-X") == "PUT"
    assert f"http://{IMDS}/latest/api/token" in put
    assert option(put, "-H") == "X-aws-ec2-metadata-token-ttl-seconds: 300"
    assert option(get, "-H") == "X-aws-ec2-metadata-token: TOKEN-123"
    assert get[-1] == f"http://{IMDS}/latest/meta-data/public-ipv4"
    assert "-X" not in get


def test_public_address_must_look_like_one(stub_path: Path) -> None:
    spec = matrix_spec(("selfsigned", "route53"))
    status, _, stderr = call_functions(stub_path, spec, "public_ipv4", STUB_CURL_ANSWER="<html>not found</html>")
    assert status != 0 and "no public IPv4 address" in stderr


@pytest.mark.parametrize(("answer", "ok"), [("<ErrCount>0</ErrCount>", True), ("<ErrCount>1</ErrCount>", False)])
def test_namecheap_update_checks_the_answer(stub_path: Path, answer: str, ok: bool) -> None:
    spec = nasty_spec("nasty-namecheap-letsencrypt")
    status, calls, _ = call_functions(stub_path, spec, "namecheap_update 203.0.113.9", STUB_CURL_ANSWER=answer)
    assert (status == 0) is ok
    [call] = calls
    assert call[:4] == ["curl", "-fsS", "--max-time", "30"]
    assert "--get" in call and "https://dynamicdns.park-your-domain.com/update" in call
    data = [call[i + 1] for i, word in enumerate(call) if word == "--data-urlencode"]
    assert data == ["host=@", "domain=example.com", "password@/etc/spotreg/dns/password", "ip=203.0.113.9"]


def test_ssm_values_are_fetched_decrypted(stub_path: Path) -> None:
    spec = matrix_spec(("selfsigned", "none"))
    status, calls, stderr = call_functions(stub_path, spec, 'ssm_value "$HTPASSWD_PARAMETER"')
    assert status == 0, stderr
    assert calls == [
        ["aws", "ssm", "get-parameter", "--region", "us-east-1", "--name", "/spotreg/example/htpasswd",
         "--with-decryption", "--query", "Parameter.Value", "--output", "text"]
    ]  # fmt: skip


def test_retry_is_bounded_with_growing_pauses(stub_path: Path) -> None:
    spec = matrix_spec(("selfsigned", "none"))
    status, calls, stderr = call_functions(stub_path, spec, "retry 6 false")
    assert status == 1
    assert [call[1:] for call in calls] == [["2"], ["4"], ["8"], ["16"], ["30"]]
    assert "giving up after 6 attempts" in stderr
    status, calls, _ = call_functions(stub_path, spec, "retry 3 true")
    assert status == 0 and calls == []


@pytest.mark.parametrize("spec_key", ["letsencrypt", "nasty-namecheap-letsencrypt", "nasty-route53"])
def test_containers_start_with_the_rendered_argv(stub_path: Path, spec_key: str) -> None:
    spec = matrix_spec(("letsencrypt", "route53")) if spec_key == "letsencrypt" else nasty_spec(spec_key)
    runs = [("start_registry", render_registry_run(spec))]
    proxy = render_proxy_run(spec)
    if proxy is not None:
        runs.append(("start_proxy", proxy))
    for function, run in runs:
        calls_text = function if function == "start_registry" else "install() { :; }; start_proxy"
        status, calls, stderr = call_functions(stub_path, spec, calls_text)
        assert status == 0, stderr
        inspect, remove, start = calls
        assert inspect == ["docker", "image", "inspect", run.image]
        assert remove == ["docker", "rm", "-f", run.name]
        assert tuple(start) == run.docker_run_argv()


# --- legacy mode: the stored access key reaches the registry by environment only --------------------

LEGACY_KEY = {"access_key_id": "AKIAEXAMPLE", "secret_access_key": "s3cr3t/+key"}
SHOW_S3_ENV = (  # what a child process (docker run) inherits
    """bash -c 'printf "[%s|%s]" "${REGISTRY_STORAGE_S3_ACCESSKEY-unset}" """
    """"${REGISTRY_STORAGE_S3_SECRETKEY-unset}"' >&2"""
)


def test_legacy_key_is_exported_for_the_registry_and_passed_by_name(stub_path: Path) -> None:
    spec = matrix_spec(("selfsigned", "none"))
    status, calls, stderr = call_functions(
        stub_path, spec, f"load_legacy_key && {SHOW_S3_ENV}", STUB_AWS_ANSWER=json.dumps(LEGACY_KEY)
    )
    assert status == 0, stderr
    assert "[AKIAEXAMPLE|s3cr3t/+key]" in stderr
    [call] = calls
    assert option(call, "--name") == "/spotreg/example/legacy-access-key" and "--with-decryption" in call
    argv = render_registry_run(spec).docker_run_argv()
    for name in ("REGISTRY_STORAGE_S3_ACCESSKEY", "REGISTRY_STORAGE_S3_SECRETKEY"):
        assert argv[argv.index(name) - 1] == "-e"
    assert not any("AKIA" in word or ("=" in word and "S3" in word) for word in argv)
    steps = render_boot_script(spec)[render_boot_script(spec).index("        registry)") :]
    assert steps.index("load_legacy_key") < steps.index("start_registry")


def test_without_a_legacy_key_the_registry_uses_the_instance_profile(stub_path: Path) -> None:
    spec = matrix_spec(("selfsigned", "none"))
    not_found = 'aws() { echo "An error occurred (ParameterNotFound) when calling GetParameter" >&2; return 254; }'
    status, calls, stderr = call_functions(stub_path, spec, f"{not_found}; load_legacy_key && {SHOW_S3_ENV}")
    assert status == 0, stderr
    assert "[unset|unset]" in stderr and "instance profile" in stderr
    assert calls == []  # no retries (sleep) for a parameter that is simply not there


def test_a_failing_legacy_key_read_is_retried_and_fails(stub_path: Path) -> None:
    spec = matrix_spec(("selfsigned", "none"))
    denied = 'aws() { echo "An error occurred (AccessDeniedException)" >&2; return 254; }'
    status, calls, stderr = call_functions(stub_path, spec, f"{denied}; load_legacy_key")
    assert status != 0
    assert [call[0] for call in calls] == ["sleep"] * 5
    assert "AccessDeniedException" in stderr


# --- fetch_parameter: at boot and on every refresh, the file replaced only when the value changed -----

HTPASSWD_OLD = "ci:$2y$05$old"
HTPASSWD_NEW = "ci:$2y$05$new\nleaver:$2y$05$other"


def _fetch(stub_path: Path, target: Path, answer: str, before: str = "") -> tuple[int, list[list[str]], str]:
    spec = matrix_spec(("selfsigned", "none"))
    calls = f'{before}fetch_parameter "$HTPASSWD_PARAMETER" {shlex.quote(str(target))}'
    return call_functions(stub_path, spec, calls, STUB_AWS_ANSWER=answer)


def test_fetch_parameter_writes_a_private_file_and_says_so(stub_path: Path, tmp_path: Path) -> None:
    target = tmp_path / "auth" / "htpasswd"
    status, calls, stderr = _fetch(stub_path, target, HTPASSWD_OLD)
    assert status == 0, stderr
    assert target.read_text() == HTPASSWD_OLD + "\n"
    assert target.stat().st_mode & 0o777 == 0o600 and target.parent.stat().st_mode & 0o777 == 0o700
    assert [call[:3] for call in calls] == [["aws", "ssm", "get-parameter"]]
    assert f"/spotreg/example/htpasswd -> {target}" in stderr
    assert sorted(p.name for p in target.parent.iterdir()) == ["htpasswd"]  # no temporary file left


def test_fetch_parameter_leaves_an_unchanged_file_alone(stub_path: Path, tmp_path: Path) -> None:
    """Same value: the same file (inode, modification time), so the registry has nothing to re-read."""
    target = tmp_path / "htpasswd"
    target.write_text(HTPASSWD_OLD + "\n")
    target.chmod(0o600)
    os.utime(target, ns=(1_000_000_000, 1_000_000_000))
    before = target.stat()
    status, _, stderr = _fetch(stub_path, target, HTPASSWD_OLD)
    assert status == 0, stderr
    after = target.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert "->" not in stderr


def test_fetch_parameter_replaces_a_changed_file_atomically(stub_path: Path, tmp_path: Path) -> None:
    """Another value: a new file renamed over the old one (a reader sees the old or the new, whole), with a
    new modification time: what makes distribution's htpasswd controller read it again."""
    target = tmp_path / "htpasswd"
    target.write_text(HTPASSWD_OLD + "\n")
    os.utime(target, ns=(1_000_000_000, 1_000_000_000))
    held = target.open()  # a reader that opened the old file before the refresh
    before = target.stat()
    status, _, stderr = _fetch(stub_path, target, HTPASSWD_NEW)
    assert status == 0, stderr
    after = target.stat()
    assert target.read_text() == HTPASSWD_NEW + "\n"
    assert after.st_ino != before.st_ino and after.st_mtime_ns != before.st_mtime_ns
    assert after.st_mode & 0o777 == 0o600
    assert held.read() == HTPASSWD_OLD + "\n"  # never a half-written file
    held.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["htpasswd"]


def test_a_failing_refresh_keeps_the_users_the_registry_has(stub_path: Path, tmp_path: Path) -> None:
    """SSM unreachable: retried (bounded), then the unit fails; the file on disk stays as it was."""
    target = tmp_path / "htpasswd"
    target.write_text(HTPASSWD_OLD + "\n")
    down = 'aws() { echo "Could not connect to the endpoint URL" >&2; return 255; }; '
    status, calls, stderr = _fetch(stub_path, target, "", before=down)
    assert status != 0
    assert [call[0] for call in calls] == ["sleep"] * 5 and "giving up after 6 attempts" in stderr
    assert target.read_text() == HTPASSWD_OLD + "\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["htpasswd"]


@pytest.mark.parametrize("modes", [("selfsigned", "route53"), ("letsencrypt", "namecheap")], ids=mode_id)
def test_main_refresh_fetches_the_users_only(stub_path: Path, modes: tuple[str, str]) -> None:
    """``spotreg-boot refresh`` (the timer's service): the htpasswd parameter into the htpasswd file,
    and nothing that the boot does besides (no DNS, no container, no other secret)."""
    spec = matrix_spec(modes)
    record = 'fetch_parameter() { printf "%s|" "$@" >&2; }; '
    status, calls, stderr = call_functions(stub_path, spec, record + "main refresh")
    assert status == 0, stderr
    assert calls == []  # no aws, curl or docker call of its own
    assert stderr == f"{names.htpasswd_parameter(spec)}|{names.HTPASSWD_PATH}|"

"""``spotreg rehearse`` as a user runs it: the example configuration deployed on this machine, a registry
that an independent client (skopeo, not this project's code) logs in to, pushes to and pulls from, and
``spotreg rehearse --down`` leaving nothing behind."""

from __future__ import annotations

import os
import queue
import re
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from provisioning.rehearsal.box_network import BOX_LABEL

pytestmark = pytest.mark.stack

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "spotreg.toml"
HOSTNAME = "registry.example.com"  # the example's dns.hostname


def _spotreg(*args: str) -> list[str]:
    return [sys.executable, "-m", "spotreg", *args]


def _lines(stream) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in stream:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    return lines


def _skopeo(*args: str) -> str:
    result = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, f"skopeo {' '.join(args)}:\n{result.stderr}"
    return result.stdout


def test_rehearse_the_example_then_down_leaves_nothing(
    docker_client, registry_image, front_image, base_image, tmp_path
):
    password = secrets.token_urlsafe(18)
    environment = {
        **os.environ,
        "SPOTREG_PASSWORD_CI": password,
        "SPOTREG_REGISTRY_IMAGE": registry_image,
        "SPOTREG_FRONT_IMAGE": front_image,
    }
    process = subprocess.Popen(
        _spotreg("rehearse", "--config", str(EXAMPLE), "--etc-hosts"),
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines, seen = _lines(process.stdout), list[str]()
    try:
        deadline = time.monotonic() + 300
        while not any("Ctrl-C" in line for line in seen):
            assert process.poll() is None or not lines.empty(), "rehearse ended early:\n" + "".join(seen)
            assert time.monotonic() < deadline, "no registry within 300 s:\n" + "".join(seen)
            try:
                seen.append(lines.get(timeout=1))
            except queue.Empty:
                continue
        output = "".join(seen)
        run_id = re.search(r"rehearsal (rehearse-[0-9a-f]+) is up", output)
        ca = re.search(r"CA to trust: (\S+)", output)
        address = re.search(rf"{re.escape(HOSTNAME)} -> (\S+) in the rehearsal's Route 53", output)
        assert run_id and ca and address, output
        assert f"docker login {HOSTNAME}:443 -u ci" in output
        assert f"{address.group(1)} {HOSTNAME}" in Path("/etc/hosts").read_text()  # --etc-hosts
        children = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
        assert children, "no moto server child"

        # an independent client, by the host name the certificate names, trusting only the printed CA
        certs = tmp_path / "certs"
        certs.mkdir()
        (certs / "ca.crt").write_bytes(Path(ca.group(1)).read_bytes())
        reference = f"docker://{HOSTNAME}:443/tools/busybox:1"
        credentials = f"ci:{password}"
        _skopeo("login", "--cert-dir", str(certs), "-u", "ci", "--password", password, f"{HOSTNAME}:443")
        _skopeo(
            "copy", "--dest-cert-dir", str(certs), "--dest-creds", credentials, f"docker-daemon:{base_image}", reference
        )
        pushed = _skopeo(
            "inspect", "--cert-dir", str(certs), "--creds", credentials, "--format", "{{.Digest}}", reference
        )
        pulled_dir = tmp_path / "pulled"
        _skopeo("copy", "--src-cert-dir", str(certs), "--src-creds", credentials, reference, f"dir:{pulled_dir}")
        assert (pulled_dir / "manifest.json").exists() and pushed.strip().startswith("sha256:")
        anonymous = subprocess.run(
            ["skopeo", "inspect", "--cert-dir", str(certs), "--no-creds", reference], capture_output=True, text=True
        )
        assert anonymous.returncode != 0 and "unauthorized" in anonymous.stderr.lower()

        # --down from "another terminal": the rehearsal notices and tears down what is left
        down = subprocess.run(_spotreg("rehearse", "--down"), cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert down.returncode == 0, down.stdout + down.stderr
        assert process.wait(timeout=120) == 0
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=60)
    labels = [c.labels.get(BOX_LABEL) for c in docker_client.containers.list(all=True, filters={"label": BOX_LABEL})]
    networks = [n.name for n in docker_client.networks.list(filters={"label": f"{BOX_LABEL}={run_id.group(1)}"})]
    assert run_id.group(1) not in labels and networks == []
    assert HOSTNAME not in Path("/etc/hosts").read_text()
    assert [pid for pid in children if Path(f"/proc/{pid}").exists()] == []  # moto's server went with it

"""Rendered samples shared by the render tests: one spec per (tls, dns) mode pair, rendered once."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from functools import cache
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from provisioning.render.tls import TlsMaterial, render_selfsigned
from provisioning.render.user_data import render_user_data
from provisioning.spec import Spec
from provisioning.spec_loading import spec_from_mapping
from suites.offline.spec_strategies import mode_matrix

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
MODES = sorted(mode_matrix())


def mode_id(modes: tuple[str, str]) -> str:
    return f"tls={modes[0]}-dns={modes[1]}"


@cache
def matrix_spec(modes: tuple[str, str]) -> Spec:
    return spec_from_mapping(mode_matrix()[modes])


@cache
def keys() -> tuple[ec.EllipticCurvePrivateKey, ec.EllipticCurvePrivateKey]:
    return ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())


@cache
def tls_material(*names: str) -> TlsMaterial:
    ca_key, server_key = keys()
    return render_selfsigned(list(names) or ["registry.example.com"], now=NOW, ca_key=ca_key, server_key=server_key)


def server_cert_for(spec: Spec) -> bytes | None:
    """The certificate the provisioner would pass to render_user_data (selfsigned only)."""
    return tls_material().server_cert_pem if spec.tls.mode == "selfsigned" else None


def user_data_for(spec: Spec) -> str:
    return render_user_data(spec, server_cert_for(spec))


@cache
def matrix_user_data(modes: tuple[str, str]) -> str:
    return user_data_for(matrix_spec(modes))


def statements_by_sid(policy: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {statement["Sid"]: statement for statement in policy["Statement"]}


def run_in_parallel(commands: dict[Any, list[str]], timeout: float = 60) -> dict[Any, tuple[int, str]]:
    """Run external checkers at once (they are slow one by one); (exit status, output) by key."""
    processes = {
        key: subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for key, argv in commands.items()
    }
    results: dict[Any, tuple[int, str]] = {}
    for key, process in processes.items():
        output, _ = process.communicate(timeout=timeout)
        results[key] = (process.returncode, output)
    return results

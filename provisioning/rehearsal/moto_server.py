"""moto's HTTP server on 127.0.0.1: AWS (S3, EC2, IAM, SSM, Route 53, STS) for the stack and
rehearsals.

The in-process ``mock_aws`` decorator patches botocore inside this Python process only; the registry
runs in a container and talks HTTP, so the stack (and ``spotreg rehearse``) use moto's server instead,
for *every* AWS service (the provisioner's clients point at it through ``endpoint_url``).

The server is moto's ``ThreadedMotoServer``, run in a child process of its own (``python -m
provisioning.rehearsal.moto_server``): moto keeps its state in module globals, and an offline test's ``mock_aws``
in the same process (pytest-xdist mixes suites on a worker) would reset the server's buckets and
instances under a running registry. A child process also serves S3 on the second core. Its state
lives in memory: stopping the server loses it, which is why the S3-outage test cuts a proxy in front
of it instead of stopping it.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"

#: moto accepts any credentials; these are what every client of the local server signs with.
MOTO_ACCESS_KEY = "spotreg-test"
MOTO_SECRET_KEY = "spotreg-test-secret"  # noqa: S105 - moto accepts any key

_START_TIMEOUT_SECONDS = 30.0
_REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class MotoServer:
    """One moto server (a child process) bound to 127.0.0.1 on a port the kernel chose."""

    region: str = "us-east-1"
    port: int = 0
    addresses: str | None = None  # a CIDR: public and Elastic IPs are drawn from it (an instance box network)
    zones: dict[str, str] = field(default_factory=dict)  # hosted zones made at start: name -> id (Z...)
    environment: Mapping[str, str] | None = None  # for the server (INITIAL_NO_AUTH_ACTION_COUNT: IAM enforced)
    access_key: str = MOTO_ACCESS_KEY  # what this module's clients sign with (an IAM user's, when enforced)
    secret_key: str = MOTO_SECRET_KEY
    _process: subprocess.Popen[str] | None = field(default=None, repr=False)
    _log: Any = field(default=None, repr=False)

    def start(self) -> MotoServer:
        # a file, not a pipe: nobody drains a pipe, and a full one would block the server
        self._log = tempfile.TemporaryFile(mode="w+", prefix="spotreg-moto-")  # noqa: SIM115 (closed in stop)
        environment = {
            **os.environ,
            **(self.environment or {}),
            "PYTHONPATH": os.pathsep.join([str(_REPO_ROOT), *sys.path]),
        }
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "provisioning.rehearsal.moto_server",
                "--port",
                str(self.port),
                *(["--addresses", self.addresses] if self.addresses else []),
                *(f"--zone={name}={zone_id}" for name, zone_id in self.zones.items()),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env=environment,
            cwd=_REPO_ROOT,
        )
        announced: list[str] = []
        reader = threading.Thread(
            target=lambda: announced.append(self._process.stdout.readline()),  # type: ignore[union-attr]
            daemon=True,
        )
        reader.start()
        reader.join(_START_TIMEOUT_SECONDS)
        line = announced[0].strip() if announced else ""
        if not line.startswith("port="):
            self.stop()
            raise RuntimeError(f"moto server did not start (said {line!r}); stderr:\n{self.stderr()}")
        self.port = int(line.removeprefix("port="))
        return self

    def stderr(self) -> str:
        """The end of what the server wrote on stderr."""
        if self._log is None:
            return ""
        self._log.seek(0)
        return str(self._log.read())[-4000:]

    def stop(self) -> None:
        """Stop the server; its state (all of it in memory) is gone."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()  # nothing to save: a graceful shutdown would only wait for werkzeug's poll
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def session(self, region: str | None = None) -> Any:
        """A boto3 session with the server's credentials (clients still need ``endpoint_url``)."""
        import boto3

        return boto3.Session(
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=region or self.region,
        )

    def client(self, service: str, region: str | None = None) -> Any:
        """A boto3 client for ``service`` that talks to this server (and only to it)."""
        return self.session(region).client(service, endpoint_url=self.endpoint_url)


def draw_addresses_from(cidr: str) -> None:
    """Make moto's made-up public and Elastic IP addresses real ones: each new one is the next free
    address of ``cidr`` (past its gateway), so an instance box can be started at it."""
    import ipaddress
    import itertools

    from moto.ec2.models import elastic_ip_addresses, elastic_network_interfaces

    hosts = list(ipaddress.ip_network(cidr).hosts())[1:]  # the first is the network's gateway
    counter = itertools.count()
    lock = threading.Lock()

    def next_address() -> str:
        with lock:
            index = next(counter)
        if index >= len(hosts):
            raise RuntimeError(f"moto's server has handed out every address of {cidr}")
        return str(hosts[index])

    elastic_network_interfaces.random_public_ip = next_address  # type: ignore[attr-defined]
    elastic_ip_addresses.random_ip = next_address  # type: ignore[attr-defined]


def create_zones(port: int, zones: Mapping[str, str]) -> None:
    """Hosted zones with the given ids (AWS's shape, ``Z...``), made through moto's id manager."""
    import boto3
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.route53.models import HostedZoneIdentifier
    from moto.utilities.id_generator import moto_id_manager

    route53 = boto3.client(
        "route53",
        endpoint_url=f"http://{LOOPBACK}:{port}",
        region_name="us-east-1",
        aws_access_key_id=MOTO_ACCESS_KEY,
        aws_secret_access_key=MOTO_SECRET_KEY,
    )
    for name, zone_id in zones.items():
        identifier = HostedZoneIdentifier(DEFAULT_ACCOUNT_ID, f"{name.rstrip('.')}.", None)
        moto_id_manager.set_custom_id(identifier, zone_id)
        try:
            route53.create_hosted_zone(Name=name, CallerReference=f"spotreg-{zone_id}")
        finally:
            moto_id_manager.unset_custom_id(identifier)


def _serve(port: int, addresses: str | None, zones: Mapping[str, str]) -> None:
    """Child side: serve on 127.0.0.1:``port`` (0: any), print ``port=N``, exit when stdin closes."""
    from moto.server import ThreadedMotoServer

    if addresses:
        draw_addresses_from(addresses)

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one INFO line per request otherwise
    server = ThreadedMotoServer(ip_address=LOOPBACK, port=port, verbose=False)
    server.start()
    create_zones(server.get_host_and_port()[1], zones)
    print(f"port={server.get_host_and_port()[1]}", flush=True)
    sys.stdin.read()  # returns at EOF: the parent closed the pipe or died
    server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="moto server on 127.0.0.1 for the stack tier and rehearsals")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--addresses", default=None, help="CIDR to draw public and Elastic IPs from")
    parser.add_argument("--zone", action="append", default=[], help="NAME=ID: a hosted zone to make at start")
    arguments = parser.parse_args()
    _serve(arguments.port, arguments.addresses, dict(zone.split("=", 1) for zone in arguments.zone))

"""A rehearsal's world: moto's server, a box network, the instance image, and the boxes booted in it.

``spotreg rehearse``, ``make verify`` and the stack tier all use this: ``World.open`` makes the pieces,
``world.boot(spec, instance_id)`` plays an instance of a deployment that ``up`` launched into the
world's moto, and ``world.close()`` removes everything it made (boxes, network, moto's server).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import InsecureRequestWarning

from provisioning.health import HEALTHY_STATUSES, probe, registry_url
from provisioning.rehearsal.box_image import ensure_box_image
from provisioning.rehearsal.box_network import BoxNetwork
from provisioning.rehearsal.instance_box import InstanceBox, Preload
from provisioning.rehearsal.metadata_service import MetadataService
from provisioning.rehearsal.moto_server import MotoServer
from provisioning.rehearsal.overrides import AcmeServer
from provisioning.render.container import S3_ACCESS_KEY_ENV, S3_ENDPOINT_ENV, S3_SECRET_KEY_ENV
from provisioning.spec import Spec

Say = Callable[[str], None]


def _quiet(_: str) -> None:
    """No progress output."""


@dataclass(frozen=True)
class Endpoint:
    """A server on the host's 127.0.0.1 that a box reaches at the same URL (forwarded into its namespace):
    moto's server, another S3, a test's proxy. Keys only where the registry cannot sign with the
    instance profile (an S3 that is not moto's)."""

    url: str
    access_key: str | None = None
    secret_key: str | None = None

    @property
    def port(self) -> int:
        port = urlsplit(self.url).port
        if port is None:
            raise ValueError(f"endpoint {self.url!r} names no port: a box reaches host servers by port")
        return port


def answers(url: str) -> bool:
    """Whether a registry answers ``/v2/`` at ``url`` (200, or 401 asking for credentials): liveness
    only, the certificate unchecked (the tests check it)."""
    with requests.Session() as session, warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureRequestWarning)
        return probe(f"{url}/v2/", session=session, verify=False, timeout=2).healthy(HEALTHY_STATUSES)


@dataclass
class World:
    """See the module's docstring."""

    docker: Any
    run_id: str
    network: BoxNetwork
    moto: MotoServer
    image: str
    registry_source: str  # the local image that plays the configured registry image
    workdir: Path
    say: Say = _quiet
    proxy_source: str | None = None  # the local image that plays tls.proxy_image (letsencrypt)
    front_source: str | None = None  # the local image that plays registry.front_image (every box)
    boxes: list[InstanceBox] = field(default_factory=list)
    _archives: dict[str, Path] = field(default_factory=dict)

    @classmethod
    def open(
        cls,
        docker: Any,
        run_id: str,
        registry_source: str,
        *,
        zones: Mapping[str, str] | None = None,
        moto_environment: Mapping[str, str] | None = None,
        say: Say = _quiet,
        proxy_source: str | None = None,
        front_source: str | None = None,
    ) -> World:
        """The instance image (built if need be), a box network, and moto's server drawing addresses from it."""
        for source in (registry_source, proxy_source, front_source):
            if source is not None:
                docker.images.get(source)  # ImageNotFound before anything is made
        image = ensure_box_image(docker, say=say)
        network = BoxNetwork.create(docker, run_id)
        try:
            moto = MotoServer(addresses=network.addresses, zones=dict(zones or {}), environment=moto_environment)
            moto.start()
        except BaseException:
            network.remove()
            raise
        workdir = Path(tempfile.mkdtemp(prefix=f"spotreg-world-{run_id}-"))
        return cls(docker, run_id, network, moto, image, registry_source, workdir, say, proxy_source, front_source)

    def moto_endpoint(self) -> Endpoint:
        return Endpoint(self.moto.endpoint_url)

    def _archive(self, image: str) -> Path:
        """``image`` saved once per world, for the boxes' engines to load."""
        if image not in self._archives:
            path = self.workdir / f"image-{len(self._archives)}.tar"
            with path.open("wb") as stream:
                for chunk in self.docker.images.get(image).save(named=True):
                    stream.write(chunk)
            self._archives[image] = path
        return self._archives[image]

    def boot(
        self,
        spec: Spec,
        instance_id: str,
        *,
        s3: Endpoint | None = None,
        aws_endpoint: Endpoint | None = None,
        forwarded_ports: Sequence[int] = (),
        wait: bool = True,
        timeout: float = 180,
        acme: AcmeServer | None = None,
        health_probe: Callable[[], bool] | None = None,
    ) -> InstanceBox:
        """Start the box of ``instance_id`` (launched by ``up`` into this world's moto); with ``wait``,
        return once its registry answers (``health_probe``, default: ``/v2/`` at the box's address), its
        boot phases in ``box.times``. ``s3`` is where its registry stores and ``aws_endpoint`` where its
        AWS CLI goes (both default to moto's server). Every box needs the world's ``front_source``; a
        letsencrypt deployment needs ``acme``, the ACME server its proxy uses (forward its port too), and
        the world's ``proxy_source``."""
        if self.front_source is None:
            raise ValueError("a box needs the world's front_source: the image that plays registry.front_image")
        target = s3 or self.moto_endpoint()
        aws = aws_endpoint or self.moto_endpoint()
        preloads = [
            Preload(self._archive(self.registry_source), self.registry_source, spec.registry.image),
            Preload(self._archive(self.front_source), self.front_source, spec.registry.front_image),
        ]
        if spec.tls.mode == "letsencrypt":
            missing = [
                what
                for what, value in (("acme=", acme), ("the world's proxy_source", self.proxy_source))
                if value is None
            ]
            if missing or self.proxy_source is None:  # (the second for the type checker)
                raise ValueError(f"{spec.deployment.name}: a letsencrypt box needs {' and '.join(missing)}")
            preloads.append(Preload(self._archive(self.proxy_source), self.proxy_source, spec.tls.proxy_image))
        ec2 = self.moto.client("ec2", spec.deployment.region)
        instance = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
        address = instance.get("PublicIpAddress")
        if not address:
            raise RuntimeError(f"{instance_id} has no public address in moto: the box has none to take")
        region = spec.deployment.region
        metadata = MetadataService(
            lambda: (self.moto.client("ec2", region), self.moto.client("iam", region), self.moto.client("sts", region)),
            instance_id,
            region=region,
        )
        environment = {"AWS_ENDPOINT_URL": aws.url, S3_ENDPOINT_ENV: target.url}
        if target.access_key is not None and target.secret_key is not None:
            environment |= {S3_ACCESS_KEY_ENV: target.access_key, S3_SECRET_KEY_ENV: target.secret_key}
        box = InstanceBox(
            self.docker,
            self.image,
            self.network,
            instance_id,
            address,
            self.run_id,
            metadata,
            forwarded_ports=sorted({self.moto.port, target.port, aws.port, *forwarded_ports}),
            unit_environment=environment,
            preloads=preloads,
            acme=acme,
        )
        self.boxes.append(box)
        self.say(f"booting {instance_id} in a box at {address}")
        box.start()
        if wait:
            url = registry_url(spec, address)
            box.wait_boot(health_probe or (lambda: answers(url)), timeout=timeout, say=self.say)
        return box

    def retire(self, box: InstanceBox) -> None:
        """Remove one box (a terminated instance)."""
        box.remove()
        with contextlib.suppress(ValueError):
            self.boxes.remove(box)

    def close(self) -> None:
        """Remove every box, the network and moto's server (its state with it)."""
        for box in list(self.boxes):
            self.retire(box)
        self.network.remove()
        self.moto.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

"""The Docker side of a run's instance boxes: the labels that mark them, their network, removing them."""

from __future__ import annotations

import contextlib
import ipaddress
import secrets
from dataclasses import dataclass
from typing import Any, Final

BOX_LABEL: Final = "io.spotreg.box"  # value: the run that made it
ROLE_LABEL: Final = "io.spotreg.box-role"  # holder | instance | network
SUBNET_POOL: Final = ipaddress.IPv4Network("10.213.0.0/16")


class BoxError(RuntimeError):
    """The box could not be started, or did not reach a state in time; the message says what it saw."""


@dataclass
class BoxNetwork:
    """A Docker network this run created for its boxes: internal (no route off this machine)."""

    docker: Any
    name: str
    subnet: ipaddress.IPv4Network

    @classmethod
    def create(cls, docker: Any, run_id: str) -> BoxNetwork:
        """A new network on a free /24 of 10.213.0.0/16."""
        from docker.errors import APIError

        subnets = list(SUBNET_POOL.subnets(new_prefix=24))
        rng = secrets.SystemRandom()
        for subnet in rng.sample(subnets, 40):
            name = f"spotreg-box-{run_id}-{subnet.network_address.packed[2]}"
            ipam = {"Config": [{"Subnet": str(subnet), "Gateway": str(subnet.network_address + 1)}]}
            try:
                docker.api.create_network(
                    name, driver="bridge", internal=True, ipam=ipam, labels={BOX_LABEL: run_id, ROLE_LABEL: "network"}
                )
            except APIError as error:  # a pool another network has: try another subnet
                if "overlap" in str(error).lower() or "already" in str(error).lower():
                    continue
                raise
            return cls(docker, name, subnet)
        raise BoxError("no free /24 in 10.213.0.0/16 for a box network")

    @property
    def addresses(self) -> str:
        """The CIDR moto's server draws public addresses from: the network's, past the gateway."""
        return str(self.subnet)

    def remove(self) -> None:
        with contextlib.suppress(Exception):
            self.docker.api.remove_network(self.name)


def remove_boxes(docker: Any, run_id: str) -> list[str]:
    """Remove the boxes and networks of run ``run_id``; the names removed."""
    selector = f"{BOX_LABEL}={run_id}"
    removed = []
    for container in docker.containers.list(all=True, filters={"label": selector}):
        with contextlib.suppress(Exception):
            container.remove(force=True, v=True)
            removed.append(container.name)
    for network in docker.networks.list(filters={"label": selector}):
        with contextlib.suppress(Exception):
            network.remove()
            removed.append(network.name)
    return removed

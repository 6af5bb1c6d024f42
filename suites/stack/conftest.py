"""The stack tier's moto server is its world's: public addresses drawn from the box network."""

from __future__ import annotations

import pytest

from provisioning.rehearsal.moto_server import MotoServer
from provisioning.rehearsal.world import World


@pytest.fixture(scope="session")
def moto_server(stack_world: World) -> MotoServer:
    """Overrides ``fixtures.moto_server``'s for the stack: the world's server."""
    return stack_world.moto

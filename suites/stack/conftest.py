"""The stack tier's moto server is its world's: public addresses drawn from the box network."""

from __future__ import annotations

import pytest

from provisioning.rehearsal.moto_server import MotoServer
from provisioning.rehearsal.world import World


@pytest.fixture(scope="session")
def moto_server(stack_world: World) -> MotoServer:
    """Overrides ``fixtures.moto_server``'s for the stack: the world's server."""
    return stack_world.moto


#: Module-scoped boxes: their tests stay on one xdist worker, or each worker would boot its own.
_BOX_MODULE_FIXTURES = ("route53_registry", "letsencrypt_deployments")


def _shared_box(item: pytest.Item) -> str:
    """Which shared box a test uses: its ``variant`` parameter, its ``box_variant`` mark, or redirect-on."""
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "variant" in callspec.params:
        return str(callspec.params["variant"])
    mark = item.get_closest_marker("box_variant")
    return str(mark.args[0]) if mark is not None else "redirect-on"


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups into the node ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With ``--dist loadgroup``: the tests of one shared box on one worker (one boot per box, not one
    per worker), a module's own box likewise; the rest spread freely."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "booted_registries" in fixtures:
            item.add_marker(pytest.mark.xdist_group(f"box-{_shared_box(item)}"))
        elif any(name in fixtures for name in _BOX_MODULE_FIXTURES):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))

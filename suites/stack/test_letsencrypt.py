"""Let's Encrypt mode, proven offline: the letsencrypt deployment boots in an instance box from its own
user data, and Caddy obtains its certificate from pebble (``fixtures.acme_authority``) by HTTP-01."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fixtures.acme_authority import AcmeAuthority, AcmeAuthorityMissing
from fixtures.booted_registry import BootedRegistry, boot, create_hosted_zone, provision
from fixtures.stack_deployment import USER, PASSWORD_ENV
from provisioning.spec import Spec
from provisioning.spec_loading import spec_from_mapping

pytestmark = pytest.mark.stack

EMAIL = "registry-admin@example.org"


def letsencrypt_spec(name: str, registry_image: str, proxy_image: str, run_id: str, zone: tuple[str, str], *, redirect: bool) -> Spec:
    domain, zone_id = zone
    suffix = f"{name}-{run_id}"
    return spec_from_mapping(
        {
            "deployment": {"name": f"le-{suffix}"[:32], "region": "us-east-1"},
            "storage": {"bucket": f"spotreg-le-{suffix}", "redirect": redirect},
            "network": {"operator_cidrs": ["10.213.0.0/16"]},
            "dns": {"mode": "route53", "hostname": f"{name}.{domain}", "zone_id": zone_id},
            "tls": {"mode": "letsencrypt", "email": EMAIL, "proxy_image": proxy_image},
            "registry": {"image": registry_image, "users": [{"name": USER, "password": f"env:{PASSWORD_ENV}"}]},
            "tags": {"purpose": "stack-test"},
        }
    )


@pytest.fixture(scope="module")
def acme(tmp_path_factory) -> Iterator[AcmeAuthority]:
    try:
        authority = AcmeAuthority.open(tmp_path_factory.mktemp("acme"))
    except AcmeAuthorityMissing as error:
        pytest.skip(str(error))
    with authority:
        yield authority


@pytest.fixture(scope="module")
def zone(stack_world, stack_run_id):
    route53 = stack_world.moto.client("route53")
    domain = f"le-{stack_run_id}.test"
    zone_id = create_hosted_zone(route53, domain)
    yield domain, zone_id


@pytest.fixture(scope="module")
def letsencrypt_registry(stack_world, s3_backend, registry_image, proxy_image, stack_run_id, zone, acme, tmp_path_factory) -> Iterator[BootedRegistry]:
    spec = letsencrypt_spec("on", registry_image, proxy_image, stack_run_id, zone, redirect=True)
    deployment = provision(spec, stack_world.moto, stack_run_id)
    registry = boot(deployment, stack_world, s3_backend, tmp_path_factory.mktemp("le"), acme=acme)
    try:
        yield registry
    finally:
        registry.remove()
        deployment.provisioner.down()


def test_caddy_gets_its_certificate_from_pebble(letsencrypt_registry, acme):
    print(letsencrypt_registry.box.times)
    print(acme.log()[-3000:])
    api = letsencrypt_registry.api()
    r = api.request("GET", "/v2/")
    print(r.status_code, r.headers)
    assert r.status_code == 200

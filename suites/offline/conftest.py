"""Offline fixtures for the provisioner: moto in process (fake credentials, us-east-1), a factory of
valid specs, provisioners with short waits, and botocore event hooks that watch or break AWS calls."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core.models import DEFAULT_ACCOUNT_ID as ACCOUNT_ID
from moto.route53.models import HostedZoneIdentifier
from moto.utilities.id_generator import moto_id_manager

from provisioning import names
from provisioning.clients import AwsClients, make_clients
from provisioning.provisioner import Provisioner
from provisioning.spec import Spec
from provisioning.spec_loading import spec_from_mapping
from provisioning.waits import Waits

REGION = "us-east-1"
PASSWORD_ENV = "SPOTREG_PASSWORD_CI"
PASSWORD = "correct horse battery staple"
READ_PREFIXES = ("Describe", "Get", "List", "Head")
FAST_WAITS = Waits(
    profile_propagation=2.0,
    instance_terminated=5.0,
    security_group_release=0.5,
    poll_interval=0.01,
    max_interval=0.05,
)

BASE_MAPPING: dict[str, Any] = {
    "deployment": {"name": "offline", "region": REGION},
    "storage": {"bucket": "spotreg-offline-images"},
    "instance": {"types": ["t4g.micro", "t3.micro"]},
    "network": {"operator_cidrs": ["203.0.113.7/32"]},
    "dns": {"mode": "none"},
    "tls": {"mode": "selfsigned"},
    "registry": {"users": [{"name": "ci", "password": f"env:{PASSWORD_ENV}"}]},
    "tags": {"team": "platform"},
}


def merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """`base` with `overrides` merged in one level deep per section (a section value None drops it)."""
    result = copy.deepcopy(base)
    for section, value in overrides.items():
        if value is None:
            result.pop(section, None)
        elif isinstance(value, dict) and isinstance(result.get(section), dict):
            result[section] = {**result[section], **value}
        else:
            result[section] = value
    return result


def build_spec(**overrides: Any) -> Spec:
    return spec_from_mapping(merged(BASE_MAPPING, overrides))


@pytest.fixture
def make_spec() -> Callable[..., Spec]:
    """make_spec(dns={"mode": "eip"}, storage={"versioning": True}) -> a valid Spec."""
    return build_spec


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and region, and no shared config that could point anywhere real."""
    for variable in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # moto loads ~0.2 s of default AMIs into every fresh EC2 backend; nothing here describes them
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")


@pytest.fixture
def moto(aws_credentials: None) -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture(scope="session")
def boto_session() -> boto3.session.Session:
    """One session for every test: it caches the service models (a new one reloads them, ~0.3 s)."""
    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)


@pytest.fixture(scope="session")
def _cached_clients(boto_session: boto3.session.Session) -> AwsClients:
    """Clients are made once (~20 ms each): moto's stubber sits in every botocore client and answers
    only while a mock_aws is active, so the same clients serve every test's fresh moto."""
    return make_clients(REGION, session=boto_session)


@pytest.fixture
def clients(moto: None, _cached_clients: AwsClients) -> AwsClients:
    return _cached_clients


@pytest.fixture(autouse=True)
def _cheap_bcrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    """bcrypt at its lowest cost (4) in tests: the format and checks are the same, ~60 ms less a hash."""
    monkeypatch.setattr("provisioning.secrets.BCRYPT_ROUNDS", 4)


@pytest.fixture
def environ() -> dict[str, str]:
    """What `env:` secret references resolve against (never the real environment)."""
    return {PASSWORD_ENV: PASSWORD}


@pytest.fixture
def make_provisioner(clients: AwsClients, environ: dict[str, str]) -> Callable[..., Provisioner]:
    def make(spec: Spec | None = None, **kwargs: Any) -> Provisioner:
        kwargs.setdefault("environ", environ)
        kwargs.setdefault("waits", FAST_WAITS)
        kwargs.setdefault("run_id", "test-run")
        kwargs.setdefault("expires", "2099-01-01T00:00:00Z")
        return Provisioner(spec or build_spec(), kwargs.pop("clients", clients), **kwargs)

    return make


LOCK_ROOT = f"{names.LOCK_ROOT}/"


def is_read(operation: str) -> bool:
    return operation.startswith(READ_PREFIXES)


def injected_error(operation: str, code: str = "InjectedFault", message: str = "injected by the test") -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 400}}
    return ClientError(response, operation)


@dataclass
class CallLog:
    """Every AWS operation sent through the watched clients, with its parameters."""

    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def names(self) -> list[str]:
        return [operation for _, operation, _ in self.calls]

    def mutating(self) -> list[str]:
        """The changing calls, but for taking and releasing the deployment's lock (every up and down does)."""
        return [
            operation
            for _, operation, params in self.calls
            if not is_read(operation) and not str(params.get("Name", "")).startswith(LOCK_ROOT)
        ]

    def params(self, operation: str) -> list[dict[str, Any]]:
        return [params for _, name, params in self.calls if name == operation]


Hook = Callable[[str, str, dict[str, Any]], None]


@contextmanager
def watch(clients: AwsClients, hook: Hook | None = None) -> Iterator[CallLog]:
    """Record every call made through `clients` with the parameters the code passed (before botocore
    encodes anything), and let `hook(service, operation, params)` raise to make a call fail."""
    log = CallLog()
    unique = f"spotreg-watch-{id(log)}"

    def provide(params: dict[str, Any], model: Any, **_: Any) -> None:
        service = model.service_model.service_name
        log.calls.append((service, model.name, copy.deepcopy(params)))
        if hook is not None:
            hook(service, model.name, params)

    for client in clients.all():
        client.meta.events.register("provide-client-params.*.*", provide, unique_id=unique)
    try:
        yield log
    finally:
        for client in clients.all():
            client.meta.events.unregister("provide-client-params.*.*", unique_id=unique)


def fail(
    operation: str,
    code: str = "InjectedFault",
    message: str = "injected by the test",
    times: int = 1,
    when: Callable[[dict[str, Any]], bool] | None = None,
) -> Hook:
    """A hook failing `operation` (the first `times` matching calls) with a ClientError of `code`."""
    left = [times]

    def hook(service: str, name: str, params: dict[str, Any]) -> None:
        if name == operation and left[0] > 0 and (when is None or when(params)):
            left[0] -= 1
            raise injected_error(name, code, message)

    return hook


ZONE_ID = "Z0SPOTREGOFFLINE"


def create_zone(route53: Any, name: str = "example.com", zone_id: str = ZONE_ID) -> str:
    """A hosted zone in moto, with an id of AWS's shape (moto's own ids do not begin with Z, which
    the spec's rule for dns.zone_id requires)."""
    identifier = HostedZoneIdentifier(ACCOUNT_ID, f"{name}.", None)
    moto_id_manager.set_custom_id(identifier, zone_id)
    try:
        answer = route53.create_hosted_zone(Name=name, CallerReference=f"spotreg-offline-{zone_id}")
    finally:
        moto_id_manager.unset_custom_id(identifier)
    created = str(answer["HostedZone"]["Id"]).rsplit("/", 1)[-1]
    assert created == zone_id, f"moto ignored the custom zone id: {created}"
    return created


@pytest.fixture
def zone_id(clients: AwsClients) -> str:
    """The hosted zone example.com in moto."""
    return create_zone(clients.route53)

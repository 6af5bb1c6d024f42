"""Transitions as a property: `up A; up B` against moto ends as a fresh `up B` does, plus only what is
kept on purpose (a bucket holding images); `plan` for B names every change `up B` then makes, the
deletions of what A had included; `down` then leaves only the kept buckets, and `down(delete_data=True)`
nothing.

What "ends as a fresh `up B`" means is `normalised` (its docstring): ids, addresses and certificate
values differ between two runs, so both inventories are compared by what is stable about them.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from moto.core.base_backend import BackendDict, backend_lock

from provisioning import names
from provisioning.aws.instance import live_instances, user_data_of
from provisioning.changes import Change
from provisioning.clients import AwsClients
from provisioning.inventory import Inventory, Resource, take_inventory
from provisioning.provisioner import Provisioner
from provisioning.render.tls import certificate_names
from provisioning.render.user_data import render_user_data
from provisioning.secrets import htpasswd_matches, resolve_secrets
from provisioning.spec import Spec
from provisioning.spec_loading import spec_from_mapping
from suites.offline.conftest import create_zone
from suites.offline.transition_pairs import DEPLOYMENT, ENVIRON, FIXED_PAIRS, Side, pairs

CHANGING = ("create", "update", "delete", "replace")
IMAGE_KEY = "registry/docker/registry/v2/blobs/sha256/ab/ab12/data"
# ≥200 pairs in the offline gate; SPOTREG_TRANSITION_EXAMPLES overrides it (more for a soak run).
EXAMPLES = int(os.environ.get("SPOTREG_TRANSITION_EXAMPLES", "200"))

MakeProvisioner = Callable[..., Provisioner]


# -- the normalised view ---------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Normal:
    """One resource as two runs of the same spec agree on it: kind, stable name, stable facts."""

    kind: str
    name: str
    details: tuple[tuple[str, str], ...]

    def __str__(self) -> str:
        facts = ", ".join(f"{k}={v}" for k, v in self.details)
        return f"{self.kind} {self.name}" + (f" [{facts}]" if facts else "")


def _facts(**values: object) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, str(v)) for k, v in values.items() if v is not None))


def _parameter_values(clients: AwsClients, names_: Sequence[str]) -> dict[str, str]:
    """The decrypted values of the parameters `names_` (those that exist)."""
    found: dict[str, str] = {}
    for start in range(0, len(names_), 10):  # GetParameters takes 10 names at most
        answer = clients.ssm.get_parameters(Names=list(names_[start : start + 10]), WithDecryption=True)
        found.update((str(p["Name"]), str(p["Value"])) for p in answer["Parameters"])
    return found


def _without_vpc(details: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in details.items() if k not in ("vpc",)}


def normalised(clients: AwsClients, inventory: Inventory, spec: Spec) -> tuple[Normal, ...]:
    """`normal_pairs`' normalised entries, sorted."""
    return tuple(sorted(n for _, n in normal_pairs(clients, inventory, spec)))


def normal_pairs(clients: AwsClients, inventory: Inventory, spec: Spec) -> list[tuple[Resource, Normal]]:
    """Each resource with its normalised entry: the deployment as two runs of `spec` agree on it,
    checked against `spec` where values differ.

    Kept as they are: every resource's kind and stable name (bucket, role, role policy document,
    instance profile, parameter names and types, security group name and rules, IAM user and its
    policies, DNS record name, type and TTL), and the tags of each. Ids are dropped (instance,
    group, allocation, access key, spot request) and counted instead: two instances or two
    addresses are two entries. What differs by value is replaced by what it must be for `spec`:

    - instance: its type is one of instance.types, its groups by name, its user data is what
      `spec` renders with the certificate stored now (a kept instance of A fails this);
    - spot request: whether it belongs to a live instance;
    - Elastic IP: whether it is associated with the live instance;
    - DNS A record: whether it points at the Elastic IP, the instance's own address, or elsewhere;
    - parameters: htpasswd holds exactly `spec`'s users, the TLS certificate is for the names a
      fresh `up` would issue it to (host name, else the Elastic IP, else the resource name), the
      DNS password is `spec`'s, the legacy key is the IAM user's one live key;
    - parameter versions and the zone of the instance are dropped (placement may choose another).
    """
    ec2 = clients.ec2
    live = live_instances(ec2, inventory.deployment)
    live_ids = {i.instance_id for i in live}
    own_ips = {i.public_ip for i in live if i.public_ip}
    eips = {str(r.detail("ip")) for r in inventory.of("elastic-ip")}
    group_names = {r.id: str(r.detail("name")) for r in inventory.of("security-group")}
    secrets = resolve_secrets(spec, ENVIRON)
    keys = {r.id for r in inventory.of("access-key")}
    values = _parameter_values(clients, [r.id for r in inventory.of("parameter")])

    def address(value: str) -> str:
        if value in eips:
            return "<elastic ip>"
        return "<instance address>" if value in own_ips else "<an address the deployment does not hold>"

    def parameter(resource: Resource) -> tuple[tuple[str, str], ...]:
        value = values.get(resource.id)
        check: str | None = None
        if resource.id == names.htpasswd_parameter(spec):
            check = f"users of the spec: {value is not None and htpasswd_matches(value, secrets.users)}"
        elif resource.id == names.tls_cert_parameter(spec) and value is not None:
            check = "for " + ",".join(sorted(address(n) if n[0].isdigit() else n for n in certificate_names(value)))
        elif resource.id == names.dns_password_parameter(spec):
            check = f"the spec's password: {value == secrets.dns_password}"
        elif resource.id == names.legacy_key_parameter(spec):
            check = f"the user's live key: {value is not None and any(k in value for k in keys)}"
        return _facts(type=resource.detail("type"), tags=resource.detail("tags"), value=check)

    def instance(resource: Resource) -> tuple[tuple[str, str], ...]:
        cert = values.get(names.tls_cert_parameter(spec)) if spec.tls.mode == "selfsigned" else None
        if spec.tls.mode == "selfsigned" and cert is None:
            wanted = None  # no certificate stored: no user data of the spec can be running
        else:
            wanted = render_user_data(spec, None if cert is None else cert.encode("ascii"))
        groups = ",".join(
            sorted(group_names.get(g, "<unknown group>") for g in str(resource.detail("groups")).split(","))
        )
        return _facts(
            type_of_the_spec=resource.detail("type") in spec.instance.types,
            groups=groups,
            profile=resource.detail("profile"),
            tags=resource.detail("tags"),
            user_data_of_the_spec=user_data_of(ec2, resource.id) == wanted,
        )

    def normal(r: Resource) -> Normal:
        details = dict(r.details)
        if r.kind == "instance":
            return Normal(r.kind, "", instance(r))
        if r.kind == "spot-request":
            return Normal(r.kind, "", _facts(of_the_live_instance=r.detail("instance") in live_ids))
        if r.kind == "elastic-ip":
            associated = r.detail("instance") in live_ids
            return Normal(r.kind, "", _facts(with_the_live_instance=associated, tags=r.detail("tags")))
        if r.kind == "access-key":
            return Normal(r.kind, str(r.detail("user")), _facts(status=r.detail("status")))
        if r.kind == "parameter":
            return Normal(r.kind, r.id, parameter(r))
        if r.kind == "security-group":
            return Normal(r.kind, str(details.get("name")), tuple(sorted(_without_vpc(details).items())))
        if r.kind == "dns-record" and r.id.split(" ")[1] == "A":
            pointed = ",".join(sorted(address(v) for v in str(r.detail("values")).split(",")))
            return Normal(r.kind, r.id, _facts(values=pointed, ttl=r.detail("ttl")))
        # bucket, role, role policy, instance profile, IAM user, TXT record: the same in every run
        return Normal(r.kind, r.id, r.details)

    return [(r, normal(r)) for r in inventory.resources]


def multiset_diff(left: Iterable[Normal], right: Iterable[Normal]) -> tuple[list[Normal], list[Normal]]:
    """(only in left, only in right), counting repeats."""
    a, b = Counter(left), Counter(right)
    return sorted((a - b).elements()), sorted((b - a).elements())


# -- what plan must name ----------------------------------------------------------------------------


def _tokens(name: str) -> set[str]:
    return set(name.replace("(", " ").replace(")", " ").split())


# Which plan changes may name a resource of each inventory kind.
PLAN_KINDS: dict[str, tuple[str, ...]] = {
    "spot-request": ("instance",),
    "elastic-ip": ("elastic-ip", "address-association"),
    "iam-user": ("iam-user", "user-policy", "access-key"),
    "access-key": ("access-key", "iam-user"),
}


def named_by(resource: Resource, change: Change) -> bool:
    """Whether `change` is about `resource`: a change of a kind that manages it, naming it."""
    if resource.kind == "parameter" and resource.id.endswith("/legacy-access-key"):
        # legacy mode's step names the key it stores there (detail: "stored as SecureString <name>")
        return change.kind == "access-key" or (change.kind == "parameter" and change.name == resource.id)
    if change.kind not in PLAN_KINDS.get(resource.kind, (resource.kind,)):
        return False
    if resource.kind in ("instance", "spot-request", "elastic-ip", "access-key"):
        return True  # one of each per deployment: a change of that kind is about it
    if resource.kind == "security-group":
        return resource.id in _tokens(change.name) or str(resource.detail("name")) in _tokens(change.name)
    if resource.kind == "dns-record":
        host, zone = resource.id.split(" ")[0], resource.id.rsplit(" ", 1)[-1]  # "<host> <type> in <zone>"
        return {host, zone} <= _tokens(change.name)
    return change.name == resource.id


def unplanned(changes: Sequence[Change], before: Inventory, after: Inventory, doomed: Iterable[Resource]) -> list[str]:
    """Every difference `up` made between `before` and `after`, and every resource of `before` that B
    has no place for (`doomed`), that no changing plan change names."""
    changing = [c for c in changes if c.action in CHANGING]
    mine = {(r.kind, r.id): r for r in before.resources}
    theirs = {(r.kind, r.id): r for r in after.resources}
    missing = []
    for key in sorted(mine.keys() | theirs.keys()):
        old, new = mine.get(key), theirs.get(key)
        what = (
            "made" if old is None else "removed" if new is None else "changed" if old.details != new.details else None
        )
        resource = new if new is not None else old
        assert resource is not None
        if what is not None and not any(named_by(resource, c) for c in changing):
            missing.append(f"up {what} {resource} (details {dict(resource.details)}) and plan did not say so")
    for resource in doomed:
        if not any(named_by(resource, c) and c.action in ("delete", "replace", "update") for c in changing):
            missing.append(f"{resource} of A has no place in B and plan names no deletion of it")
    return missing


# -- running a pair ---------------------------------------------------------------------------------


def fresh_account(clients: AwsClients) -> None:
    """An empty moto account with the hosted zone ZONE_ID, as each run needs: every backend reset but
    KMS, which holds nothing of a deployment, only the AWS-managed aws/ebs key EC2 makes at the first
    launch (an RSA key, a tenth of a second, twice a pair)."""
    instances: list[Any] = BackendDict._instances  # type: ignore[misc]  # what BackendDict.reset() walks
    with backend_lock:
        for backend in list(instances):
            if backend.service_name == "kms":
                continue
            for account in backend.values():
                account.reset()
            backend.clear()
            instances.remove(backend)
    create_zone(clients.route53)


def everything(clients: AwsClients) -> Inventory:
    """The deployment in every hosted zone and every bucket tagged as its own."""
    return take_inventory(clients, DEPLOYMENT)


def spec_of(side: Side) -> Spec:
    return spec_from_mapping(side.mapping)


def put_image(clients: AwsClients, bucket: str) -> None:
    """What a push leaves in the bucket: a blob below the registry's root directory."""
    clients.s3.put_object(Bucket=bucket, Key=IMAGE_KEY, Body=b"a layer")


def holds_objects(clients: AwsClients, bucket: str) -> bool:
    return bool(clients.s3.list_objects_v2(Bucket=bucket, MaxKeys=1).get("KeyCount"))


@dataclass
class Outcome:
    """What one pair did: every way it broke the property (empty: it held), and whether the
    normalised view tells A's state from B's at all (a pair it cannot tell apart tests nothing)."""

    problems: list[str]
    observable: bool

    def report(self, a: Side, b: Side) -> str:
        return f"A: {a.describe()}\nB: {b.describe()}\n" + "\n".join(f"- {p}" for p in self.problems)


def run_pair(make: MakeProvisioner, clients: AwsClients, a: Side, b: Side) -> Outcome:
    """Fresh `up B` in an empty account; then, in another, `up A`, an image pushed, `plan B`, `up B`
    and `down` twice; every difference from the property is a problem. `up` returns the inventory of
    the spec's bucket and zone, which here is everything (one zone, buckets found by tag)."""
    spec_a, spec_b = spec_of(a), spec_of(b)
    problems: list[str] = []

    fresh_account(clients)
    fresh_b = make(spec_b).up(legacy_access_key=b.legacy)
    want = normalised(clients, fresh_b, spec_b)

    fresh_account(clients)
    after_a = make(spec_a).up(legacy_access_key=a.legacy)
    put_image(clients, spec_a.storage.bucket)
    a_normal = normal_pairs(clients, after_a, spec_b)  # now: it reads values and user data from AWS
    provisioner = make(spec_b)
    planned = provisioner.plan(legacy_access_key=b.legacy).changes
    after_b = provisioner.up(legacy_access_key=b.legacy, switch_storage=True)  # a new bucket is asked for

    kept = {r.id for r in after_b.of("bucket") if r.id != spec_b.storage.bucket and holds_objects(clients, r.id)}
    got = normalised(clients, Inventory(DEPLOYMENT, tuple(r for r in after_b.resources if r.id not in kept)), spec_b)
    dangling, lacking = multiset_diff(got, want)
    problems += [f"after up A; up B, not as after a fresh up B: {n}" for n in dangling]
    problems += [f"a fresh up B has it, up A; up B does not: {n}" for n in lacking]

    b_keys = {(n.kind, n.name) for n in want}
    doomed = [r for r, n in a_normal if (n.kind, n.name) not in b_keys and not (r.kind == "bucket" and r.id in kept)]
    problems += [f"plan B after up A: {line}" for line in unplanned(planned, after_a, after_b, doomed)]

    provisioner.down()
    problems += [f"down left {r}" for r in everything(clients).resources if r.kind != "bucket"]
    provisioner.down(delete_data=True)  # B's bucket; A's, holding images, is kept on purpose (a note says so)
    problems += [f"down(delete_data=True) left {r}" for r in everything(clients).resources if r.id not in kept]
    observable = sorted(n for _, n in a_normal) != list(want)
    return Outcome(problems, observable)


# -- the tests --------------------------------------------------------------------------------------


@pytest.fixture
def make(make_provisioner: MakeProvisioner) -> MakeProvisioner:
    """Provisioners that resolve the pairs' `env:` references."""

    def build(spec: Spec) -> Provisioner:
        return make_provisioner(spec, environ=ENVIRON)

    return build


@pytest.mark.parametrize(("a", "b"), list(FIXED_PAIRS.values()), ids=list(FIXED_PAIRS))
def test_a_transition_ends_as_a_fresh_up_and_plan_names_it(
    make: MakeProvisioner, clients: AwsClients, a: Side, b: Side
) -> None:
    outcome = run_pair(make, clients, a, b)
    assert outcome.observable, "the normalised view cannot tell A's state from B's: the pair tests nothing"
    if outcome.problems:
        pytest.fail(outcome.report(a, b), pytrace=False)


# The property's examples, split by A's DNS mode into shards that xdist spreads over its workers.
SHARDS = ("route53", "eip", "none", "namecheap")


@pytest.mark.parametrize("dns_mode", SHARDS)
def test_any_transition_ends_as_a_fresh_up_and_plan_names_it(
    make: MakeProvisioner, clients: AwsClients, dns_mode: str
) -> None:
    """At least EXAMPLES pairs in all (EXAMPLES / 4 per shard), each run as `run_pair` says."""

    @settings(
        max_examples=-(-EXAMPLES // len(SHARDS)),
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        print_blob=True,
    )
    @given(pair=pairs(first_dns_mode=dns_mode))
    def transition(pair: tuple[Side, Side]) -> None:
        a, b = pair
        outcome = run_pair(make, clients, a, b)
        if outcome.problems:
            pytest.fail(outcome.report(a, b), pytrace=False)

    transition()


# What the boot script fetches from SSM once, at boot. (The htpasswd is fetched again every minute by
# spotreg-refresh.timer: a running registry follows a change of users without a restart.)
BOOT_INPUTS = ("tls-key", "legacy-access-key")


@pytest.mark.parametrize("pair_id", ["users-changed", "legacy-on-to-off", "legacy-off-to-on"])
def test_a_kept_instance_runs_with_what_a_fresh_one_would_read_at_boot(
    make: MakeProvisioner, clients: AwsClients, pair_id: str
) -> None:
    """The boot script reads the TLS key and the legacy key from SSM when the registry starts: an instance
    `up B` keeps must not have booted with values `up B` then changed (the running registry would go on
    with a deleted access key), unless the plan says so. Users are refreshed on the running instance."""
    a, b = FIXED_PAIRS[pair_id]
    fresh_account(clients)
    make(spec_of(a)).up(legacy_access_key=a.legacy)
    booted = {i.instance_id for i in live_instances(clients.ec2, DEPLOYMENT)}
    before = _boot_values(clients)
    provisioner = make(spec_of(b))
    planned = provisioner.plan(legacy_access_key=b.legacy).changes
    provisioner.up(legacy_access_key=b.legacy)
    kept = booted & {i.instance_id for i in live_instances(clients.ec2, DEPLOYMENT)}
    after = _boot_values(clients)
    changed = sorted(name for name in before.keys() | after.keys() if before.get(name) != after.get(name))
    said = [str(c) for c in planned if c.kind == "instance" and c.action in CHANGING]
    if kept and changed and not said:
        plan_said = [str(c) for c in planned if c.kind == "instance"]
        pytest.fail(
            f"{pair_id}: instance {sorted(kept)} kept (plan: {plan_said}) though what it read at boot changed: "
            f"{changed}",
            pytrace=False,
        )


def _boot_values(clients: AwsClients) -> dict[str, str]:
    prefix = names.deployment_parameter_prefix(DEPLOYMENT)
    wanted = [f"{prefix}/{name}" for name in BOOT_INPUTS]
    found = clients.ssm.get_parameters(Names=wanted, WithDecryption=True)["Parameters"]
    return {str(p["Name"]): str(p["Value"]) for p in found}

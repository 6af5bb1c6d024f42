"""Bad input gets a clear error — naming the field, the value and the rule — and creates nothing."""

from __future__ import annotations

from typing import Any

import pytest

from provisioning.errors import InputError, OwnershipError, PermissionDenied, SecretError
from provisioning.provisioner import Provisioner
from provisioning.spec_loading import SpecError
from suites.offline.conftest import BASE_MAPPING, ZONE_ID, build_spec, merged, watch


def test_unresolvable_env_secret_is_refused_before_any_aws_call(make_provisioner, clients):
    provisioner = make_provisioner(environ={})
    with watch(clients) as log, pytest.raises(SecretError) as refused:
        provisioner.up()
    assert log.calls == [], f"AWS was called before the input was checked: {log.names()}"
    message = str(refused.value)
    assert "registry.users[0].password" in message and "env:SPOTREG_PASSWORD_CI" in message
    assert "not set" in message
    assert refused.value.exit_code == 2


def test_every_unresolvable_secret_is_named_at_once(make_provisioner, make_spec, clients):
    spec = make_spec(
        registry={"users": [{"name": "ci", "password": "env:NOPE_ONE"}, {"name": "ops", "password": "env:NOPE_TWO"}]},
        dns={"mode": "namecheap", "hostname": "registry.example.com", "password": "env:NOPE_DNS"},
    )
    with watch(clients) as log, pytest.raises(SecretError) as refused:
        make_provisioner(spec, environ={"NOPE_TWO": ""}).plan()
    assert log.calls == []
    fields = {p.field: p for p in refused.value.problems}
    assert set(fields) == {"registry.users[0].password", "registry.users[1].password", "dns.password"}
    assert "empty" in fields["registry.users[1].password"].rule


def test_missing_ssm_secret_is_refused_after_reading_only(make_provisioner, make_spec, clients):
    spec = make_spec(registry={"users": [{"name": "ci", "password": "ssm:/team/registry/ci"}]})
    with watch(clients) as log, pytest.raises(SecretError, match=r"ssm:/team/registry/ci") as refused:
        make_provisioner(spec).up()
    assert log.mutating() == []
    assert "does not exist" in str(refused.value)
    assert make_provisioner(spec).inventory().is_empty


def test_ssm_secret_resolves(make_provisioner, make_spec, clients):
    clients.ssm.put_parameter(Name="/team/registry/ci", Value="from-ssm-Password-1", Type="SecureString")
    spec = make_spec(registry={"users": [{"name": "ci", "password": "ssm:/team/registry/ci"}]})
    make_provisioner(spec).up()
    value = clients.ssm.get_parameter(Name="/spotreg/offline/htpasswd", WithDecryption=True)["Parameter"]["Value"]
    from provisioning.secrets import htpasswd_matches

    assert htpasswd_matches(value, {"ci": "from-ssm-Password-1"})


@pytest.mark.parametrize(
    "operation",
    [
        "CreateBucket",
        "PutBucketTagging",
        "PutPublicAccessBlock",
        "PutBucketEncryption",
        "PutBucketLifecycleConfiguration",
    ],
)
def test_missing_bucket_permission_names_action_and_bucket_and_leaves_nothing(make_provisioner, clients, operation):
    def deny(service, name, params):
        if name == operation:
            from suites.offline.conftest import injected_error

            raise injected_error(name, "AccessDenied", "User: arn:aws:iam::123456789012:user/ci is not authorized")

    provisioner = make_provisioner()
    with watch(clients, deny), pytest.raises(PermissionDenied) as refused:
        provisioner.up()
    error = refused.value
    assert error.action == operation and "spotreg-offline-images" in error.resource
    assert error.step == "bucket" and error.exit_code == 3
    assert f"AWS denied {operation} on bucket spotreg-offline-images" in str(error)
    assert provisioner.inventory().is_empty, str(provisioner.inventory())


def test_bucket_of_another_account_is_refused_before_anything_is_made(make_provisioner, clients):
    def deny(service, name, params):
        if name == "GetBucketLocation":
            from suites.offline.conftest import injected_error

            raise injected_error(name, "AccessDenied", "Access Denied")

    sent: list[dict[str, Any]] = []  # what S3 was sent, after every client hook

    def record(params: dict[str, Any], **_: Any) -> None:
        sent.append(dict(params))

    provisioner = make_provisioner()
    clients.s3.meta.events.register("before-parameter-build.s3", record, unique_id="sent")
    try:
        with watch(clients, deny) as log, pytest.raises(OwnershipError, match="another AWS account") as refused:
            provisioner.up()
    finally:
        clients.s3.meta.events.unregister("before-parameter-build.s3", unique_id="sent")
    assert refused.value.exit_code == 7 and refused.value.step == "bucket"
    assert log.mutating() == []
    # every S3 call on a bucket named this account as the bucket's expected owner
    on_buckets = [params for params in sent if "Bucket" in params]
    assert on_buckets and all(params.get("ExpectedBucketOwner") == "123456789012" for params in on_buckets)


def test_bucket_in_another_region_is_refused(make_provisioner, clients, boto_session):
    from provisioning.clients import make_clients

    make_clients("eu-west-1", session=boto_session).s3.create_bucket(
        Bucket="spotreg-offline-images", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    with watch(clients) as log, pytest.raises(InputError, match=r"storage.bucket.*eu-west-1"):
        make_provisioner().up()
    assert log.mutating() == []


def test_unknown_subnet_is_refused(make_provisioner, make_spec, clients):
    spec = make_spec(instance={"subnet_id": "subnet-0123456789abcdef0"})
    with watch(clients) as log, pytest.raises(InputError, match=r"instance.subnet_id.*subnet-0123456789abcdef0"):
        make_provisioner(spec).up()
    assert log.mutating() == []


def test_hostname_outside_the_zone_is_refused(make_provisioner, make_spec, clients, zone_id):
    spec = make_spec(dns={"mode": "route53", "hostname": "registry.example.org", "zone_id": ZONE_ID})
    with watch(clients) as log, pytest.raises(InputError, match=r"dns.hostname.*not in the hosted zone example.com"):
        make_provisioner(spec).up()
    assert log.mutating() == []


def test_unknown_zone_is_refused(make_provisioner, make_spec, clients):
    spec = make_spec(dns={"mode": "route53", "hostname": "registry.example.com", "zone_id": "Z0NOSUCHZONE"})
    with watch(clients) as log, pytest.raises(InputError, match=r"dns.zone_id.*Z0NOSUCHZONE"):
        make_provisioner(spec).up()
    assert log.mutating() == []


def test_a_foreign_role_of_the_same_name_is_refused_before_anything_is_made(make_provisioner, clients):
    clients.iam.create_role(RoleName="spotreg-offline", AssumeRolePolicyDocument="{}")
    with watch(clients) as log, pytest.raises(OwnershipError, match="spotreg-offline"):
        make_provisioner().up()
    assert log.mutating() == []
    assert make_provisioner().down().changes == ()
    assert clients.iam.get_role(RoleName="spotreg-offline")


def test_invalid_spec_and_unknown_region_are_refused_by_the_spec():
    with pytest.raises(SpecError, match=r"deployment.region = 'mars-north-1'"):
        build_spec(deployment={"name": "offline", "region": "mars-north-1"})
    with pytest.raises(SpecError, match=r"storage.bucket"):
        build_spec(storage={"bucket": "Not_A_Bucket"})


def test_clients_of_another_region_are_refused(clients):
    spec = build_spec(deployment={"name": "offline", "region": "eu-west-1"})
    with pytest.raises(ValueError, match="eu-west-1"):
        Provisioner(spec, clients)


def test_base_mapping_is_valid():
    assert build_spec().deployment.name == merged(BASE_MAPPING, {})["deployment"]["name"]


def test_no_credentials_is_a_clear_step_error(make_spec, environ, moto, monkeypatch):
    import boto3

    from provisioning.clients import make_clients
    from provisioning.errors import CredentialsError

    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(variable)
    clients = make_clients("us-east-1", session=boto3.session.Session())
    with pytest.raises(CredentialsError, match="Unable to locate credentials") as failure:
        Provisioner(make_spec(), clients, environ=environ).up()
    assert failure.value.step == "preflight" and failure.value.exit_code == 3
    assert failure.value.hint is not None and "spotreg down" not in failure.value.hint

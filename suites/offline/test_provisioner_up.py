"""`up` against moto: what it makes, what it sends, and that a second `up` changes nothing."""

from __future__ import annotations

import base64
import gzip
import json

import pytest

from provisioning import names
from provisioning.aws.bucket import LIFECYCLE_RULE_ID
from provisioning.aws.instance import user_data_of
from provisioning.names import tls_ca_parameter
from provisioning.render.user_data import render_user_data
from provisioning.secrets import htpasswd_matches
from suites.offline.conftest import PASSWORD, ZONE_ID, watch

BASE_KINDS = {"bucket", "role", "role-policy", "instance-profile", "parameter", "security-group", "instance"}


def test_up_makes_every_resource_tagged(make_provisioner, clients):
    provisioner = make_provisioner()
    inventory = provisioner.up()

    assert inventory.kinds() == BASE_KINDS
    wanted = {"spotreg:deployment": "offline", "spotreg:run": "test-run", "team": "platform"}
    for resource in inventory.resources:
        if resource.kind in ("role-policy",):
            continue
        tags = dict(item.split("=", 1) for item in (resource.detail("tags") or "").split(","))
        assert wanted.items() <= tags.items(), f"{resource} lacks spotreg's tags: {tags}"
    names_ = {r.id for r in inventory.of("parameter")}
    assert names_ == {
        "/spotreg/offline/htpasswd",
        "/spotreg/offline/tls-key",
        "/spotreg/offline/tls-cert",
        "/spotreg/offline/tls-ca",
    }
    assert {r.detail("type") for r in inventory.of("parameter") if r.id.endswith(("htpasswd", "tls-key"))} == {
        "SecureString"
    }


def test_bucket_is_private_encrypted_owner_enforced_with_abort_rule(make_provisioner, clients):
    make_provisioner().up()
    s3, bucket = clients.s3, "spotreg-offline-images"
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    ownership = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"][0]
    assert ownership["ObjectOwnership"] == "BucketOwnerEnforced"
    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert [(r["ID"], r["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"]) for r in rules] == [
        (LIFECYCLE_RULE_ID, 7)
    ]
    assert "Status" not in s3.get_bucket_versioning(Bucket=bucket)


def test_bucket_versioning_and_other_lifecycle_rules_are_kept(make_provisioner, make_spec, clients):
    s3, bucket = clients.s3, "spotreg-offline-images"
    s3.create_bucket(Bucket=bucket)
    own_rule = {"ID": "theirs", "Status": "Enabled", "Filter": {"Prefix": "logs/"}, "Expiration": {"Days": 30}}
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [own_rule]})
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "owner", "Value": "ops"}]})
    make_provisioner(make_spec(storage={"versioning": True})).up()
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    ids = {r["ID"] for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    assert ids == {"theirs", LIFECYCLE_RULE_ID}
    tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}
    assert tags["owner"] == "ops" and tags["spotreg:deployment"] == "offline"


def test_launch_request_is_what_the_spec_says(make_provisioner, clients):
    """moto keeps neither spot options nor credit specification: assert on the request we sent."""
    provisioner = make_provisioner()
    with watch(clients) as log:
        inventory = provisioner.up()
    (request,) = log.params("RunInstances")
    assert request["InstanceType"] == "t4g.micro"
    assert request["InstanceMarketOptions"] == {
        "MarketType": "spot",
        "SpotOptions": {"SpotInstanceType": "persistent", "InstanceInterruptionBehavior": "stop"},
    }
    assert request["MetadataOptions"] == {
        "HttpTokens": "required",
        "HttpPutResponseHopLimit": 2,
        "HttpEndpoint": "enabled",
    }
    assert request["CreditSpecification"] == {"CpuCredits": "standard"}
    assert request["IamInstanceProfile"]["Arn"].endswith(":instance-profile/spotreg-offline")
    (group,) = inventory.of("security-group")
    assert request["NetworkInterfaces"][0]["Groups"] == [group.id]
    kinds = {spec["ResourceType"] for spec in request["TagSpecifications"]}
    assert kinds == {"instance", "volume", "network-interface", "spot-instances-request"}
    for spec in request["TagSpecifications"]:
        tags = {t["Key"]: t["Value"] for t in spec["Tags"]}
        assert tags["spotreg:run"] == "test-run" and tags["spotreg:expires"] == "2099-01-01T00:00:00Z"
    # the AMI came from the public AL2023 parameter for arm64
    ami = clients.ssm.get_parameter(Name="/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64")
    assert request["ImageId"] == ami["Parameter"]["Value"]


def test_user_data_carries_the_stored_certificate_and_no_secret(make_provisioner, make_spec, clients):
    spec = make_spec()
    provisioner = make_provisioner(spec)
    inventory = provisioner.up()
    (instance,) = inventory.of("instance")
    user_data = user_data_of(clients.ec2, instance.id)
    cert = clients.ssm.get_parameter(Name="/spotreg/offline/tls-cert")["Parameter"]["Value"]
    assert user_data == render_user_data(spec, cert.encode())
    assert PASSWORD not in user_data
    key = clients.ssm.get_parameter(Name=names.tls_key_parameter(spec), WithDecryption=True)["Parameter"]["Value"]
    assert key.strip() not in user_data
    assert clients.ssm.get_parameter(Name=tls_ca_parameter(spec))["Parameter"]["Value"].startswith("-----BEGIN")


def test_htpasswd_is_bcrypt_of_the_resolved_secret(make_provisioner, clients):
    make_provisioner().up()
    value = clients.ssm.get_parameter(Name="/spotreg/offline/htpasswd", WithDecryption=True)["Parameter"]["Value"]
    assert value.startswith("ci:$2y$")
    assert htpasswd_matches(value, {"ci": PASSWORD})
    assert not htpasswd_matches(value, {"ci": "wrong"})


def test_security_group_rules_are_the_rendered_ones(make_provisioner, clients):
    inventory = make_provisioner().up()
    (group,) = inventory.of("security-group")
    described = clients.ec2.describe_security_groups(GroupIds=[group.id])["SecurityGroups"][0]
    perms = described["IpPermissions"]
    assert [(p["IpProtocol"], p["FromPort"], p["ToPort"]) for p in perms] == [("tcp", 443, 443)]
    assert [r["CidrIp"] for r in perms[0]["IpRanges"]] == ["203.0.113.7/32"]


def test_second_up_sends_no_changing_request_and_inventory_is_identical(make_provisioner, clients):
    provisioner = make_provisioner()
    first = provisioner.up()
    with watch(clients) as log:
        second = provisioner.up()
    assert first.diff(second) == [], "the second up changed: " + "; ".join(first.diff(second))
    assert second == first
    assert log.mutating() == [], f"the second up sent changing requests: {log.mutating()}"
    assert all(not c.changes_anything for c in provisioner.last_up.changes), provisioner.last_up.changes


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"dns": {"mode": "eip"}}, id="eip"),
        pytest.param(
            {"dns": {"mode": "route53", "hostname": "registry.example.com", "zone_id": ZONE_ID}}, id="route53"
        ),
        pytest.param({"tls": {"mode": "none"}, "instance": {"interruption": "terminate"}}, id="plain-one-time"),
        pytest.param(
            {"network": {"operator_cidrs": ["0.0.0.0/0", "::/0"], "ssh": True, "ssh_cidrs": ["198.51.100.0/24"]}},
            id="ssh-ipv6",
        ),
    ],
)
def test_up_is_idempotent_in_every_mode(make_provisioner, make_spec, clients, zone_id, overrides):
    provisioner = make_provisioner(make_spec(**overrides))
    first = provisioner.up()
    with watch(clients) as log:
        second = provisioner.up()
    assert first.diff(second) == []
    assert log.mutating() == []


def test_drift_is_corrected_and_named(make_provisioner, clients):
    provisioner = make_provisioner()
    first = provisioner.up()
    (group,) = first.of("security-group")
    clients.ec2.authorize_security_group_ingress(
        GroupId=group.id,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    clients.s3.delete_bucket_lifecycle(Bucket="spotreg-offline-images")
    drifted = provisioner.inventory()
    changed = first.diff(drifted)
    assert any(line.startswith(f"changed security-group {group.id}") for line in changed), changed
    assert any(line.startswith("changed bucket spotreg-offline-images") for line in changed), changed
    plan = provisioner.plan()
    pending = {(c.kind, c.action) for c in plan.pending()}
    assert ("security-group", "update") in pending and ("bucket", "update") in pending
    assert provisioner.up() == first


def test_changed_users_rewrite_htpasswd_and_replace_nothing_else(make_provisioner, environ, clients):
    provisioner = make_provisioner()
    first = provisioner.up()
    environ["SPOTREG_PASSWORD_CI"] = "a new password"
    second = make_provisioner().up()
    changed = first.diff(second)
    assert (
        changed == [line for line in changed if line.startswith("changed parameter /spotreg/offline/htpasswd")]
        and len(changed) == 1
    ), changed


def test_instance_of_a_type_no_longer_listed_is_replaced(make_provisioner, make_spec, clients):
    first = make_provisioner().up()
    (old,) = first.of("instance")
    second = make_provisioner(make_spec(instance={"types": ["t3.small"]})).up()
    (new,) = second.of("instance")
    assert new.id != old.id and new.detail("type") == "t3.small"
    state = clients.ec2.describe_instances(InstanceIds=[old.id])["Reservations"][0]["Instances"][0]["State"]["Name"]
    assert state == "terminated"


def test_role_policy_is_the_rendered_one(make_provisioner, make_spec, clients):
    from provisioning.render.policy import render_registry_policy

    spec = make_spec()
    make_provisioner(spec).up()
    document = clients.iam.get_role_policy(RoleName="spotreg-offline", PolicyName="spotreg-registry")["PolicyDocument"]
    if isinstance(document, str):
        document = json.loads(document)
    assert document == render_registry_policy(spec, clients.account_id())


def test_user_data_is_base64_in_moto(make_provisioner, clients):
    """What an instance receives is the rendered text, gzipped (boto3 encodes it once, not twice)."""
    inventory = make_provisioner().up()
    (instance,) = inventory.of("instance")
    raw = clients.ec2.describe_instance_attribute(InstanceId=instance.id, Attribute="userData")["UserData"]["Value"]
    packed = base64.b64decode(raw)
    assert packed.startswith(b"\x1f\x8b")
    assert gzip.decompress(packed).decode().startswith("#cloud-config")


def test_a_second_up_says_it_kept_the_running_instance(make_provisioner):
    provisioner = make_provisioner()
    provisioner.up()
    assert provisioner.last_up is not None and provisioner.last_up.placement.startswith("t")  # type in zone: why
    provisioner.up()
    assert provisioner.last_up.placement == "kept the running instance"

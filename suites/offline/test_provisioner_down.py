"""`down` keeps the images unless told otherwise, and then removes every version of them."""

from __future__ import annotations

import pytest

from provisioning.errors import OwnershipError, WaitTimeout
from provisioning.results import IncompleteDown
from suites.offline.conftest import FAST_WAITS, ZONE_ID, fail, watch

BUCKET = "spotreg-offline-images"


def _put_images(s3, count: int = 3) -> None:
    for index in range(count):
        s3.put_object(Bucket=BUCKET, Key=f"registry/docker/registry/v2/blobs/{index}", Body=b"layer" * 10)


def test_down_keeps_a_bucket_with_images(make_provisioner, clients):
    provisioner = make_provisioner()
    provisioner.up()
    _put_images(clients.s3)
    removed = provisioner.down()
    assert [c.kind for c in removed.kept] == ["bucket"]
    assert clients.s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 3
    left = provisioner.inventory()
    assert [r.kind for r in left.resources] == ["bucket"]
    # and a later up finds and keeps it, images and all
    provisioner.up()
    assert clients.s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 3


def test_down_with_delete_data_removes_every_version_marker_and_upload(make_provisioner, make_spec, clients):
    provisioner = make_provisioner(make_spec(storage={"versioning": True}))
    provisioner.up()
    s3 = clients.s3
    _put_images(s3)
    _put_images(s3)  # second versions
    s3.delete_object(Bucket=BUCKET, Key="registry/docker/registry/v2/blobs/0")  # a delete marker
    s3.create_multipart_upload(Bucket=BUCKET, Key="registry/unfinished")
    assert len(s3.list_object_versions(Bucket=BUCKET)["Versions"]) == 6
    removed = provisioner.down(delete_data=True)
    assert removed.kept == ()
    assert any(c.kind == "bucket" and c.action == "delete" for c in removed.changes)
    assert BUCKET not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert provisioner.inventory().is_empty


def test_delete_data_refuses_a_bucket_that_is_not_the_deployments(make_provisioner, clients):
    clients.s3.create_bucket(Bucket=BUCKET)
    clients.s3.put_bucket_tagging(
        Bucket=BUCKET, Tagging={"TagSet": [{"Key": "spotreg:deployment", "Value": "someone-else"}]}
    )
    with pytest.raises(OwnershipError, match="someone-else"):
        make_provisioner().up()
    with pytest.raises(IncompleteDown) as incomplete:
        make_provisioner().down(delete_data=True)
    (refused,) = incomplete.value.removed.failures
    assert isinstance(refused, OwnershipError) and refused.step == "bucket" and incomplete.value.exit_code == 7
    assert "not created by spotreg: kept; delete it yourself" in str(incomplete.value)
    assert BUCKET in [b["Name"] for b in clients.s3.list_buckets()["Buckets"]]


def test_down_removes_dns_records_and_addresses(make_provisioner, make_spec, clients, zone_id):
    route53_spec = make_spec(dns={"mode": "route53", "hostname": "registry.example.com", "zone_id": ZONE_ID})
    provisioner = make_provisioner(route53_spec)
    inventory = provisioner.up()
    records = {r.id for r in inventory.of("dns-record")}
    assert records == {f"registry.example.com A in {ZONE_ID}", f"registry.example.com TXT in {ZONE_ID}"}
    (instance,) = inventory.of("instance")
    ip = clients.ec2.describe_instances(InstanceIds=[instance.id])["Reservations"][0]["Instances"][0]["PublicIpAddress"]
    (a,) = inventory.of("dns-record")[:1]
    assert a.detail("values") == ip
    provisioner.down()
    assert provisioner.inventory().without("bucket").is_empty
    types = {r["Type"] for r in clients.route53.list_resource_record_sets(HostedZoneId=ZONE_ID)["ResourceRecordSets"]}
    assert types == {"NS", "SOA"}


def test_down_leaves_a_record_marked_as_another_deployments(make_provisioner, make_spec, clients, zone_id):
    clients.route53.change_resource_record_sets(
        HostedZoneId=ZONE_ID,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": "registry.example.com.",
                        "Type": "TXT",
                        "TTL": 60,
                        "ResourceRecords": [{"Value": '"spotreg:deployment=other"'}],
                    },
                }
            ]
        },
    )
    spec = make_spec(dns={"mode": "route53", "hostname": "registry.example.com", "zone_id": ZONE_ID})
    with pytest.raises(OwnershipError, match="other"):
        make_provisioner(spec).up()
    assert make_provisioner(spec).down().changes == ()
    sets = clients.route53.list_resource_record_sets(HostedZoneId=ZONE_ID)["ResourceRecordSets"]
    assert any(s["Type"] == "TXT" for s in sets)


def test_eip_is_allocated_associated_and_released(make_provisioner, make_spec, clients):
    provisioner = make_provisioner(make_spec(dns={"mode": "eip"}))
    inventory = provisioner.up()
    (address,) = inventory.of("elastic-ip")
    (instance,) = inventory.of("instance")
    assert address.detail("instance") == instance.id
    status = provisioner.status()
    assert status.address == address.detail("ip")
    assert status.endpoint == f"https://{address.detail('ip')}/v2/"
    provisioner.down()
    assert clients.ec2.describe_addresses()["Addresses"] == []


def test_down_cancels_the_spot_request_before_terminating(make_provisioner, clients):
    """moto makes no spot request for run_instances: add the persistent request real AWS would have."""
    provisioner = make_provisioner()
    provisioner.up()
    request = clients.ec2.request_spot_instances(
        Type="persistent",
        LaunchSpecification={"ImageId": "ami-12345678", "InstanceType": "t3.micro"},
        TagSpecifications=[
            {"ResourceType": "spot-instances-request", "Tags": [{"Key": "spotreg:deployment", "Value": "offline"}]}
        ],
    )["SpotInstanceRequests"][0]["SpotInstanceRequestId"]
    assert [r.id for r in provisioner.inventory().of("spot-request")] == [request]
    with watch(clients) as log:
        removed = provisioner.down()
    order = [name for name in log.mutating() if name in ("CancelSpotInstanceRequests", "TerminateInstances")]
    assert order == ["CancelSpotInstanceRequests", "TerminateInstances"]
    assert log.params("CancelSpotInstanceRequests")[0]["SpotInstanceRequestIds"] == [request]
    assert ("spot-request", request) in {(c.kind, c.name) for c in removed.changes}
    assert not provisioner.inventory().of("spot-request")


def test_security_group_still_in_use_is_retried_then_deleted(make_provisioner, clients):
    provisioner = make_provisioner()
    provisioner.up()
    with watch(
        clients, fail("DeleteSecurityGroup", "DependencyViolation", "resource has a dependent object", 2)
    ) as log:
        provisioner.down()
    assert log.names().count("DeleteSecurityGroup") == 3
    assert provisioner.inventory().without("bucket").is_empty


def test_security_group_never_released_is_a_bounded_wait_with_what_was_seen(make_provisioner, clients):
    provisioner = make_provisioner()
    provisioner.up()
    with (
        watch(clients, fail("DeleteSecurityGroup", "DependencyViolation", "in use by eni-0abc", 1000)),
        pytest.raises(IncompleteDown) as incomplete,
    ):
        provisioner.down()
    (failure,) = incomplete.value.removed.failures
    assert isinstance(failure, WaitTimeout) and incomplete.value.exit_code == failure.exit_code
    assert "eni-0abc" in str(failure) and failure.step == "security-group"
    assert failure.waited < 10
    # the steps after the failed one still ran: only the group (and the bucket, kept) is left
    assert {r.kind for r in provisioner.inventory().resources} == {"bucket", "security-group"}
    provisioner.down()
    assert provisioner.inventory().without("bucket").is_empty


def test_down_removes_records_left_in_any_zone_after_the_spec_changed(make_provisioner, make_spec, clients, zone_id):
    make_provisioner(make_spec(dns={"mode": "route53", "hostname": "registry.example.com", "zone_id": ZONE_ID})).up()
    provisioner = make_provisioner(make_spec(dns={"mode": "none"}))
    assert provisioner.inventory().of("dns-record")
    provisioner.down()
    assert provisioner.inventory().without("bucket").is_empty


def test_up_in_another_region_creates_the_bucket_there(make_spec, environ, boto_session, moto):
    from provisioning.clients import make_clients
    from provisioning.provisioner import Provisioner

    clients = make_clients("eu-west-1", session=boto_session)
    spec = make_spec(deployment={"name": "offline", "region": "eu-west-1"})
    provisioner = Provisioner(spec, clients, environ=environ, waits=FAST_WAITS)
    provisioner.up()
    assert clients.s3.get_bucket_location(Bucket=BUCKET)["LocationConstraint"] == "eu-west-1"
    (instance,) = provisioner.inventory().of("instance")
    assert (instance.detail("zone") or "").startswith("eu-west-1")
    provisioner.down(delete_data=True)
    assert provisioner.inventory().is_empty


def test_subnet_in_its_own_vpc_gets_the_group_and_the_instance(make_provisioner, make_spec, clients):
    ec2 = clients.ec2
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.1.0/24", AvailabilityZone="us-east-1c")["Subnet"]["SubnetId"]
    with watch(clients) as log:
        inventory = make_provisioner(make_spec(instance={"subnet_id": subnet})).up()
    (group,) = inventory.of("security-group")
    assert group.detail("vpc") == vpc
    (instance,) = inventory.of("instance")
    assert instance.detail("zone") == "us-east-1c"
    assert log.params("RunInstances")[0]["NetworkInterfaces"][0]["SubnetId"] == subnet


def test_a_hosted_zone_that_does_not_exist_holds_nothing_to_find_or_remove(make_provisioner, make_spec):
    """The spec names a zone its dns.mode does not use (or one deleted since `up`): inventory and
    `down` look there, find no records, and carry on."""
    spec = make_spec(dns={"mode": "eip", "hostname": "registry.example.com", "zone_id": "Z0NOSUCHZONE0000000"})
    provisioner = make_provisioner(spec)
    assert provisioner.up().of("instance")
    removed = provisioner.down()
    assert {c.kind for c in removed.changes} >= {"instance", "elastic-ip", "security-group"}
    assert provisioner.inventory().without("bucket").is_empty


def test_delete_data_removes_a_bucket_of_any_size(make_provisioner, make_spec, clients):
    """More objects, versions and delete markers than one listing page holds: one `down` removes them all."""
    provisioner = make_provisioner(make_spec(storage={"bucket": BUCKET, "versioning": True}))
    provisioner.up()
    s3 = clients.s3
    for index in range(1100):
        s3.put_object(Bucket=BUCKET, Key=f"docker/registry/v2/blobs/{index:05d}", Body=b"x")
    for index in range(0, 1100, 2):
        s3.delete_object(Bucket=BUCKET, Key=f"docker/registry/v2/blobs/{index:05d}")  # a delete marker each
    s3.create_multipart_upload(Bucket=BUCKET, Key="docker/registry/v2/uploads/unfinished")
    removed = provisioner.down(delete_data=True)
    bucket = next(c for c in removed.changes if c.kind == "bucket")
    assert bucket.action == "delete" and bucket.detail.startswith("1651 ")  # 1100 versions, 550 markers, 1 upload
    assert BUCKET not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_down_of_a_deployment_without_route53_needs_no_route53_rights(make_provisioner, make_spec, clients):
    provisioner = make_provisioner(make_spec(dns={"mode": "eip"}))
    provisioner.up()
    with watch(clients, fail("ListHostedZones", "AccessDenied", "no route53 for this operator", 1000)):
        removed = provisioner.down()
        assert provisioner.inventory().without("bucket").is_empty
    assert any("Route 53 not searched" in note for note in removed.notes)
    assert {"instance", "elastic-ip", "security-group"} <= {c.kind for c in removed.changes}

"""The box's metadata service (IMDS) over HTTP, answering from moto's server: tokens, tree, credentials."""

from __future__ import annotations

import gzip
import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
import requests
from botocore.utils import InstanceMetadataFetcher

from fixtures.moto_server import MotoServer
from provisioning.rehearsal.metadata_service import MetadataService

REGION = "us-east-1"
ROLE = "spotreg-box-role"
USER_DATA = gzip.compress(b"#cloud-config\nwrite_files:\n  - path: /etc/spotreg\n    content: hi\n")  # not UTF-8
TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}}]}


@dataclass
class Clock:
    """Real time plus an offset the test moves."""

    offset: float = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture(scope="module")
def aws() -> Iterator[MotoServer]:
    """A moto server of this module's own: its instances never show up in another test's account."""
    server = MotoServer(region=REGION).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def clients(aws: MotoServer) -> tuple[Any, Any, Any]:
    """(ec2, iam, sts) for the service, made once: a boto3 client costs ~0.3 s."""
    return aws.client("ec2"), aws.client("iam"), aws.client("sts")


@pytest.fixture(scope="module")
def image(clients: tuple[Any, Any, Any]) -> str:
    """One of moto's default x86_64 AMIs (filtering them takes a second: once a module)."""
    images = clients[0].describe_images(Filters=[{"Name": "architecture", "Values": ["x86_64"]}])["Images"]
    return str(images[0]["ImageId"])


def launch(ec2: Any, image: str, **kwargs: Any) -> dict[str, Any]:
    run = ec2.run_instances(ImageId=image, InstanceType="t3.micro", MinCount=1, MaxCount=1, **kwargs)
    instance_id = run["Instances"][0]["InstanceId"]
    return dict(ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0])


@pytest.fixture(scope="module")
def instance(clients: tuple[Any, Any, Any], image: str) -> dict[str, Any]:
    """IMDSv2 required, an instance profile with a role, gzipped user data."""
    ec2, iam, _ = clients
    iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(TRUST))
    profile = iam.create_instance_profile(InstanceProfileName="spotreg-box-profile")["InstanceProfile"]
    iam.add_role_to_instance_profile(InstanceProfileName="spotreg-box-profile", RoleName=ROLE)
    options = {"HttpTokens": "required"}
    return launch(ec2, image, MetadataOptions=options, IamInstanceProfile={"Arn": profile["Arn"]}, UserData=USER_DATA)


def start(clients: tuple[Any, Any, Any], instance_id: str, clock: Clock) -> tuple[MetadataService, str]:
    service = MetadataService(lambda: clients, instance_id, region=REGION, clock=clock)
    listener = socket.create_server(("127.0.0.1", 0))
    service.serve(listener)
    return service, f"http://127.0.0.1:{listener.getsockname()[1]}"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def imds(clients, instance: dict[str, Any], clock: Clock) -> Iterator[tuple[MetadataService, str]]:
    service, base = start(clients, instance["InstanceId"], clock)
    try:
        yield service, base
    finally:
        service.close()


def put_token(base: str, ttl: str = "21600", **headers: str) -> requests.Response:
    headers = {"X-aws-ec2-metadata-token-ttl-seconds": ttl, **headers}
    return requests.put(f"{base}/latest/api/token", headers=headers, timeout=5)


def get(base: str, path: str, token: str | None = None) -> requests.Response:
    headers = {"X-aws-ec2-metadata-token": token} if token is not None else {}
    return requests.get(f"{base}{path}", headers=headers, timeout=10)


@pytest.fixture
def fetch(imds: tuple[MetadataService, str]) -> Any:
    """fetch(path) -> the 200 answer's body, with a fresh token."""
    _, base = imds
    token = put_token(base).text

    def fetch_ok(path: str) -> str:
        response = get(base, path, token)
        assert response.status_code == 200, (path, response.status_code, response.text)
        return response.text

    return fetch_ok


def test_token_flow_on_an_instance_requiring_tokens(imds, instance):
    service, base = imds
    put = put_token(base, "300")
    assert put.status_code == 200 and len(put.text) >= 40
    assert put.headers["X-aws-ec2-metadata-token-ttl-seconds"] == "300"
    assert put.headers["Server"] == "EC2ws" and put.headers["Content-Type"] == "text/plain"
    answer = get(base, "/latest/meta-data/instance-id", put.text)
    assert answer.status_code == 200 and answer.text == instance["InstanceId"]
    assert answer.headers["Content-Length"] == str(len(instance["InstanceId"]))
    assert get(base, "/latest/meta-data/instance-id").status_code == 401
    assert get(base, "/latest/meta-data/instance-id", "not-a-token").status_code == 401
    assert [(m, s) for m, _, s in service.requests] == [("PUT", 200), ("GET", 200), ("GET", 401), ("GET", 401)]
    assert {path for _, path, _ in service.requests} == {"/latest/api/token", "/latest/meta-data/instance-id"}


@pytest.mark.parametrize("ttl", ["", "0", "21601", "ten", "-5", "1.5"])
def test_token_ttl_must_be_1_to_21600_seconds(imds, ttl):
    assert put_token(imds[1], ttl).status_code == 400


def test_token_refusals(imds):
    _, base = imds
    assert requests.put(f"{base}/latest/api/token", timeout=5).status_code == 400  # no TTL header
    assert put_token(base, **{"X-Forwarded-For": "10.0.0.9"}).status_code == 403
    assert requests.put(f"{base}/latest/meta-data/", timeout=5).status_code == 405
    assert put_token(base, "1").status_code == 200 and put_token(base, "21600").status_code == 200


def test_tokens_expire_after_their_ttl(imds, clock):
    _, base = imds
    token = put_token(base, "60").text
    clock.offset = 59
    answer = get(base, "/latest/meta-data/ami-id", token)
    assert answer.status_code == 200 and int(answer.headers["X-aws-ec2-metadata-token-ttl-seconds"]) <= 1
    clock.offset = 61
    assert get(base, "/latest/meta-data/ami-id", token).status_code == 401


def test_listings(fetch):
    assert fetch("/").splitlines()[-1] == "latest" and "2009-04-04" in fetch("/")
    assert fetch("/latest/").splitlines() == ["dynamic", "meta-data", "user-data"]
    entries = fetch("/latest/meta-data/").splitlines()
    assert {"ami-id", "instance-id", "instance-type", "local-ipv4", "local-hostname", "hostname"} <= set(entries)
    assert {"public-ipv4", "public-hostname", "mac", "placement/", "iam/", "services/"} <= set(entries)
    assert "spot/" not in entries and "placement" not in entries
    assert fetch("/latest/meta-data/placement/").splitlines() == ["availability-zone", "region"]
    assert fetch("/latest/meta-data/placement") == fetch("/latest/meta-data/placement/")  # without the slash
    assert fetch("/latest/meta-data/iam").splitlines() == ["info", "security-credentials/"]
    assert fetch("/latest/dynamic/") == "instance-identity/"
    assert fetch("/latest/dynamic/instance-identity/") == "document"


def test_leaves_are_moto_s_record(fetch, instance):
    expected = {
        "public-ipv4": instance["PublicIpAddress"],
        "public-hostname": instance["PublicDnsName"],
        "local-ipv4": instance["PrivateIpAddress"],
        "hostname": instance["PrivateDnsName"],
        "ami-id": instance["ImageId"],
        "instance-type": "t3.micro",
        "mac": instance["NetworkInterfaces"][0]["MacAddress"],
        "placement/availability-zone": instance["Placement"]["AvailabilityZone"],
        "placement/region": REGION,
        "services/domain": "amazonaws.com",
        "services/partition": "aws",
    }
    assert {leaf: fetch(f"/latest/meta-data/{leaf}") for leaf in expected} == expected


def test_user_data_is_the_bytes_run_instances_was_sent(imds):
    _, base = imds
    answer = get(base, "/latest/user-data", put_token(base).text)
    assert answer.status_code == 200 and answer.content == USER_DATA


def test_role_credentials_are_the_assumed_role_s_and_work(fetch, aws, instance):
    assert fetch("/latest/meta-data/iam/security-credentials/") == ROLE
    info = json.loads(fetch("/latest/meta-data/iam/info"))
    assert info["Code"] == "Success" and info["InstanceProfileArn"] == instance["IamInstanceProfile"]["Arn"]
    credentials = json.loads(fetch(f"/latest/meta-data/iam/security-credentials/{ROLE}"))
    assert credentials["Code"] == "Success" and credentials["Type"] == "AWS-HMAC"
    assert credentials["Expiration"].endswith("Z") and credentials["AccessKeyId"].startswith("ASIA")
    again = json.loads(fetch(f"/latest/meta-data/iam/security-credentials/{ROLE}"))
    assert again["AccessKeyId"] == credentials["AccessKeyId"]  # cached until 5 minutes before expiry
    keys = {
        "aws_access_key_id": "AccessKeyId",
        "aws_secret_access_key": "SecretAccessKey",
        "aws_session_token": "Token",
    }
    sts = boto3.Session(region_name=REGION, **{arg: credentials[key] for arg, key in keys.items()}).client(
        "sts", endpoint_url=aws.endpoint_url
    )
    assert sts.get_caller_identity()["Arn"].endswith(f":assumed-role/{ROLE}/{instance['InstanceId']}")


def test_identity_document(fetch, instance):
    document = json.loads(fetch("/latest/dynamic/instance-identity/document"))
    assert document["instanceId"] == instance["InstanceId"] and document["imageId"] == instance["ImageId"]
    assert document["instanceType"] == "t3.micro" and document["privateIp"] == instance["PrivateIpAddress"]
    assert document["availabilityZone"] == instance["Placement"]["AvailabilityZone"]
    assert document["region"] == REGION and document["version"] == "2017-09-30"
    assert document["accountId"] == "123456789012" and document["architecture"] == "x86_64"
    assert document["pendingTime"] == instance["LaunchTime"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_spot_instance_action_only_while_an_interruption_is_scheduled(imds, fetch, clock):
    service, base = imds
    token = put_token(base).text
    assert get(base, "/latest/meta-data/spot/instance-action", token).status_code == 404
    clock.offset = 1000.0
    service.schedule_interruption("stop", after_seconds=120)
    action = json.loads(fetch("/latest/meta-data/spot/instance-action"))
    assert action["action"] == "stop"
    when = datetime.strptime(action["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs(when.timestamp() - (clock() + 120)) < 5  # two minutes' notice, on the service's clock
    assert "spot/" in fetch("/latest/meta-data/").splitlines()
    service.clear_interruption()
    assert get(base, "/latest/meta-data/spot/instance-action", token).status_code == 404
    with pytest.raises(ValueError, match="interruption action"):
        service.schedule_interruption("reboot")


@pytest.mark.parametrize("version", ["latest", "2009-04-04", "2016-09-02", "2021-03-23"])
def test_any_version_prefix(fetch, instance, version):
    assert fetch(f"/{version}/meta-data/instance-id") == instance["InstanceId"]


@pytest.mark.parametrize("path", ["/latest/meta-data/nothing", "/1.0/meta-data/instance-id", "/meta-data/", "/x"])
def test_unknown_paths_are_404(imds, path):
    _, base = imds
    answer = get(base, path, put_token(base).text)
    assert answer.status_code == 404 and answer.text == "404 - Not Found"


def test_optional_tokens_and_a_bare_instance(clients, image, clock):
    bare = launch(clients[0], image)  # no MetadataOptions (moto's default: optional), no profile, no user data
    service, base = start(clients, bare["InstanceId"], clock)
    try:
        assert get(base, "/latest/meta-data/instance-id").text == bare["InstanceId"]  # IMDSv1 allowed
        assert get(base, "/latest/meta-data/instance-id", "stale-token").status_code == 401
        assert "iam/" not in get(base, "/latest/meta-data/").text.splitlines()
        assert get(base, "/latest/meta-data/iam/security-credentials/").status_code == 404
        assert get(base, "/latest/user-data").status_code == 404
        assert get(base, "/latest/").text.splitlines() == ["dynamic", "meta-data"]
    finally:
        service.close()


def test_a_moto_error_is_a_500_that_says_why(clients, clock):
    service, base = start(clients, "i-0123456789abcdef0", clock)
    try:
        answer = get(base, "/latest/meta-data/instance-id")
        assert answer.status_code == 500 and "InvalidInstanceID.NotFound" in answer.text
    finally:
        service.close()


def test_botocore_s_imds_client_fetches_the_role_credentials(imds, instance):
    service, base = imds
    fetcher = InstanceMetadataFetcher(timeout=5, base_url=base, env={})
    credentials = fetcher.retrieve_iam_role_credentials()
    assert credentials["role_name"] == ROLE and credentials["access_key"].startswith("ASIA")
    assert credentials["secret_key"] and credentials["token"] and credentials["expiry_time"].endswith("Z")
    assert [(method, status) for method, _, status in service.requests][:1] == [("PUT", 200)]
    assert all(status == 200 for _, _, status in service.requests)

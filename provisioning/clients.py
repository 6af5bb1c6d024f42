"""The boto3 clients a provisioner uses, made in one place and passed everywhere else."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import boto3
from botocore.config import Config

# Standard retry mode retries throttling and transient errors with backoff, a bounded number of times.
_CONFIG = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=10, read_timeout=60)


@dataclass(frozen=True)
class AwsClients:
    """One client per service, all for one region (and one endpoint, for moto's server)."""

    region: str
    s3: Any
    ec2: Any
    iam: Any
    ssm: Any
    sts: Any
    route53: Any
    endpoint_url: str | None = None
    _account: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def all(self) -> tuple[Any, ...]:
        """Every client, for registering botocore event hooks on all of them at once."""
        return (self.s3, self.ec2, self.iam, self.ssm, self.sts, self.route53)

    def account_id(self) -> str:
        """The caller's account id (asked once, then remembered)."""
        if "id" not in self._account:
            self._account["id"] = str(self.sts.get_caller_identity()["Account"])
        return self._account["id"]

    def partition(self) -> str:
        return boto3.session.Session().get_partition_for_region(self.region)


def make_clients(
    region: str, endpoint_url: str | None = None, session: boto3.session.Session | None = None
) -> AwsClients:
    """Clients for `region`, from `session` (default: the default credential chain).

    `endpoint_url` sends every service to one endpoint, as moto's server wants; real AWS leaves it None.
    """
    session = session or boto3.session.Session()

    def client(service: str) -> Any:
        return cast(Any, session).client(service, region_name=region, endpoint_url=endpoint_url, config=_CONFIG)

    clients = AwsClients(
        region=region,
        s3=client("s3"),
        ec2=client("ec2"),
        iam=client("iam"),
        ssm=client("ssm"),
        sts=client("sts"),
        route53=client("route53"),
        endpoint_url=endpoint_url,
    )
    clients.s3.meta.events.register("provide-client-params.s3", _expect_own_buckets(clients))
    return clients


def _expect_own_buckets(clients: AwsClients) -> Any:
    """Every S3 call that can name the bucket's expected owner names the caller's account: a bucket of
    another account (a typo, a squatted name) is refused by S3, never used or adopted."""

    def add_owner(params: dict[str, Any], model: Any, **_: Any) -> None:
        if "ExpectedBucketOwner" in model.input_shape.members and "ExpectedBucketOwner" not in params:
            params["ExpectedBucketOwner"] = clients.account_id()

    return add_owner

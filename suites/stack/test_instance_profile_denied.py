"""An instance profile without ``ssm:GetParameter``, with moto enforcing IAM: the registry unit fails,
the box's journal names the parameter it could not read and says why (moto's AccessDenied for the
instance profile's role), and nothing is served: no htpasswd, no registry, no answer on the port.

The world is the test's own: the provisioner, the box's metadata service and the test sign with an
admin user's key, and once ``up`` is done moto's server checks every request against IAM. The box's
AWS CLI signs with the role's credentials, which the metadata service gets from ``sts:AssumeRole``.
Where moto judges differently from AWS the test adjusts the role, never the product (see
``_judged_by_moto``, ``_trusting`` and ``_enforce_iam``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from fixtures.booted_registry import Deployment, StackVariant, provision, stack_spec
from provisioning import names
from provisioning.aws.role import canonical
from provisioning.health import registry_url
from provisioning.names import REGISTRY_POLICY_NAME
from provisioning.rehearsal.moto_server import MOTO_ACCESS_KEY, MOTO_SECRET_KEY, MotoServer
from provisioning.rehearsal.world import World, answers
from provisioning.render.boot_script import RETRY_ATTEMPTS
from provisioning.render.paths import REGISTRY_UNIT as UNIT

pytestmark = pytest.mark.stack

ADMIN = "spotreg-stack-admin"
ADMIN_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
DENIED_ACTION = "ssm:GetParameter"
#: the AWS CLI's first line of a refused call: moto answers SSM's JSON protocol with an XML error, which
#: the CLI shows as code "403" and the XML (moto's AccessDenied) on the next line
GET_PARAMETER_ERROR = "An error occurred (403) when calling the GetParameter operation: "
#: the unit's retries (pauses of 2, 4, 8, 16, 30 s, the CLI's start-up each time) and systemd noticing
FAILURE_TIMEOUT = 120.0


@pytest.fixture
def admin_world(docker_client: Any, registry_image: str, front_image: str, stack_run_id: str) -> Iterator[World]:
    """A world of the test's own whose clients (the provisioner's, the metadata service's, the test's)
    sign with an admin user's key (Allow * on *): moto accepts anything until ``_enforce_iam``."""
    world = World.open(docker_client, f"{stack_run_id}-iam", registry_image, front_source=front_image)
    try:
        iam = world.moto.client("iam")
        iam.create_user(UserName=ADMIN)
        iam.put_user_policy(UserName=ADMIN, PolicyName="everything", PolicyDocument=json.dumps(ADMIN_POLICY))
        key = iam.create_access_key(UserName=ADMIN)["AccessKey"]
        world.moto.access_key, world.moto.secret_key = key["AccessKeyId"], key["SecretAccessKey"]
        yield world
    finally:
        world.close()


def _enforce_iam(moto: MotoServer) -> None:
    """From now on moto checks every request's signature and the signer's policies. Not from the
    server's start (``INITIAL_NO_AUTH_ACTION_COUNT``): moto refuses its own Route 53 requests with
    SignatureDoesNotMatch when it checks them, and ``up`` lists hosted zones whatever its dns mode."""
    answer = requests.post(f"{moto.endpoint_url}/moto-api/reset-auth", data=b"0", timeout=10)
    answer.raise_for_status()
    stranger = boto3.client(
        "sts",
        endpoint_url=moto.endpoint_url,
        region_name=moto.region,
        aws_access_key_id=MOTO_ACCESS_KEY,
        aws_secret_access_key=MOTO_SECRET_KEY,
    )
    with pytest.raises(ClientError, match="InvalidClientTokenId"):  # an unknown key is refused: enforced
        stranger.get_caller_identity()


def _document(policy: Any) -> dict[str, Any]:
    return dict(json.loads(canonical(policy)))


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _actions(policy: dict[str, Any]) -> set[str]:
    return {action for statement in policy["Statement"] for action in _listed(statement["Action"])}


def _without(policy: dict[str, Any], action: str) -> dict[str, Any]:
    """``policy`` with ``action`` taken out of every statement (a statement left with none goes)."""
    statements = []
    for statement in policy["Statement"]:
        kept = [each for each in _listed(statement["Action"]) if each != action]
        if kept:
            statements.append({**statement, "Action": kept})
    return {**policy, "Statement": statements}


def _judged_by_moto(policy: dict[str, Any]) -> dict[str, Any]:
    """``policy`` with its SSM statements on resource "*": moto judges every SSM request against "*"
    (it derives no parameter ARN), so the rendered grant on the deployment's parameter ARNs never
    matches there, and with it the role would be denied whether or not it held ``ssm:GetParameter``.
    suites/offline/test_iam_enforcement.py judges the rendered ARNs with moto's evaluator."""
    statements = []
    for statement in policy["Statement"]:
        ssm = all(action.startswith("ssm:") for action in _listed(statement["Action"]))
        statements.append({**statement, "Resource": "*"} if ssm else statement)
    return {**policy, "Statement": statements}


def _trusting(trust: dict[str, Any], principal_arn: str) -> dict[str, Any]:
    """The role's trust policy with ``principal_arn`` allowed next to ec2.amazonaws.com: the metadata
    service assumes the role as the world's admin (EC2 does it as the service on AWS), and moto raises
    a TypeError (HTTP 500) judging a caller against a trust policy naming only a Service principal."""
    statements = [
        {**statement, "Principal": {**statement["Principal"], "AWS": principal_arn}}
        if statement.get("Principal", {}).get("Service") == "ec2.amazonaws.com"
        else statement
        for statement in trust["Statement"]
    ]
    return {**trust, "Statement": statements}


def _role_name(deployment: Deployment) -> str:
    return names.resource_name(deployment.spec)


def _aws_in_box(box: Any, region: str, *argv: str) -> tuple[int, str]:
    """The box's AWS CLI as the unit runs it (its drop-in sets the endpoint for the unit only)."""
    endpoint = box.unit_environment["AWS_ENDPOINT_URL"]
    return box.exec(["env", f"AWS_ENDPOINT_URL={endpoint}", "aws", *argv, "--region", region])


def test_a_role_without_ssm_get_parameter_fails_the_unit_naming_the_parameter_and_serves_nothing(
    admin_world: World, registry_image: str, stack_run_id: str
) -> None:
    world = admin_world
    spec = stack_spec(StackVariant("denied", redirect=True), registry_image, stack_run_id)
    deployment = provision(spec, world.moto, stack_run_id)
    iam, role = deployment.clients.iam, _role_name(deployment)
    admin_arn = deployment.clients.sts.get_caller_identity()["Arn"]
    assert admin_arn.endswith(f":user/{ADMIN}"), admin_arn

    shipped = _document(iam.get_role_policy(RoleName=role, PolicyName=REGISTRY_POLICY_NAME)["PolicyDocument"])
    assert DENIED_ACTION in _actions(shipped), shipped
    granted = _judged_by_moto(shipped)
    denied = _without(granted, DENIED_ACTION)
    assert _actions(denied) == _actions(shipped) - {DENIED_ACTION}  # the rest of the role is kept
    iam.put_role_policy(RoleName=role, PolicyName=REGISTRY_POLICY_NAME, PolicyDocument=json.dumps(denied))
    trust = _document(iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"])
    iam.update_assume_role_policy(RoleName=role, PolicyDocument=json.dumps(_trusting(trust, admin_arn)))
    _enforce_iam(world.moto)

    box = world.boot(spec, deployment.instance_id, wait=False)
    url = registry_url(spec, box.address)
    parameter = names.htpasswd_parameter(spec)
    gave_up = f"giving up after {RETRY_ATTEMPTS} attempts: ssm_value {parameter}"
    deadline = time.monotonic() + FAILURE_TIMEOUT
    while True:
        journal = box.journal(UNIT)
        assert not answers(url), f"{url} answered while the role could not read {parameter}:\n{journal[-3000:]}"
        if gave_up in journal and f"{UNIT}: Failed with result" in journal:
            break
        assert time.monotonic() < deadline, f"the unit did not fail in {FAILURE_TIMEOUT:.0f} s:\n{journal[-3000:]}"
        time.sleep(1)

    # the journal names the parameter, and each attempt's error is IAM's refusal of the role's action
    lines = [line.split("]: ", 1)[-1] for line in journal.splitlines()]  # without time, host and pid
    named = [line for line in lines if f"failed: ssm_value {parameter}" in line]
    refusal = (
        f"<Code>AccessDenied</Code><Message>User: arn:aws:sts::{deployment.clients.account_id()}:assumed-role/"
        f"{role}/{deployment.instance_id} is not authorized to perform: {DENIED_ACTION}</Message>"
    )
    calls = [at for at, line in enumerate(lines) if line.startswith(GET_PARAMETER_ERROR)]
    assert named and calls, f"no refused GetParameter of {parameter} in the journal:\n{journal[-3000:]}"
    shown = "\n  ".join([f"{UNIT} in the box's journal:", lines[calls[0]], lines[calls[0] + 1], named[0], "..."])
    shown += "".join(f"\n  {line}" for line in lines if gave_up in line or f"{UNIT}: Failed with result" in line)
    print(f"\n{shown}")
    assert len(named) == RETRY_ATTEMPTS - 1, shown  # attempt 1..5 of 6 failed: ssm_value <name>
    assert len(calls) >= RETRY_ATTEMPTS, shown  # the AWS CLI's error, once an attempt
    for at in calls:
        assert refusal in lines[at + 1], "\n".join(lines[at : at + 2])

    # nothing served: no htpasswd on the disk, no registry container, nothing answering
    assert box.exec(["test", "-e", names.HTPASSWD_PATH])[0] != 0, shown
    assert box.exec(["docker", "ps", "-aq", "--filter", f"name={names.CONTAINER_NAME}"]) == (0, ""), shown
    assert not answers(url), shown

    # the credentials were the instance profile's, handed out by the metadata service: IAM said no
    credentials = [request for request in box.metadata.requests if request[1].endswith(f"/security-credentials/{role}")]
    assert ("GET", f"/latest/meta-data/iam/security-credentials/{role}", 200) in credentials, box.metadata.requests

    # the control, in the same box with the same credentials: only ssm:GetParameter decides
    region = spec.deployment.region
    read = ("ssm", "get-parameter", "--name", parameter, "--with-decryption", "--query", "Parameter.Name")
    code, output = _aws_in_box(box, region, *read, "--output", "text")
    assert code != 0 and "AccessDenied" in output, output
    iam.put_role_policy(RoleName=role, PolicyName=REGISTRY_POLICY_NAME, PolicyDocument=json.dumps(granted))
    code, output = _aws_in_box(box, region, *read, "--output", "text")
    assert (code, output.strip()) == (0, parameter), output

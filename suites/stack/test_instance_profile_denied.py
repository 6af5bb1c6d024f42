"""An instance profile without ``ssm:GetParameter``, with moto enforcing IAM: the registry unit fails,
the box's journal names the parameter it could not read and says why (moto's AccessDenied for the
instance profile's role), and nothing is served: no htpasswd, no registry, no answer on the port.

The world is the test's own: moto's server checks every request against IAM once an admin user (Allow
* on *) is made, and the provisioner, the box's metadata service and the test sign with its key. The
box's AWS CLI signs with the role's credentials, which the metadata service gets from
``sts:AssumeRole``. Two things moto judges differently from AWS are adjusted in the test, never in the
product (see ``_judged_by_moto`` and ``_trusting``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from fixtures.booted_registry import Deployment, StackVariant, provision, stack_spec
from provisioning import names
from provisioning.aws.role import POLICY_NAME, canonical
from provisioning.rehearsal.world import World, answers, registry_url
from provisioning.render.boot_script import RETRY_ATTEMPTS

pytestmark = pytest.mark.stack

UNIT = "spotreg-registry.service"
ADMIN = "spotreg-stack-admin"
ADMIN_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
#: requests moto lets through unchecked: making the admin user, its policy and its key
BOOTSTRAP_REQUESTS = 3
DENIED_ACTION = "ssm:GetParameter"
#: the unit's retries (pauses of 2, 4, 8, 16, 30 s, the CLI's start-up each time) and systemd noticing
FAILURE_TIMEOUT = 120.0


@pytest.fixture
def enforcing_world(docker_client: Any, registry_image: str, stack_run_id: str) -> Iterator[World]:
    """A world whose moto server enforces IAM; its clients sign with an admin user's key."""
    world = World.open(
        docker_client,
        f"{stack_run_id}-iam",
        registry_image,
        moto_environment={"INITIAL_NO_AUTH_ACTION_COUNT": str(BOOTSTRAP_REQUESTS)},
    )
    try:
        iam = world.moto.client("iam")
        iam.create_user(UserName=ADMIN)
        iam.put_user_policy(UserName=ADMIN, PolicyName="everything", PolicyDocument=json.dumps(ADMIN_POLICY))
        key = iam.create_access_key(UserName=ADMIN)["AccessKey"]
        world.moto.access_key, world.moto.secret_key = key["AccessKeyId"], key["SecretAccessKey"]
        yield world
    finally:
        world.close()


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
    enforcing_world: World, registry_image: str, stack_run_id: str
) -> None:
    world = enforcing_world
    spec = stack_spec(StackVariant("denied", redirect=True), registry_image, stack_run_id)
    deployment = provision(spec, world.moto, stack_run_id)
    iam, role = deployment.clients.iam, _role_name(deployment)
    admin_arn = deployment.clients.sts.get_caller_identity()["Arn"]
    assert admin_arn.endswith(f":user/{ADMIN}"), admin_arn  # up ran as the admin: moto checks its requests

    shipped = _document(iam.get_role_policy(RoleName=role, PolicyName=POLICY_NAME)["PolicyDocument"])
    assert DENIED_ACTION in _actions(shipped), shipped
    granted = _judged_by_moto(shipped)
    denied = _without(granted, DENIED_ACTION)
    assert _actions(denied) == _actions(shipped) - {DENIED_ACTION}  # the rest of the role is kept
    iam.put_role_policy(RoleName=role, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(denied))
    trust = _document(iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"])
    iam.update_assume_role_policy(RoleName=role, PolicyDocument=json.dumps(_trusting(trust, admin_arn)))

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

    lines = journal.splitlines()
    attempt = next((line for line in lines if f"attempt 1 of {RETRY_ATTEMPTS} failed: ssm_value {parameter}" in line), None)
    denials = [line for line in lines if "when calling the GetParameter operation" in line]
    print(f"\njournal of {UNIT}:\n  {denials[0] if denials else None}\n  {attempt}\n  ...\n")
    for line in (gave_up, f"{UNIT}: Failed with result"):
        print("  " + next(each for each in lines if line in each))
    assert attempt is not None, journal[-3000:]  # the journal names the parameter
    assert len(denials) >= RETRY_ATTEMPTS, journal[-3000:]  # every attempt was refused...
    for line in denials:  # ...by IAM, for the instance profile's role, for the action it lacks
        assert "(AccessDenied" in line, line
        assert f"assumed-role/{role}/{deployment.instance_id} is not authorized to perform: {DENIED_ACTION}" in line, line

    # nothing served: no htpasswd on the disk, no registry container, nothing answering
    assert box.exec(["test", "-e", names.HTPASSWD_PATH])[0] != 0
    assert box.exec(["docker", "ps", "-aq", "--filter", f"name={names.CONTAINER_NAME}"]) == (0, "")
    assert not answers(url)

    # the credentials were the instance profile's, handed out by the metadata service: IAM said no
    credentials = [request for request in box.metadata.requests if request[1].endswith(f"/security-credentials/{role}")]
    assert ("GET", f"/latest/meta-data/iam/security-credentials/{role}", 200) in credentials, box.metadata.requests

    # the control, in the same box with the same credentials: only ssm:GetParameter decides
    region = spec.deployment.region
    read = ("ssm", "get-parameter", "--name", parameter, "--with-decryption", "--query", "Parameter.Name")
    code, output = _aws_in_box(box, region, *read, "--output", "text")
    assert code != 0 and "AccessDenied" in output, output
    iam.put_role_policy(RoleName=role, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(granted))
    code, output = _aws_in_box(box, region, *read, "--output", "text")
    assert (code, output.strip()) == (0, parameter), output

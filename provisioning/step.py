"""The one shape of a provisioning step: check, plan, apply and remove, each saying what it changed.

A step owns one kind of resource (the bucket, the role, the instance, the DNS record …). The
Provisioner runs the steps in order for `plan` and `up`, and in reverse for `down`; a step hands what
it found or made to later steps through the `Run`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from provisioning.changes import Change
from provisioning.clients import AwsClients
from provisioning.records import Address, InstanceFacts, Launched, StoredParameter
from provisioning.secrets import Secrets
from provisioning.spec import Spec
from provisioning.waits import Progress, Waits

log = logging.getLogger("spotreg.provisioner")


@dataclass(frozen=True)
class Context:
    """What every step is given: the spec, the AWS clients, the tags it puts on what it makes, the
    bounds of its waits, where its progress goes, and the clock."""

    spec: Spec
    clients: AwsClients
    tags: dict[str, str]
    waits: Waits
    progress: Progress | None
    now: Callable[[], datetime]

    @property
    def deployment(self) -> str:
        return self.spec.deployment.name

    def say(self, step: str, message: str) -> None:
        log.info("%s: %s", step, message)
        if self.progress is not None:
            self.progress(f"{step}: {message}")


@dataclass
class Run:
    """One `plan` or `up`: the context, the resolved secrets, and what each step found or made for the
    steps after it."""

    ctx: Context
    secrets: Secrets
    legacy: bool
    switch_storage: bool = False  # `up --switch-storage`: a new bucket, or one taken over, is asked for
    address: Address | None = None
    existing_parameters: dict[str, StoredParameter] = field(default_factory=dict)
    server_cert_pem: bytes | None = None
    profile_arn: str | None = None
    security_group_id: str | None = None
    image_ids: dict[str, str] = field(default_factory=dict)
    subnets: dict[str, str] = field(default_factory=dict)
    facts: InstanceFacts | None = None
    launched: Launched | None = None

    @property
    def spec(self) -> Spec:
        return self.ctx.spec

    @property
    def clients(self) -> AwsClients:
        return self.ctx.clients


class Step(Protocol):
    """One resource's part of a deployment's lifecycle."""

    name: str

    def resource(self, spec: Spec) -> str:
        """What the step manages, in words, for error messages ("security group spotreg-x")."""
        ...

    def check(self, run: Run) -> None:
        """Read-only checks of the input against AWS, before any step makes anything."""
        ...

    def plan(self, run: Run) -> list[Change]:
        """What `apply` would change; only reads."""
        ...

    def apply(self, run: Run) -> list[Change]:
        """Make the resource as the spec says; what changed."""
        ...

    def remove(self, ctx: Context, *, delete_data: bool) -> list[Change]:
        """Remove what this deployment made, whatever state a partial `up` left; what was removed, and
        (action "keep") what was kept on purpose."""
        ...

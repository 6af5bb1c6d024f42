"""What a step did or would do to one resource."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Action = Literal["create", "update", "replace", "keep", "delete", "read"]


@dataclass(frozen=True)
class Change:
    """`action` on the resource `kind` named `name`, with a short `detail` saying why; a `note` is a
    kept resource the user has to see to themselves."""

    kind: str
    name: str
    action: Action
    detail: str = ""
    note: bool = False

    def __str__(self) -> str:
        text = f"{self.action:<7} {self.kind} {self.name}"
        return f"{text}: {self.detail}" if self.detail else text

    @property
    def changes_anything(self) -> bool:
        return self.action not in ("keep", "read")

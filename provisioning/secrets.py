"""Secret references (`env:VAR`, `ssm:/path`) resolved to values, and the registry's htpasswd file.

Environment references resolve with no AWS call at all; SSM references need one read
(`GetParameter`, decrypted). Every reference that does not resolve, and every registry password weaker
than `password_weakness` allows, is reported at once, each with the field it came from (never the
value), and before anything is created.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import bcrypt
from botocore.exceptions import ClientError

from provisioning.errors import InputProblem, SecretError
from provisioning.spec import Spec

# What a careful operator wants for stored hashes. A check costs 50-70 ms of CPU on a small instance, but
# the front (nginx) checks a password once per provisioning.render.front_config.AUTH_CACHE_SECONDS, not
# once per request: a pull or a push is dozens of requests.
BCRYPT_ROUNDS = 10

MIN_PASSWORD_LENGTH = 12
PASSWORD_RULE = (
    f"a registry password has at least {MIN_PASSWORD_LENGTH} characters, of at least two kinds "
    "(lowercase letters, uppercase letters, digits, anything else)"
)


@dataclass(frozen=True)
class Secrets:
    """The resolved secrets of a spec. repr never shows a value."""

    users: Mapping[str, str] = field(repr=False)
    dns_password: str | None = field(default=None, repr=False)


def secret_fields(spec: Spec) -> list[tuple[str, str]]:
    """(field, reference) for every secret the spec names."""
    found = [(f"registry.users[{i}].password", user.password) for i, user in enumerate(spec.registry.users)]
    if spec.dns.mode == "namecheap" and spec.dns.password is not None:
        found.append(("dns.password", spec.dns.password))
    return found


def _kinds(password: str) -> int:
    """How many kinds of character ``password`` holds: lowercase, uppercase, digits, anything else."""
    kinds = {
        "lower" if c.islower() else "upper" if c.isupper() else "digit" if c.isdigit() else "other" for c in password
    }
    return len(kinds)


def password_weakness(password: str) -> str | None:
    """Why ``password`` is too weak for a registry user (never quoting it), or None when it is not."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"too short: {PASSWORD_RULE}"
    if _kinds(password) < 2:
        return f"one kind of character only: {PASSWORD_RULE}"
    return None


def _resolve_env(ref: str, environ: Mapping[str, str]) -> tuple[str | None, str]:
    variable = ref.removeprefix("env:")
    value = environ.get(variable)
    if value is None:
        return None, f"the environment variable {variable} is not set"
    if value == "":
        return None, f"the environment variable {variable} is empty"
    return value, ""


def _resolve_ssm(ref: str, ssm: Any) -> tuple[str | None, str]:
    name = ref.removeprefix("ssm:")
    try:
        value = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code == "ParameterNotFound":
            return None, f"the SSM parameter {name} does not exist"
        return None, f"the SSM parameter {name} cannot be read ({code})"
    if not value:
        return None, f"the SSM parameter {name} is empty"
    return str(value), ""


def _hint(unresolved: str, problems: list[InputProblem]) -> str:
    """What to do: about references that did not resolve, and about weak passwords."""
    weak = [p for p in problems if PASSWORD_RULE in p.rule]
    hints = [unresolved] if len(weak) < len(problems) else []
    if weak:
        hints.append("make a stronger password (for example: openssl rand -base64 18)")
    return "; ".join(hints)


def _keep(
    name: str, ref: str, value: str | None, why: str, values: dict[str, str], problems: list[InputProblem]
) -> None:
    """Keep a resolved value, or the problem with it: unresolved, or a registry password too weak."""
    if value is None:
        problems.append(InputProblem(name, ref, why))
        return
    weakness = password_weakness(value) if name.startswith("registry.users[") else None
    if weakness is not None:
        problems.append(InputProblem(name, ref, weakness))
        return
    values[name] = value


def resolve_secrets(spec: Spec, environ: Mapping[str, str], ssm: Any | None = None) -> Secrets:
    """Resolve every secret reference of the spec, or raise SecretError naming each that fails.

    `env:` references are checked first, without any AWS call; `ssm:` references are read only when
    every `env:` reference resolved, and need the `ssm` client.
    """
    fields = secret_fields(spec)
    values: dict[str, str] = {}
    problems: list[InputProblem] = []
    for name, ref in fields:
        if ref.startswith("env:"):
            value, why = _resolve_env(ref, environ)
            _keep(name, ref, value, why, values, problems)
    if problems:
        raise SecretError(
            problems, hint=_hint("set the variables, or point the references at SSM parameters", problems)
        )
    for name, ref in fields:
        if ref.startswith("ssm:"):
            if ssm is None:
                problems.append(InputProblem(name, ref, "an ssm: reference needs an SSM client"))
                continue
            value, why = _resolve_ssm(ref, ssm)
            _keep(name, ref, value, why, values, problems)
    if problems:
        raise SecretError(
            problems, hint=_hint("create the parameters (SecureString), or use env: references", problems)
        )
    users = {user.name: values[f"registry.users[{i}].password"] for i, user in enumerate(spec.registry.users)}
    return Secrets(users=users, dns_password=values.get("dns.password"))


def make_htpasswd(users: Mapping[str, str], *, rounds: int | None = None) -> str:
    """An htpasswd file with one bcrypt (`$2y$`, as the registry's htpasswd auth wants) line per user,
    at `rounds` (default BCRYPT_ROUNDS, read at call time)."""
    rounds = BCRYPT_ROUNDS if rounds is None else rounds
    lines = []
    for name in sorted(users):
        hashed = bcrypt.hashpw(users[name].encode("utf-8"), bcrypt.gensalt(rounds=rounds, prefix=b"2b"))
        lines.append(f"{name}:$2y${hashed.decode('ascii')[4:]}")
    return "\n".join(lines) + "\n"


def htpasswd_matches(text: str, users: Mapping[str, str]) -> bool:
    """Whether an htpasswd file holds exactly these users, each with this password."""
    entries: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip():
            name, _, hashed = line.partition(":")
            entries[name] = hashed
    if set(entries) != set(users):
        return False
    for name, hashed in entries.items():
        candidate = hashed.encode("ascii", "replace")
        if candidate.startswith(b"$2y$"):
            candidate = b"$2b$" + candidate[4:]
        try:
            if not bcrypt.checkpw(users[name].encode("utf-8"), candidate):
                return False
        except ValueError:
            return False
    return True

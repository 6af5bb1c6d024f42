"""Reading a spec: from a mapping, from a TOML file with SPOTREG_* environment overrides, every problem
reported at once (field, value, rule) before anything else happens.

Keys the chosen modes do not read are warnings, not problems: pass a list as ``warnings`` to collect
them (`SpecWarning`); the Spec returned holds their defaults instead, so nothing reads them.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from provisioning.cross_field_rules import REDACTED, SpecWarning, spec_problems, spec_warnings, without_ignored
from provisioning.errors import InputError, InputProblem
from provisioning.spec import Spec

ENV_PREFIX = "SPOTREG_"
ENV_NESTING = "__"


Problem = InputProblem

__all__ = ["ENV_PREFIX", "Problem", "SpecError", "SpecWarning", "apply_env_overrides", "load_spec", "spec_from_mapping"]


class SpecError(InputError, ValueError):
    """All the problems of a configuration at once (exit code 2)."""

    def __init__(self, problems: list[InputProblem]) -> None:
        super().__init__(problems)
        self.message = "invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems)
        self.args = (self.message,)


# Pydantic puts the branch of a union or validator chain in an error's location: not a key of ours.
_NOT_KEYS = frozenset({"str", "none", "int", "float", "bool", "decimal", "literal"})


def _field_path(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts[-1] += f"[{item}]"
        elif item not in _NOT_KEYS and "[" not in item:
            parts.append(item)
    return ".".join(parts) or "(top level)"


def _problems_of(error: ValidationError) -> list[Problem]:
    problems = []
    for item in error.errors(include_url=False):
        message = str(item["msg"]).removeprefix("Value error, ")
        value = item.get("input")
        if str(item["loc"][-1]) == "password":
            value = REDACTED
        if item["type"] == "extra_forbidden":
            message = "unknown key (a typo?): see examples/spotreg.toml for the keys spotreg reads"
        elif item["type"] == "missing":
            value, message = None, "required, and missing"
        problems.append(Problem(_field_path(item["loc"]), value, message))
    # Unions (`X | None`) report one error per branch: keep the first of each field. A list whose items
    # were refused is also "too short" after validation: the item's problem says it all.
    unique: dict[str, Problem] = {}
    for problem in problems:
        if not any(other.field.startswith(f"{problem.field}[") for other in problems):
            unique.setdefault(problem.field, problem)
    return list(unique.values())


def spec_from_mapping(data: Mapping[str, Any], warnings: list[SpecWarning] | None = None) -> Spec:
    """Validate a mapping into a Spec, or raise SpecError listing every problem.

    Keys the chosen modes ignore are appended to ``warnings`` (when given) and left out of the Spec.
    """
    try:
        spec = Spec.model_validate(data)
    except ValidationError as error:
        raise SpecError(_problems_of(error)) from None
    ignored = spec_warnings(spec)
    spec = without_ignored(spec)
    problems = spec_problems(spec)
    if problems:
        raise SpecError(problems)
    if warnings is not None:
        warnings.extend(ignored)
    return spec


def _list_fields() -> set[tuple[str, str]]:
    found = set()
    for section, info in Spec.model_fields.items():
        model = info.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            for key, field in model.model_fields.items():
                if "tuple" in str(field.annotation):
                    found.add((section, key))
    return found


def _section_keys() -> dict[str, set[str] | None]:
    """Each top-level key of the spec: its keys when it is a section, None when any key goes (tags)."""
    found: dict[str, set[str] | None] = {}
    for section, info in Spec.model_fields.items():
        model = info.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            found[section] = set(model.model_fields)
        else:
            found[section] = None
    return found


def apply_env_overrides(
    data: Mapping[str, Any], environ: Mapping[str, str], warnings: list[SpecWarning] | None = None
) -> dict[str, Any]:
    """SPOTREG_SECTION__KEY=value overrides [section] key; lists are comma-separated; a tag's key
    (SPOTREG_TAGS__Team) keeps its case. SPOTREG_* variables without ``__`` are not overrides (spotreg's
    own settings, SPOTREG_ACCOUNT_ID say); one naming no section of the spec is a warning (appended to
    ``warnings`` when given), not a problem: it may be another tool's. One naming a section but no key
    of it (a typo) is a problem."""
    merged: dict[str, Any] = {k: dict(v) if isinstance(v, Mapping) else v for k, v in data.items()}
    list_fields = _list_fields()
    sections = _section_keys()
    for variable, raw in sorted(environ.items()):
        if not variable.startswith(ENV_PREFIX) or ENV_NESTING not in variable:
            continue
        shown = REDACTED if "password" in variable.lower() else raw
        path = variable.removeprefix(ENV_PREFIX).split(ENV_NESTING)
        section = path[0].lower()
        if section not in sections:
            if warnings is not None:
                warnings.append(SpecWarning(variable, shown, "names no section of the spec: not an override, ignored"))
            continue
        if len(path) != 2:
            raise SpecError([Problem(variable, shown, "overrides are SPOTREG_<SECTION>__<KEY>, one level deep")])
        key = path[1] if sections[section] is None else path[1].lower()
        value: Any = [v.strip() for v in raw.split(",") if v.strip()] if (section, key) in list_fields else raw
        merged.setdefault(section, {})
        if not isinstance(merged[section], dict):
            raise SpecError([Problem(variable, shown, f"{section} is not a section")])
        merged[section][key] = value
    return merged


def load_spec(path: Path, environ: Mapping[str, str] | None = None, warnings: list[SpecWarning] | None = None) -> Spec:
    """Read a spec file, apply SPOTREG_* overrides, validate (warnings as in ``spec_from_mapping``)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError([Problem("--config", str(path), "the file does not exist")]) from None
    except (OSError, UnicodeDecodeError) as error:  # a directory, no permission, not UTF-8
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise SpecError([Problem("--config", str(path), f"cannot be read: {reason}")]) from None
    except tomllib.TOMLDecodeError as error:
        raise SpecError([Problem("--config", str(path), f"not valid TOML: {error}")]) from None
    found: list[SpecWarning] = []
    merged = apply_env_overrides(data, os.environ if environ is None else environ, found)
    spec = spec_from_mapping(merged, warnings)
    if warnings is not None:
        warnings.extend(found)
    return spec

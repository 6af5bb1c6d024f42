#!/usr/bin/env bash
# Static checks: ruff (lint rules) and mypy (strict, per pyproject.toml). Runs both, fails if either fails.
#   scripts/lint.sh            (uses ${SPOTREG_VENV:-.venv}/bin)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
bin=${SPOTREG_VENV:-.venv}/bin

status=0
echo "lint: ruff check ." >&2
"$bin/ruff" check . || status=1
echo "lint: mypy provisioning harness spotreg fixtures suites benchmarks conftest.py" >&2
"$bin/mypy" provisioning harness spotreg fixtures suites benchmarks conftest.py || status=1
exit "$status"

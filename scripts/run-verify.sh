#!/usr/bin/env bash
# `spotreg verify --offline` inside one Docker engine session (see scripts/with-docker-engine.sh):
# build the stack's images (if an engine answers), then verify.
#   scripts/run-verify.sh [VERIFY_ARGS...]
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
bin=${SPOTREG_VENV:-.venv}/bin

export TESTCONTAINERS_RYUK_DISABLED=true
mkdir -p reports
started=$SECONDS

scripts/build-images.sh
images_status=$?
if ((images_status != 0 && images_status != 3)); then
    echo "verify: FAILED: the images could not be built" >&2
    exit "$images_status"
fi

if [[ ! -x $bin/spotreg ]]; then
    echo "verify: FAILED: $bin/spotreg not found; install the project first (make venv)" >&2
    exit 1
fi
"$bin/spotreg" verify --offline "$@"
status=$?
printf 'timing: total %ds\n' "$((SECONDS - started))" >&2
exit "$status"

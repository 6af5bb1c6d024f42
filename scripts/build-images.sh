#!/usr/bin/env bash
# Build the stack's images if a Docker engine answers (python -m fixtures.images.build).
#   exit 0: images ready; 3: no engine or a host package missing (the stack tier skips, and says why);
#   anything else: the build failed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
bin=${SPOTREG_VENV:-.venv}/bin

"$bin/python" -m fixtures.images.build "$@"
status=$?
if ((status == 3)); then
    echo "images: not built (reason above): the stack tier will be skipped" >&2
elif ((status != 0)); then
    echo "images: build FAILED (exit $status)" >&2
fi
exit "$status"

#!/usr/bin/env bash
# The whole test run, inside one Docker engine session (see scripts/with-docker-engine.sh):
# build the stack's images (if an engine answers), lint, then pytest over suites/.
#   scripts/run-tests.sh [PYTEST_ARGS...]
# Every step runs even if an earlier one failed; the exit status is non-zero if any failed.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
bin=${SPOTREG_VENV:-.venv}/bin

# Ryuk, testcontainers' reaper, needs an image of its own that cannot be pulled here;
# fixtures clean up in finalizers instead.
export TESTCONTAINERS_RYUK_DISABLED=true
mkdir -p reports

started=$SECONDS
failed=()

step_started=$SECONDS
scripts/build-images.sh
images_status=$?
images_time=$((SECONDS - step_started))
if ((images_status != 0 && images_status != 3)); then
    failed+=("images")
fi

step_started=$SECONDS
if ! scripts/lint.sh; then
    failed+=("lint")
fi
lint_time=$((SECONDS - step_started))

step_started=$SECONDS
# three workers on two cores: the stack's tests mostly wait on boots, retries and restarts; each
# shared instance box's tests stay on one worker (suites/stack/conftest.py)
"$bin/pytest" -n 3 --dist loadgroup --junitxml=reports/junit.xml suites "$@"
pytest_status=$?
pytest_time=$((SECONDS - step_started))
case $pytest_status in
    0) ;;
    5)
        echo "tests: FAILED: pytest collected no tests (exit 5): a broken conftest, a wrong path" \
            "or a filter that matches nothing; an empty run never passes" >&2
        failed+=("pytest (no tests collected)")
        ;;
    *) failed+=("pytest (exit $pytest_status)") ;;
esac

printf 'timing: images %ds, lint %ds, pytest %ds, total %ds\n' \
    "$images_time" "$lint_time" "$pytest_time" "$((SECONDS - started))" >&2
if ((${#failed[@]} > 0)); then
    summary=$(printf '%s, ' "${failed[@]}")
    echo "tests: FAILED: ${summary%, }" >&2
    exit 1
fi
echo "tests: passed" >&2

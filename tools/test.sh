#!/usr/bin/env bash
# Runs every test of the project: installs what it needs, then the Bazel
# tests (unit, oracle and kernel tests), then the fuzz targets briefly.
# Ends with one line "N passed, N failed" and exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh || { echo "0 passed, 1 failed"; exit 1; }

# Captures written by others live beside the checkout when it is a developer's
# or CI's; tests that read them say so clearly and skip when it is absent.
testdata="$(cd .. && pwd)/shared/testdata"
env_flags=()
if [ -d "$testdata" ]; then
  env_flags+=("--test_env=PYSTACK_TESTDATA=$testdata")
else
  echo "test: $testdata is absent; tests of the shared captures will report that they skipped" >&2
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT

run_bazel() {
  # The summary lines ("//target  PASSED in 0.1s") are what gets counted.
  "$@" --test_summary=short "${env_flags[@]}" 2>&1 | grep -v 'linux-sandbox' | tee -a "$log"
}

run_bazel bazel test //...
if [ -x tools/fuzz.sh ]; then
  tools/fuzz.sh "${env_flags[@]}" 2>&1 | tee -a "$log"
fi

passed=$(grep -cE '^//[^ ]+ +(\(cached\) )?PASSED' "$log")
failed=$(grep -cE '^//[^ ]+ +(\(cached\) )?(FAILED|TIMEOUT|NO STATUS|FAILED TO BUILD|INCOMPLETE)' "$log")
# A build failure stops Bazel before any test runs: count it as a failure.
if grep -qE '^(ERROR:|FAILED: Build did NOT complete)' "$log" && [ "$failed" -eq 0 ]; then
  failed=1
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]

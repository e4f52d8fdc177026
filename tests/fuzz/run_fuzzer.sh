#!/usr/bin/env bash
# Runs one libFuzzer binary for a few seconds as a Bazel test:
#   run_fuzzer.sh FUZZER SEED_TOOL LAYER SECONDS [--dict=FILE] [REGRESSION...]
# Seeds are cut from every capture under the folders named by
# PYSTACK_CAPTURES (the project's examples/captures; tools/fuzz.sh sets it)
# and PYSTACK_TESTDATA (../shared/testdata; tools/test.sh passes it). They
# come in through the environment, not as Bazel data, because they live
# outside this package, and the test reruns on every call anyway
# (--config=fuzz sets --nocache_test_results). A crash, a sanitizer report,
# a timeout or a broken invariant fails the test; the input that did it is
# kept in Bazel's undeclared outputs and printed in hex.
set -uo pipefail
fuzzer=$1 seed_tool=$2 layer=$3 seconds=$4
shift 4
dictionary=()
if [ $# -gt 0 ] && [ "${1#--dict=}" != "$1" ]; then
  dictionary=(-dict="${1#--dict=}")
  shift
fi
regressions=("$@")

captures=()
for folder in "${PYSTACK_CAPTURES:-}" "${PYSTACK_TESTDATA:-}"; do
  [ -n "$folder" ] && [ -d "$folder" ] || continue
  while IFS= read -r -d '' file; do captures+=("$file"); done < <(
    find "$folder" -type f \( -name '*.pcap' -o -name '*.pcapng' -o -name '*.cap' \) -print0 | sort -z)
done
[ -n "${PYSTACK_CAPTURES:-}" ] || echo "fuzz: PYSTACK_CAPTURES unset (run through tools/fuzz.sh for the project's captures)"
[ -n "${PYSTACK_TESTDATA:-}" ] || echo "fuzz: PYSTACK_TESTDATA unset: ../shared/testdata is absent, its captures give no seeds"

corpus="$TEST_TMPDIR/corpus"
artifacts="${TEST_UNDECLARED_OUTPUTS_DIR:-$TEST_TMPDIR}"
mkdir -p "$artifacts"
mkdir -p "$corpus"
# With no capture at all libFuzzer still runs, from the empty input (and
# from the built DNS messages for dns).
"$seed_tool" "$layer" "$corpus" "${captures[@]}" || { echo "fuzz: seed extraction failed"; exit 1; }
# Inputs that once failed run first with the seeds (regressions/README.md).
for file in "${regressions[@]}"; do
  cp "$file" "$corpus/regression-$(basename "$file")"
done
[ ${#regressions[@]} -eq 0 ] || echo "fuzz: ${#regressions[@]} regression inputs"

# Symbolised stacks in reports; UBSan stops at the first report (the build
# has -fno-sanitize-recover) with a stack, so libFuzzer keeps the input.
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ]; then
  for candidate in "$(command -v llvm-symbolizer)" /usr/lib/llvm-14/bin/llvm-symbolizer; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then export ASAN_SYMBOLIZER_PATH="$candidate"; break; fi
  done
fi
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

# -timeout: one input running longer is a hang. -rss_limit_mb: a leak or an
# allocation that grows with a length field. The seed is libFuzzer's own
# (it prints "Seed: N"); rerun with -seed=N to follow the same path.
"$fuzzer" \
  -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$artifacts/" "${dictionary[@]}" "$corpus"
status=$?

if [ $status -ne 0 ]; then
  echo
  echo "fuzz: ${TEST_TARGET:-$layer} failed (exit $status)."
  for file in "$artifacts"/crash-* "$artifacts"/leak-* "$artifacts"/timeout-* "$artifacts"/oom-*; do
    [ -e "$file" ] || continue
    name=$(basename "$file")
    echo "fuzz: reproducer $name ($(stat -c %s "$file") bytes), hex:"
    od -An -v -tx1 "$file"
    echo "fuzz: tools/fuzz.sh copies it out of this test's outputs.zip and prints how to replay it"
  done
fi
exit $status

#!/usr/bin/env bash
# Builds every fuzz target (tests/fuzz, tagged "fuzz") with clang, libFuzzer,
# AddressSanitizer and UndefinedBehaviorSanitizer, and runs each for a few
# seconds over seeds cut from the captures. Arguments go to `bazel test`
# (tools/test.sh passes --test_env=PYSTACK_TESTDATA=...). Prints Bazel's
# per-target lines ("//tests/fuzz:udp_fuzz  PASSED in 9.1s") and exits
# non-zero when any target fails; a failing target's log shows the input
# that did it, in hex, and where Bazel kept it.
set -uo pipefail
cd "$(dirname "$0")/.."

# An output base of its own: the clang toolchain (--repo_env=CC=clang)
# would otherwise replace the g++ one in the main output base and throw
# away its build cache, and the next g++ build would do the same to this
# one. Its server stops after a short idle time, as it is used rarely.
output_base="$HOME/.cache/pystack-fuzz-bazel"
bazel_fuzz=(bazel --output_base="$output_base" --max_idle_secs=300)

# `manual` keeps the targets out of //..., and out of //tests/fuzz:all too,
# so they are listed by tag. Query errors show; no target is a failure.
targets=$("${bazel_fuzz[@]}" query 'attr(tags, "\bfuzz\b", tests(//tests/fuzz:*))' 2>&1 |
  grep -v linux-sandbox)
if ! grep -q '^//tests/fuzz:' <<<"$targets"; then
  echo "$targets"
  echo "fuzz: no fuzz targets found"
  exit 1
fi
targets=$(grep '^//tests/fuzz:' <<<"$targets")

"${bazel_fuzz[@]}" test --config=fuzz --test_summary=short \
  --test_env=PYSTACK_CAPTURES="$PWD/examples/captures" "$@" -- $targets 2>&1 | grep -v 'linux-sandbox'
status=${PIPESTATUS[0]}

# Bazel zips each test's undeclared outputs, where the runner left the
# inputs that failed: copy them out where a person can replay them.
# (--config=fuzz makes no bazel-* links in the checkout: `//...` would
# descend into them.)
if [ "$status" -ne 0 ]; then
  testlogs=$("${bazel_fuzz[@]}" info --config=fuzz bazel-testlogs 2>/dev/null)
  bin=$("${bazel_fuzz[@]}" info --config=fuzz bazel-bin 2>/dev/null)
  for zip in "$testlogs"/tests/fuzz/*/test.outputs/outputs.zip; do
    [ -e "$zip" ] || continue
    target=$(basename "$(dirname "$(dirname "$zip")")")
    /usr/bin/python3 - "$zip" "$output_base/reproducers/$target" "$bin/tests/fuzz/${target}er" <<'PY'
import os, sys, zipfile
archive, folder, fuzzer = sys.argv[1:4]
with zipfile.ZipFile(archive) as z:
    for name in z.namelist():
        if os.path.basename(name).split("-")[0] in ("crash", "leak", "timeout", "oom"):
            os.makedirs(folder, exist_ok=True)
            path = os.path.join(folder, os.path.basename(name))
            with open(path, "wb") as out:
                out.write(z.read(name))
            print(f"fuzz: reproducer {path}")
            print(f"fuzz:   replay: {fuzzer} {path}")
PY
  done
fi
exit "$status"

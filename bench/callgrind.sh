#!/bin/bash
# Instructions per item of wire_bench benchmarks, counted by valgrind's
# callgrind: unlike times, the counts do not depend on the load of the
# machine, so they are what to compare before and after a change.
#
#   bench/callgrind.sh BINARY FILTER...
#   bench/callgrind.sh bazel-bin/bench/wire_bench 'parse/dns_response$' 'tcp_options/iterator/mix64$'
#
# For each filter (a --benchmark_filter regex, one benchmark each) it runs
# BINARY under callgrind, collecting only inside the benchmark functions
# (BM_*, every round Google Benchmark runs), and divides by the iterations
# of all rounds, which --v=2 logs ("Running NAME for N"). The set-up of each
# round is counted too: it moves the figures by well under 1%, about what two
# runs differ by.
#
# Build the binary as bench/run.sh does (bazel build -c opt --config=bench
# //bench:wire_bench). Set MIN_TIME (default 0.05 s, slowed down some 50x by
# valgrind) and OUT (default a temporary folder) for the callgrind files,
# which callgrind_annotate reads (--inclusive=yes for costs by function).
set -euo pipefail
if [ $# -lt 2 ]; then
  sed -n '2,20p' "$0" >&2
  exit 2
fi
bench=$1
shift
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
for filter in "$@"; do
  name=$(printf '%s' "$filter" | tr -c 'a-zA-Z0-9_' _)
  valgrind --tool=callgrind --callgrind-out-file="$out/$name.callgrind" --collect-atstart=no \
    --toggle-collect='*BM_*' "$bench" --benchmark_filter="$filter" --benchmark_min_time="${MIN_TIME:-0.05}" \
    --v=2 >"$out/$name.log" 2>&1 || { cat "$out/$name.log" >&2; exit 1; }
  iterations=$(awk '/Running .* for [0-9]+$/ {n += $NF} END {print n + 0}' "$out/$name.log")
  if [ "$iterations" -eq 0 ]; then
    echo "$filter: matched no benchmark" >&2
    exit 1
  fi
  instructions=$(callgrind_annotate "$out/$name.callgrind" | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  awk -v f="$filter" -v i="$instructions" -v n="$iterations" \
    'BEGIN {printf "%-55s %8.1f instructions/item (%d instructions, %d iterations)\n", f, i / n, i, n}'
done
echo "callgrind files: $out" >&2

#!/bin/bash
# Builds the benchmarks with full optimisation, then runs them beside Scapy
# on identical frames (bench/scapy_compare.py) and prints the machine, the
# load and the table that bench/RESULTS.md records. Extra arguments go to
# scapy_compare.py (e.g. --repetitions 5, --json out.json).
set -euo pipefail
cd "$(dirname "$0")/.."

flags=(-c opt --config=bench)
bazel build "${flags[@]}" //bench:wire_bench
bench_binary="$(bazel info "${flags[@]}" bazel-bin)/bench/wire_bench"

echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "cpu:     $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), nproc $(nproc)"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) before the run"
echo "command: bench/run.sh $*"
echo
# Debian's /usr/bin/python3 is the one with Scapy.
/usr/bin/python3 bench/scapy_compare.py --bench "$bench_binary" "$@"
echo
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) after the run"

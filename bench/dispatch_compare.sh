#!/bin/bash
# Instructions per frame of bench/dispatch_bench.cc's three variants (static
# stack, runtime facade, hand-written parse-and-switch) on each path, counted
# by valgrind's callgrind, and with TIMES=1 their times: the issue's targets
# (static within 5% of hand-written, facade within 1.5x) are read on both.
# Unlike times, the counts do not depend on the load of the machine or on
# where the frames lie in memory.
#
#   bench/dispatch_compare.sh [FRAMES]          build with Bazel, then count (default 64000 frames)
#   BINARY=path bench/dispatch_compare.sh       count with a binary built elsewhere
#   TIMES=1 bench/dispatch_compare.sh           also run Google Benchmark (ns per frame, and the
#                                               medians' ratios to hand-written code)
#
# For each path and variant it runs the binary twice under callgrind, with
# FRAMES frames and with none, and divides the difference by FRAMES: set-up
# (stack construction, the TCP handshake, the agreement checks every run
# makes) cancels out. `none` is the harness alone (the loop, the indirect
# call, and for TCP the sequence number rewrite); "work" is a variant's count
# less that. Ratios are of work. The callgrind files stay in OUT (default a
# temporary folder) for `callgrind_annotate --inclusive=yes FILE` and
# `callgrind_annotate --auto=yes FILE` (by source line).
#
# Exit status: 0 when the table was printed, 1 when a run failed.
set -euo pipefail
cd "$(dirname "$0")/.."

frames=${1:-64000}
if ! [[ $frames =~ ^[1-9][0-9]*$ ]]; then
  sed -n '2,20p' "$0" >&2
  exit 2
fi
if [ -z "${BINARY:-}" ]; then
  flags=(-c opt --config=bench)
  bazel build "${flags[@]}" //bench:dispatch_bench >&2
  BINARY="$(bazel info "${flags[@]}" bazel-bin)/bench/dispatch_bench"
fi
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"

# Instructions of one run, from callgrind's totals line.
count() {
  local file=$1
  shift
  if ! valgrind --tool=callgrind --callgrind-out-file="$file" "$BINARY" "$@" >"$file.log" 2>&1; then
    cat "$file.log" >&2
    exit 1
  fi
  awk '/^(summary|totals):/ {print $2; exit}' "$file"
}

echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "cpu:     $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), nproc $(nproc)"
echo "binary:  $BINARY"
echo "frames:  $frames per run, minus a run with 0"
echo
printf '%-5s %-12s %12s %12s %10s\n' path variant "instr/frame" "work/frame" "vs hand"
for path in udp tcp; do
  declare -A per_frame=()
  for variant in none handwritten static facade; do
    if [ "$variant" = facade ] && [ "$path" = tcp ] && ! "$BINARY" --variant=facade --path=tcp --frames=0 >/dev/null 2>&1; then
      printf '%-5s %-12s %12s\n' "$path" "$variant" "not built"
      continue
    fi
    zero=$(count "$out/$path.$variant.0.callgrind" --variant="$variant" --path="$path" --frames=0)
    full=$(count "$out/$path.$variant.$frames.callgrind" --variant="$variant" --path="$path" --frames="$frames")
    per_frame[$variant]=$(awk -v a="$zero" -v b="$full" -v n="$frames" 'BEGIN {printf "%.1f", (b - a) / n}')
  done
  for variant in handwritten static facade; do
    [ -n "${per_frame[$variant]:-}" ] || continue
    awk -v p="$path" -v v="$variant" -v x="${per_frame[$variant]}" -v none="${per_frame[none]}" \
      -v hand="${per_frame[handwritten]}" \
      'BEGIN {printf "%-5s %-12s %12.1f %12.1f %9.3fx\n", p, v, x, x - none, (x - none) / (hand - none)}'
  done
  printf '%-5s %-12s %12.1f\n' "$path" none "${per_frame[none]}"
  unset per_frame
done
echo
echo "callgrind files: $out" >&2

if [ -n "${TIMES:-}" ]; then
  echo
  echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) before the timed run"
  timed=$("$BINARY" --benchmark_repetitions="${REPETITIONS:-5}" --benchmark_enable_random_interleaving=true \
    --benchmark_report_aggregates_only=true --benchmark_min_time="${MIN_TIME:-0.5}")
  echo "$timed"
  echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) after"
  # The medians' ratios: "per frame" as measured, and "work" with the
  # harness's own median (`none`) taken from both sides, as for the counts.
  # Unlike a count, a time does not add up: the harness's loop runs beside
  # a variant's work, and alone (UDP: about 2 ns) it varies by 10% between
  # repetitions, so the "work" ratio is the rougher of the two.
  echo
  printf '%-5s %-12s %10s %10s %10s\n' path variant "ns/frame" "vs hand" "work vs"
  echo "$timed" | awk '
    /^dispatch\/[a-z]+\/[a-z]+_median / {
      split($1, part, "/"); sub(/_median$/, "", part[3]); ns[part[2], part[3]] = $2
    }
    END {
      split("udp tcp", paths, " "); split("handwritten static facade", variants, " ")
      for (p = 1; p <= 2; ++p) {
        hand = ns[paths[p], "handwritten"]; none = ns[paths[p], "none"]
        if (hand == "" || none == "") continue
        for (v = 1; v <= 3; ++v) {
          x = ns[paths[p], variants[v]]
          if (x == "") continue
          printf "%-5s %-12s %10.2f %9.3fx %9.3fx\n", paths[p], variants[v], x, x / hand, (x - none) / (hand - none)
        }
      }
    }'
fi

#!/usr/bin/env bash
# wire_bench_smoke_test.sh WIRE_BENCH [EXTRA_ARGS...]
#
# Runs one benchmark of each kind for about a millisecond. Fails when
# wire_bench fails (its self-checks exit with status 1 before any timing)
# or when a benchmark it should have run is missing from its output.
# EXTRA_ARGS go to wire_bench (e.g. --tcp_frames=F to check other frames).
set -uo pipefail
bench=$1
shift
out=${TEST_TMPDIR:-/tmp}/wire_bench_smoke.out

"$bench" --benchmark_min_time=0.001 \
  --benchmark_filter='/mix64$|syn_ack$|^parse/dns_response$|^checksum/64$' "$@" >"$out"
status=$?
cat "$out"
if [ "$status" -ne 0 ]; then
  echo "FAIL: wire_bench exited with status $status" >&2
  exit 1
fi

# One row per benchmark: a filter that matches nothing, or a renamed
# benchmark, must not pass silently.
missing=0
for row in \
  parse/eth_ipv4_tcp/checksums/mix64 \
  parse/eth_ipv4_tcp/checksums/syn_ack \
  parse/eth_ipv4_tcp/ip_checksum_only/mix64 \
  parse/eth_ipv4_tcp/ip_checksum_only/syn_ack \
  parse/eth_ipv4_tcp/checksums_options_in_place/mix64 \
  tcp_options/iterator/mix64 \
  tcp_options/in_place/mix64 \
  parse/dns_response \
  build/eth_ipv4_tcp/checksums/mix64 \
  build/eth_ipv4_tcp/checksums/syn_ack \
  build/tcp_options/push_syn_ack \
  checksum/64; do
  if ! grep -q "^$row " "$out"; then
    echo "FAIL: no result for $row" >&2
    missing=$((missing + 1))
  fi
done
[ "$missing" -eq 0 ] || exit 1
echo "wire_bench: self-checks passed, 12 benchmarks ran"

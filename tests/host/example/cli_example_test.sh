#!/usr/bin/env bash
# Runs a real program built on cli::parse_or_exit, as a user's shell would:
# a bad command line exits 2 with "<program>: --flag: why" and a hint on
# stderr and nothing on stdout; --help exits 0 with the usage on stdout; a
# good one exits 0. Flags that name the loopback interface explicitly keep
# the good runs independent of this machine's routes.
set -uo pipefail
program=${1:?usage: cli_example_test.sh PATH_TO_cli_example}
scratch=${TEST_TMPDIR:-$(mktemp -d)}
failed=0
count=0

# expect STATUS STDERR_FRAGMENT STDOUT_FRAGMENT -- ARGS...
expect() {
  local status=$1 err_part=$2 out_part=$3
  shift 4
  count=$((count + 1))
  "$program" "$@" >"$scratch/out" 2>"$scratch/err"
  local got=$?
  local ok=1
  [ "$got" -eq "$status" ] || ok=0
  if [ -n "$err_part" ]; then grep -qF -- "$err_part" "$scratch/err" || ok=0; else [ ! -s "$scratch/err" ] || ok=0; fi
  if [ -n "$out_part" ]; then grep -qF -- "$out_part" "$scratch/out" || ok=0; else [ ! -s "$scratch/out" ] || ok=0; fi
  if [ "$ok" -eq 0 ]; then
    failed=$((failed + 1))
    echo "FAIL: cli_example $* exited $got (wanted $status)"
    echo "  wanted stderr to contain: ${err_part:-<nothing>}; stdout: ${out_part:-<nothing>}"
    sed 's/^/  stderr: /' "$scratch/err"
    sed 's/^/  stdout: /' "$scratch/out"
  fi
}

hint="Try 'cli_example --help'."
good=(--iface lo --ip 127.0.0.2/8 --gateway 127.0.0.1 --dns 127.0.0.53)

expect 2 "cli_example: --bogus: unknown flag" "" -- --bogus
expect 2 "$hint" "" -- --bogus
expect 2 "cli_example: -x: unknown flag" "" -- -x
expect 2 "cli_example: --ip: prefix length 33 exceeds 32" "" -- "${good[@]}" --ip 10.0.0.1/33
expect 2 "cli_example: --ip: '10.0.0.1' has no prefix length" "" -- --ip 10.0.0.1
expect 2 "cli_example: --ip: '10.0.0.300' is not an IPv4 address" "" -- --ip=10.0.0.300/24
expect 2 "cli_example: --gateway: 'gw' is not an IPv4 address" "" -- --gateway gw
expect 2 "cli_example: --dns: 224.0.0.251 is not a unicast address" "" -- --dns 224.0.0.251
expect 2 "cli_example: --iface: needs a value NAME" "" -- --iface
expect 2 "cli_example: --pcap: needs a value FILE" "" -- --pcap --verbose
expect 2 "cli_example: --impair: loss: 1.5 is not a probability" "" -- --impair loss=1.5
expect 2 "cli_example: --impair: seed: 'x' is not an unsigned decimal integer" "" -- --impair=seed=x
expect 2 "cli_example: --verbose: takes no value" "" -- --verbose=1
expect 2 "cli_example: --iface: no interface named 'no-such-if0'" "" -- "${good[@]}" --iface no-such-if0
expect 2 "cli_example: --port: needs a value PORT" "" -- "${good[@]}" --port
expect 2 "cli_example: --port: 'http' is not a port number 1-65535" "" -- "${good[@]}" --port http
expect 2 "cli_example: --once: takes no value" "" -- --once=yes

expect 0 "" "usage: cli_example [options] [WORD...]" -- --help
expect 0 "" "  --impair SPEC" -- -h
expect 0 "" "  --port PORT               TCP port to use" -- --bogus --help
expect 0 "" "interface=lo" -- "${good[@]}"
expect 0 "" "ip=127.0.0.2/8" -- "${good[@]}"
expect 0 "" "impair=loss=0.05,reorder=0.05,dup=0.01,corrupt=0.01,delay=2ms,seed=7" -- "${good[@]}" \
  --impair loss=0.05,reorder=0.05,dup=0.01,corrupt=0.01,delay=2ms,seed=7
expect 0 "" "pcap=$scratch/x.pcap" -- "${good[@]}" --pcap="$scratch/x.pcap"
expect 0 "" "port=8080" -- "${good[@]}" --port=8080 --once
expect 0 "" "word=--help" -- "${good[@]}" -- --help

echo "$count runs, $failed failed"
[ "$failed" -eq 0 ]

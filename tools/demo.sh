#!/usr/bin/env bash
# The main job: a live demonstration. Installs what it needs, builds
# examples/web_server (a web server, UDP echo and ping on a stack that is a
# type, sending every SYN-ACK with sequence number 5555), and runs it in a
# network namespace against the Linux kernel's ping, curl and a UDP client
# in another (examples/demo_netns.sh). Needs root for the namespaces;
# touches nothing outside the two it makes and removes.
#
#   tools/demo.sh [CAPTURE_FILE]     keep web_server's recording of the run
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "demo: it makes network namespaces, which needs root: sudo tools/demo.sh" >&2
  exit 1
fi
tools/setup.sh
if ! log=$(bazel build //examples:web_server //examples:echo_server 2>&1); then
  grep -v linux-sandbox <<<"$log" >&2
  exit 1
fi
capture=()
[ $# -ge 1 ] && capture=("$(realpath -m "$1")")
exec examples/demo_netns.sh bazel-bin/examples/web_server bazel-bin/examples/echo_server "${capture[@]}"

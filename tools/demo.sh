#!/usr/bin/env bash
# The main job, for now: decode a capture of real kernel traffic
# (examples/captures/demo.pcap, recorded by tools/make_demo_capture.sh) with
# the library's views, one JSON object per frame. Pass another capture to
# decode that instead.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
capture=${1:-examples/captures/demo.pcap}
if ! log=$(bazel build //tools:dissect 2>&1); then
  grep -v linux-sandbox <<<"$log" >&2
  exit 1
fi
exec bazel-bin/tools/dissect "$capture"

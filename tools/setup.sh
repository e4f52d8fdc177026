#!/usr/bin/env bash
# Installs every Debian package the project uses. Quick and quiet when all of
# them are already there; otherwise one `apt-get update` and one install.
set -euo pipefail

packages=(
  # build
  bazel-bootstrap bazel-platforms g++ libboost-dev libpcap-dev libnftables-dev
  # tests and benchmarks
  catch2 libbenchmark-dev valgrind
  # independent oracles: Scapy (on Debian's python3), tshark, tcpdump, the kernel
  python3 python3-scapy tshark tcpdump iproute2 ethtool iputils-ping curl nftables
  # fuzzing: libFuzzer with AddressSanitizer and UndefinedBehaviorSanitizer
  clang libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = "installed" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "setup: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

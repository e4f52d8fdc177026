#!/usr/bin/env bash
# Records examples/captures/demo.pcap: real traffic of the Linux kernel between
# two network namespaces that this script creates and deletes (needs root).
# ARP, ICMP echo, a TCP handshake with an HTTP request
# and teardown, and a UDP datagram to a closed port answered by ICMP
# port-unreachable. Addresses are private and live only in these namespaces.
set -euo pipefail
out=${1:-"$(dirname "$0")/../examples/captures/demo.pcap"}
id=$$
a=psdemo-a-$id b=psdemo-b-$id
site=$(mktemp -d)
capture="" server=""
cleanup() {
  # tcpdump writes every packet as it comes (-U), so SIGKILL loses nothing, and
  # unlike SIGTERM it cannot leave a capturer behind in a deleted namespace.
  for pid in $capture $server; do kill -KILL "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip netns del "$a" 2>/dev/null || true; ip netns del "$b" 2>/dev/null || true; rm -rf "$site"
}
trap cleanup EXIT
ip netns add "$a"; ip netns add "$b"
ip link add va$id type veth peer name vb$id
ip link set va$id netns "$a"; ip link set vb$id netns "$b"
ip -n "$a" link set lo up; ip -n "$b" link set lo up
for ns in "$a" "$b"; do ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1; done
ip -n "$a" link set va$id address 02:00:00:00:00:0a
ip -n "$b" link set vb$id address 02:00:00:00:00:0b
ip -n "$a" addr add 10.77.0.1/24 dev va$id; ip -n "$b" addr add 10.77.0.2/24 dev vb$id
ip -n "$a" link set va$id up; ip -n "$b" link set vb$id up
# Complete checksums on the wire (veth would otherwise leave them unfinished).
ip netns exec "$a" ethtool -K va$id tx off >/dev/null
ip netns exec "$b" ethtool -K vb$id tx off >/dev/null

printf '<html><body>Hello from the kernel of namespace b.</body></html>\n' >"$site/index.html"
ip netns exec "$b" /usr/bin/python3 -m http.server 8080 --bind 10.77.0.2 --directory "$site" >/dev/null 2>&1 &
server=$!
ip netns exec "$a" tcpdump -i va$id -w "$out" -U -s 0 >/dev/null 2>&1 &
capture=$!
sleep 1
ip netns exec "$a" ping -c 2 -i 0.2 10.77.0.2 >/dev/null
ip netns exec "$a" /usr/bin/python3 - <<'PY'
import socket, time
s = socket.create_connection(("10.77.0.2", 8080), timeout=5)
s.sendall(b"GET / HTTP/1.0\r\nHost: demo\r\n\r\n")
while s.recv(65536):
    pass
s.close()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.sendto(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01", ("10.77.0.2", 53))
time.sleep(0.5)
PY
sleep 0.5
cleanup
chown --reference="$(dirname "$out")" "$out"
echo "wrote $out"

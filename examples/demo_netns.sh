#!/usr/bin/env bash
# Runs examples/web_server against the Linux kernel: two network namespaces
# made here, joined by a veth pair (shared/docs/netns-harness.md's layout).
#
#   stack namespace  : web_server on its end of the pair, through libpcap;
#                      the kernel there has no address, so it stays silent
#   kernel namespace : the Linux kernel with ping, curl and python3
#
# Each step checks what a user would see; the script says "ok" or "FAILED"
# for each, and exits 1 when any failed. Everything it made (namespaces, the
# pair, the server, temporary files) is removed on every exit path. Traffic
# stays between the two namespaces, on private addresses.
#
# Then the same for examples/echo_server, the original's EchoServer on the
# runtime facade PyStack, with two kernel clients at once.
#
# usage: demo_netns.sh [--shared-address] WEB_SERVER ECHO_SERVER [CAPTURE_FILE]
#   CAPTURE_FILE keeps web_server's recording of every frame (--pcap);
#   without it the recording is shown and then deleted.
#   --shared-address gives the kernel of the stack's namespace the stack's
#   address too (the original pystack's only mode): web_server must then
#   keep that kernel's RSTs, port unreachables and echo replies out
#   (host/kernel_guard.hpp), and leave its firewall as it found it.
set -uo pipefail

shared=0
if [ "${1:-}" = "--shared-address" ]; then
  shared=1
  shift
fi
usage="usage: demo_netns.sh [--shared-address] WEB_SERVER ECHO_SERVER [CAPTURE_FILE]"
web_server=${1:?$usage}
echo_server=${2:?$usage}
[ "$(id -u)" -eq 0 ] || { echo "demo: network namespaces need root; run it as root or with sudo" >&2; exit 1; }
for tool in ip ethtool ping curl tshark nft /usr/bin/python3; do
  command -v "$tool" >/dev/null || { echo "demo: $tool is missing (tools/setup.sh installs it)" >&2; exit 1; }
done

tag=$$
kernel_ns=pdk$tag stack_ns=pds$tag kernel_if=dk$tag stack_if=ds$tag
subnet=$((tag % 250))
kernel_ip=10.203.$subnet.2 stack_ip=10.203.$subnet.1
work=$(mktemp -d)
capture=${3:-$work/web_server.pcap}
server_log=
server_pid=
host_server_pid=

cleanup() {
  for pid in $server_pid $host_server_pid; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null
      wait "$pid" 2>/dev/null
    fi
  done
  ip netns del "$kernel_ns" 2>/dev/null  # deleting a namespace deletes its end of the pair, and so the pair
  ip netns del "$stack_ns" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

failures=0
step() { printf '\n-- %s\n' "$*"; }
ok() { printf '   ok: %s\n' "$*"; }
failed() { printf '   FAILED: %s\n' "$*"; failures=$((failures + 1)); }
in_kernel() { ip netns exec "$kernel_ns" "$@"; }

# Both ends are made inside the new namespaces: the root namespace never sees them.
if ! { ip netns add "$kernel_ns" && ip netns add "$stack_ns" &&
       ip -n "$kernel_ns" link add "$kernel_if" type veth peer name "$stack_if" netns "$stack_ns" &&
       ip -n "$kernel_ns" addr add "$kernel_ip/24" dev "$kernel_if" &&
       ip -n "$kernel_ns" link set lo up && ip -n "$kernel_ns" link set "$kernel_if" up &&
       ip -n "$stack_ns" link set lo up && ip -n "$stack_ns" link set "$stack_if" up; }; then
  echo "demo: could not make the namespaces" >&2
  exit 1
fi
if [ "$shared" -eq 1 ]; then
  ip -n "$stack_ns" addr add "$stack_ip/24" dev "$stack_if" || { echo "demo: could not share the address" >&2; exit 1; }
fi
firewall_before=$(ip netns exec "$stack_ns" nft list ruleset 2>&1)
# The kernel would otherwise leave TCP and UDP checksums for the veth to
# finish, and our stack, which checks them, would drop its frames
# (netns-harness.md, "Checksum offload on veth").
ip netns exec "$kernel_ns" ethtool -K "$kernel_if" tx off >/dev/null 2>&1

cat <<EOF
pystack demo: a user-space TCP/IP stack talking to the Linux kernel.

  namespace $stack_ns, $stack_if, $stack_ip: examples/web_server, a stack that is a type,
      Stack<Ethernet<>, IP<ICMP<>, UDP<Port<7, udp_echo>>, TCP<Session<syn_ack_5555>, Listen<80, web_page>>>, ARP<>>
      Every SYN-ACK it sends has sequence number 5555: a policy, compiled in.
  namespace $kernel_ns, $kernel_if, $kernel_ip: the Linux kernel, with ping, curl and python3.
EOF
if [ "$shared" -eq 1 ]; then
  echo "  The kernel of $stack_ns has $stack_ip too, as with the original pystack on a host's own address."
fi

# Starts a server in the stack's namespace and waits until it listens.
start_server() {
  local name=$1
  shift
  server_log=$work/$name.log
  ip netns exec "$stack_ns" "$@" --iface "$stack_if" --ip "$stack_ip/24" >"$server_log" 2>&1 &
  server_pid=$!
  for _ in $(seq 300); do  # 30 s: two loaded cores start slowly
    grep -qs "listening" "$server_log" && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if ! grep -qs "listening" "$server_log"; then
    echo "demo: $name did not start:" >&2
    cat "$server_log" >&2
    exit 1
  fi
  sed 's/^/   /' "$server_log"
}

# SIGINT, as a user's Ctrl-C: the server closes what is open and reports.
stop_server() {
  local name=$1
  step "stopping $name (SIGINT): it closes what is open and says what it did"
  kill -INT "$server_pid"
  for _ in $(seq 100); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$server_pid" 2>/dev/null; then
    failed "$name did not stop within 10 s"
    kill -KILL "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
    server_pid=
    return
  fi
  wait "$server_pid"
  local status=$?
  server_pid=
  grep -E "^$name: (stopped|[0-9]+ frames recorded|capture)" "$server_log" | sed 's/^/   /'
  if [ "$status" -eq 0 ]; then ok "stopped cleanly"; else failed "$name exited with status $status"; fi
  if [ "$shared" -eq 1 ]; then
    if [ "$(ip netns exec "$stack_ns" nft list ruleset 2>&1)" = "$firewall_before" ]; then
      ok "the firewall of $stack_ns is exactly as before: the guard's table went with $name"
    else
      failed "$name left the firewall of $stack_ns changed"
    fi
  fi
}

start_server web_server "$web_server" --pcap "$capture"

step "ping $stack_ip: the kernel's ICMP echo requests, answered by our ICMP (our ARP answers first)"
ping_out=$(in_kernel ping -c 3 -i 0.2 -W 2 "$stack_ip" 2>&1)
printf '%s\n' "$ping_out" | sed 's/^/   /'
if grep -q " 3 received" <<<"$ping_out"; then ok "3 of 3 echo replies"; else failed "echo replies missing"; fi
if grep -q "DUP!" <<<"$ping_out"; then failed "duplicate echo replies: the kernel answered too"; fi

step "curl http://$stack_ip/: the kernel's TCP connects to ours; HTTP over it"
page=$(in_kernel timeout 10 curl -sS --max-time 5 "http://$stack_ip/" 2>&1)
printf '%s\n' "$page" | sed 's/^/   /'
if grep -q "Our SYN-ACK carried sequence number 5555" <<<"$page" && grep -q "You asked: GET / HTTP/1.1" <<<"$page"; then
  ok "page served by our TCP"
else
  failed "no page"
fi

step "UDP to port 7: a python3 socket in the kernel's namespace, echoed by our UDP"
udp_out=$(in_kernel timeout 10 /usr/bin/python3 - "$stack_ip" <<'EOF' 2>&1
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
message = b"hello over UDP"
s.sendto(message, (sys.argv[1], 7))
data, sender = s.recvfrom(2048)
print(f"sent {message!r}, got {data!r} back from {sender[0]}:{sender[1]}")
sys.exit(0 if data == message and sender == (sys.argv[1], 7) else 1)
EOF
)
udp_status=$?
printf '%s\n' "$udp_out" | sed 's/^/   /'
if [ "$udp_status" -eq 0 ]; then ok "datagram echoed"; else failed "no echo"; fi

if [ "$shared" -eq 1 ]; then
  step "the host's own service beside ours: the kernel's HTTP server on $stack_ip:9999 keeps working"
  ip netns exec "$stack_ns" /usr/bin/python3 -m http.server 9999 --bind "$stack_ip" --directory "$work" \
    >/dev/null 2>&1 &
  host_server_pid=$!
  for _ in $(seq 100); do
    ip netns exec "$stack_ns" ss -ltn "sport = :9999" 2>/dev/null | grep -q LISTEN && break
    sleep 0.1
  done
  ip netns exec "$stack_ns" ss -ltn "sport = :9999" 2>/dev/null | grep -q LISTEN ||
    echo "   (the host's server was not listening after 10 s)"
  host_page=$(in_kernel timeout 10 curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "http://$stack_ip:9999/" 2>&1)
  kill "$host_server_pid" 2>/dev/null
  wait "$host_server_pid" 2>/dev/null
  host_server_pid=
  if [ "$host_page" = "200" ]; then ok "the host's server answered (HTTP $host_page): our stack left its connection alone"
  else failed "the host's server did not answer: '$host_page'"; fi
fi

step "a port nobody listens on: the connection is refused by exactly one RST"
refused=$(in_kernel timeout 10 /usr/bin/python3 -c "
import socket
s = socket.socket(); s.settimeout(3)
try:
    s.connect(('$stack_ip', 81)); print('connected')
except ConnectionRefusedError: print('refused')
except socket.timeout: print('timeout')" 2>&1)
if [ "$refused" = "refused" ]; then ok "refused (whose RST it was shows in the recording, below)"
else failed "connect to port 81: '$refused'"; fi

stop_server web_server

step "the conversation, from web_server's own recording (--pcap), as tshark decodes it"
# Absolute sequence numbers, so that 5555 shows; tshark verifies every
# checksum our stack computed.
summary=$(tshark -r "$capture" -n -o tcp.relative_sequence_numbers:FALSE -o tcp.check_checksum:TRUE \
                 -o udp.check_checksum:TRUE -o ip.check_checksum:TRUE 2>/dev/null)
printf '%s\n' "$summary" | sed 's/^ *//; s/^/   /'
syn_ack_seq=$(tshark -r "$capture" -n -Y "tcp.flags.syn == 1 && tcp.flags.ack == 1 && ip.src == $stack_ip" \
                     -T fields -e tcp.seq_raw 2>/dev/null | head -n 1)
bad_checksums=$(tshark -r "$capture" -n -o tcp.check_checksum:TRUE -o udp.check_checksum:TRUE \
                       -o ip.check_checksum:TRUE \
                       -Y "tcp.checksum.status == 0 || udp.checksum.status == 0 || ip.checksum.status == 0" \
                       2>/dev/null | wc -l)
if [ "$syn_ack_seq" = "5555" ]; then ok "tshark reads the SYN-ACK's sequence number as 5555"; else failed "SYN-ACK sequence number '$syn_ack_seq'"; fi
if [ "$bad_checksums" -eq 0 ]; then ok "tshark finds every checksum right"; else failed "$bad_checksums frames with a bad checksum"; fi
our_resets=$(tshark -r "$capture" -n -Y "tcp.flags.reset == 1 && ip.src == $stack_ip && tcp.srcport == 81" 2>/dev/null | wc -l)
if [ "$shared" -eq 1 ]; then
  expected_resets=0 whose="the kernel's: port 81 is the host's, and our stack left it alone"
else
  expected_resets=1 whose="ours (RFC 9293 §3.10.7.1): nobody else has the address"
fi
if [ "$our_resets" -eq "$expected_resets" ]; then ok "the RST for port 81 was $whose"
else failed "$our_resets RST(s) from our stack for port 81, $expected_resets expected"; fi

printf '\n%s\n' "Next, the original's EchoServer on the runtime facade: PyStack, a TCPApplication bound with
bind(8888, self, False) and listen(5), one instance shared by every client, answering each by its id."
start_server echo_server "$echo_server" --port 8888

step "two kernel clients at once, 200 kB each, every byte echoed to the one who sent it"
echo_out=$(in_kernel timeout 20 /usr/bin/python3 - "$stack_ip" <<'EOF' 2>&1
import socket, sys, threading
address = (sys.argv[1], 8888)
results = {}
def client(name, size):
    message = bytes((ord(name[0]) + i * 7) % 256 for i in range(size))
    with socket.create_connection(address, timeout=10) as s:
        sender = threading.Thread(target=s.sendall, args=(message,))
        sender.start()
        got = bytearray()
        while len(got) < len(message):
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        sender.join()
    results[name] = got == message
    print(f"{name}: sent {size} bytes, {'got every one back' if results[name] else f'got {len(got)} back, not the same'}")
threads = [threading.Thread(target=client, args=(name, 200_000)) for name in ("alice", "bob")]
for t in threads: t.start()
for t in threads: t.join()
sys.exit(0 if len(results) == 2 and all(results.values()) else 1)
EOF
)
echo_status=$?
printf '%s\n' "$echo_out" | sed 's/^/   /'
grep -E "^echo_server: connection" "$server_log" | sed 's/^/   /'
if [ "$echo_status" -eq 0 ]; then ok "both clients got their own bytes back"; else failed "echo"; fi
stop_server echo_server

printf '\n%s\n' "$([ "$failures" -eq 0 ] && echo "demo: every step worked" || echo "demo: $failures step(s) FAILED")"
[ "$failures" -eq 0 ]

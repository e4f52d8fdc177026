#!/usr/bin/python3
"""Times Scapy and bench/wire_bench on the same bytes, in one run.

Scapy builds the benchmark's frames (the recipe in wire_bench.cc: 64
Ethernet/IPv4/TCP frames, SYN-ACKs, ACKs, data and SACKs, all with options, and
one compressed DNS response) and writes them to pcap files; wire_bench reads
those files, so both sides work on identical bytes. wire_bench also refuses to
run unless every Scapy frame parses, both checksums verify, and re-emitting the
parsed headers gives back Scapy's bytes exactly.

Rates are per second of CPU time on both sides (Google Benchmark's
items_per_second uses CPU time; Scapy is timed with time.process_time()), so
that other work on a loaded machine counts less against either.

What each side does per item:
- dissect, ours: Ethernet, IPv4 and TCP checked views, IPv4 header checksum
  verified, TCP option framing checked, every option decoded, TCP checksum
  verified. Scapy: Ether(bytes), then the IP and TCP fields and the options
  list read (Scapy verifies no checksum).
- build, ours: payload copied into a frame buffer, then tcp/ipv4/eth
  repr::emit prepend their headers, both checksums computed. Scapy:
  raw(Ether()/IP()/TCP(options=...)/Raw()), checksums computed by Scapy.
- DNS, ours: dns::view::checked over the whole message, then every question
  and record read, names as text, RDATA decoded. Scapy: DNS(bytes), then
  every record's name, type, TTL and rdata read.

Usage: bench/scapy_compare.py --bench bazel-bin/bench/wire_bench [--repetitions N] [--json FILE]
(bench/run.sh builds the binary and calls this.)
Exit status: 0 after printing the table, 1 when wire_bench fails.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from scapy.all import DNS, DNSQR, DNSRR, IP, TCP, UDP, Ether, Raw, raw, wrpcap

FRAME_COUNT = 64
DATA_SIZES = [1, 40, 100, 200, 300, 536, 1000, 1448]

# What the issue asks for, per core.
PARSE_TARGET = 30e6
BUILD_TARGET = 10e6
SCAPY_RATIO_TARGET = 1000


def frame_spec(i):
    """The keyword arguments of frame i's layers: the recipe of wire_bench.cc."""
    m32 = 0xFFFFFFFF
    seq = (0x9E3779B9 * (i + 1)) & m32
    ack = (0x7F4A7C15 * (i + 1)) & m32
    tsval = 100000 + 1000 * i
    tsecr = 50000 + 999 * i
    payload = b""
    kind = i % 4
    if kind == 0:
        flags = "SA"
        options = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (tsval, tsecr)), ("NOP", None), ("WScale", 7)]
    elif kind == 1:
        flags = "A"
        options = [("NOP", None), ("NOP", None), ("Timestamp", (tsval, tsecr))]
    elif kind == 2:
        flags = "PA"
        options = [("NOP", None), ("NOP", None), ("Timestamp", (tsval, tsecr))]
        size = DATA_SIZES[(i // 4) % 8]
        payload = bytes((i * 7 + j) & 0xFF for j in range(size))
    else:
        flags = "A"
        block = ((ack + 1000 + i) & m32, (ack + 2000 + i) & m32)
        options = [("NOP", None), ("NOP", None), ("Timestamp", (tsval, tsecr)), ("NOP", None), ("NOP", None),
                   ("SAck", block)]
    return {
        "ether": {"dst": "02:00:00:00:00:02", "src": "02:00:00:00:00:01"},
        "ip": {"src": "10.0.0.%d" % (1 + i % 8), "dst": "192.168.1.%d" % (10 + i % 50), "id": 1000 + i,
               "flags": "DF", "ttl": 64},
        "tcp": {"sport": 443 if i % 2 else 80, "dport": 32768 + 97 * i, "seq": seq, "ack": ack, "flags": flags,
                "window": 65535 - 128 * i, "options": options},
        "payload": payload,
    }


def build_frame(spec):
    return raw(Ether(**spec["ether"]) / IP(**spec["ip"]) / TCP(**spec["tcp"]) / Raw(spec["payload"]))


def dns_frame():
    """The DNS response of the recipe, compressed by Scapy, in a UDP frame."""
    answers = DNSRR(rrname="www.example.com", type="CNAME", ttl=300, rdata="cdn.example.net")
    for last in (34, 35, 36, 37):
        answers = answers / DNSRR(rrname="cdn.example.net", type="A", ttl=60, rdata="93.184.216.%d" % last)
    authorities = (DNSRR(rrname="example.net", type="NS", ttl=86400, rdata="ns1.example.net") /
                   DNSRR(rrname="example.net", type="NS", ttl=86400, rdata="ns2.example.net"))
    additionals = (DNSRR(rrname="ns1.example.net", type="A", ttl=86400, rdata="192.0.2.53") /
                   DNSRR(rrname="ns2.example.net", type="A", ttl=86400, rdata="198.51.100.53"))
    message = DNS(id=0x4A2F, qr=1, rd=1, ra=1, qd=DNSQR(qname="www.example.com", qtype="A"), an=answers,
                  ns=authorities, ar=additionals).compress()
    return raw(Ether(dst="02:00:00:00:00:01", src="02:00:00:00:00:02") /
               IP(src="10.0.0.53", dst="192.168.1.10") / UDP(sport=53, dport=40000) / message)


def rate(work, items_per_call, seconds):
    """Calls work() until `seconds` of CPU time have passed; items per CPU second."""
    calls = 0
    start = time.process_time()
    elapsed = 0.0
    while elapsed < seconds:
        work()
        calls += 1
        elapsed = time.process_time() - start
    return calls * items_per_call / elapsed


def scapy_dissect(frames):
    def work():
        for b in frames:
            p = Ether(b)
            ip = p[IP]
            tcp = p[TCP]
            fields = (ip.src, ip.dst, ip.chksum, tcp.sport, tcp.dport, tcp.seq, tcp.ack, tcp.flags, tcp.window,
                      tcp.chksum, len(tcp.payload))
            for name, value in tcp.options:
                fields += (name, value)
    return work


def scapy_build(specs):
    def work():
        for s in specs:
            build_frame(s)
    return work


def scapy_dns(message):
    def work():
        p = DNS(message)
        fields = [p.id, p.qd.qname, p.qd.qtype]
        for section, count in ((p.an, p.ancount), (p.ns, p.nscount), (p.ar, p.arcount)):
            for k in range(count):
                rr = section[k]
                fields += [rr.rrname, rr.type, rr.ttl, rr.rdata]
    return work


def run_bench(bench, tcp_pcap, dns_pcap, min_time, repetitions):
    command = [bench, "--tcp_frames=" + tcp_pcap, "--dns_frames=" + dns_pcap, "--benchmark_format=json",
               "--benchmark_min_time=%g" % min_time]
    if repetitions > 1:
        # Interleaved repetitions spread a burst of other work on the machine
        # over several benchmarks instead of one; the median drops it.
        command += ["--benchmark_repetitions=%d" % repetitions, "--benchmark_enable_random_interleaving=true"]
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stderr)
        sys.exit("scapy_compare: %s failed (exit %d)" % (bench, result.returncode))
    report = json.loads(result.stdout)
    runs = {}
    order = []
    for b in report["benchmarks"]:
        if b.get("run_type", "iteration") != "iteration":
            continue
        if b["run_name"] not in runs:
            runs[b["run_name"]] = []
            order.append((b.get("family_index", 0), b.get("per_family_instance_index", 0), b["run_name"]))
        runs[b["run_name"]].append(b)
    rows = {}
    for _, _, name in sorted(order):
        repeats = runs[name]
        rate = statistics.median(r["items_per_second"] for r in repeats)
        row = {
            "items_per_second": rate,
            "best_items_per_second": max(r["items_per_second"] for r in repeats),
            "ns_per_item": 1e9 / rate,
            "repetitions": len(repeats),
        }
        if "bytes_per_second" in repeats[0]:
            row["bytes_per_second"] = statistics.median(r["bytes_per_second"] for r in repeats)
        rows[name] = row
    return report["context"], rows


def human(v):
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if v >= scale:
            return "%.2f%s" % (v / scale, unit)
    return "%.0f" % v


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bench", required=True, help="the wire_bench binary")
    parser.add_argument("--min-time", type=float, default=0.3, help="seconds per C++ benchmark run")
    parser.add_argument("--repetitions", type=int, default=5,
                        help="C++ runs per benchmark; the median is used, the best shown beside it")
    parser.add_argument("--scapy-seconds", type=float, default=1.5, help="CPU seconds per Scapy measurement")
    parser.add_argument("--frames-dir", help="write the pcaps here and keep them (default: a temporary folder)")
    parser.add_argument("--json", help="also write every figure to this file")
    args = parser.parse_args()

    specs = [frame_spec(i) for i in range(FRAME_COUNT)]
    frames = [build_frame(s) for s in specs]
    dns = dns_frame()
    dns_message = raw(Ether(dns)[DNS])

    with tempfile.TemporaryDirectory() as temporary:
        folder = args.frames_dir or temporary
        os.makedirs(folder, exist_ok=True)
        tcp_pcap = os.path.join(folder, "tcp_frames.pcap")
        dns_pcap = os.path.join(folder, "dns_frames.pcap")
        wrpcap(tcp_pcap, [Ether(b) for b in frames])
        wrpcap(dns_pcap, [Ether(dns)])

        scapy = {
            "dissect": rate(scapy_dissect(frames), len(frames), args.scapy_seconds),
            "build": rate(scapy_build(specs), len(specs), args.scapy_seconds),
            "dns": rate(scapy_dns(dns_message), 1, args.scapy_seconds / 2),
        }
        context, rows = run_bench(args.bench, tcp_pcap, dns_pcap, args.min_time, args.repetitions)

    mix = "mix%d" % FRAME_COUNT
    ours = {
        "dissect": rows["parse/eth_ipv4_tcp/checksums/" + mix]["items_per_second"],
        "build": rows["build/eth_ipv4_tcp/checksums/" + mix]["items_per_second"],
        "dns": rows["parse/dns_response"]["items_per_second"],
    }
    average_frame = sum(map(len, frames)) / len(frames)

    print("frames: %d Ethernet/IPv4/TCP frames built by Scapy, %d to %d bytes (mean %.0f); DNS response %d bytes"
          % (len(frames), min(map(len, frames)), max(map(len, frames)), average_frame, len(dns_message)))
    print("machine: %s, %s CPUs; load average at start of the C++ run: %s"
          % (context.get("host_name", "?"), context.get("num_cpus", "?"), context.get("load_avg", "?")))
    print()
    print("%-46s %12s %12s %10s" % ("per CPU second", "ours/s", "Scapy/s", "ratio"))
    labels = {
        "dissect": "dissect Ethernet/IPv4/TCP (64-frame mix)",
        "build": "build Ethernet/IPv4/TCP with checksums",
        "dns": "dissect DNS response (9 RRs, compressed)",
    }
    for key in ("dissect", "build", "dns"):
        print("%-46s %12s %12s %9.0fx" % (labels[key], human(ours[key]), human(scapy[key]), ours[key] / scapy[key]))
    print()
    print("%-52s %8s %10s %10s %10s" % ("wire_bench, median of %d (best)" % args.repetitions, "ns/item", "items/s",
                                         "best", "bytes/s"))
    for name, b in rows.items():
        print("%-52s %8.1f %10s %10s %10s" % (name, b["ns_per_item"], human(b["items_per_second"]),
                                              human(b["best_items_per_second"]),
                                              human(b["bytes_per_second"]) + "B" if "bytes_per_second" in b else ""))
    print()
    checks = [
        ("parse+validate >= 30 M frames/s", ours["dissect"] >= PARSE_TARGET, human(ours["dissect"])),
        ("build with checksums >= 10 M frames/s", ours["build"] >= BUILD_TARGET, human(ours["build"])),
        (">= 1000x Scapy, dissect", ours["dissect"] / scapy["dissect"] >= SCAPY_RATIO_TARGET,
         "%.0fx" % (ours["dissect"] / scapy["dissect"])),
        (">= 1000x Scapy, build", ours["build"] / scapy["build"] >= SCAPY_RATIO_TARGET,
         "%.0fx" % (ours["build"] / scapy["build"])),
    ]
    for text, met, value in checks:
        print("target %-40s %-6s (%s)" % (text, "met" if met else "MISSED", value))

    if args.json:
        with open(args.json, "w") as out:
            json.dump({"scapy": scapy, "ours": ours, "context": context, "benchmarks": rows}, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

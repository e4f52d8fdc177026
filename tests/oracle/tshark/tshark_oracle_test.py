#!/usr/bin/python3
"""Differential test of `dissect` against tshark, field by field.

For every capture, `dissect` and `tshark -T fields` decode the same frames;
every field that both tools show is compared, frame by frame, and every layer
that tshark decodes (up to the first ICMP message, whose quoted datagram
`dissect` does not decode) must be in our JSON.

Captures:
- examples/captures/*.pcap (passed by Bazel with --captures);
- every .pcap / .pcapng under $PYSTACK_TESTDATA (captures from tcpdump's and
  PcapPlusPlus's test suites); skipped, and said so, when it is not set;
- two captures that Scapy builds here (one Ethernet, one raw IP), so that
  VLAN and QinQ tags, IPv4 options, fragments, SACK, unknown TCP options,
  DNS records of several types, ICMP errors, bad checksums and truncated
  frames are covered even without the shared captures. Part of it is drawn
  from a seed, printed at the start and with every mismatch.

tshark is the oracle: nothing expected here was produced by our code. Where
the two tools disagree by design (tools/dissect.md and the wire headers
document each case), the rule is written out below with the reason, and a
frame it excuses is still listed in the log.

Usage (Bazel passes the paths):
  tshark_oracle_test.py --dissect PATH [--captures PCAP ...] [--seed N] [--keep DIR]
"""

import argparse
import concurrent.futures
import json
import logging
import os
import random
import re
import struct
import subprocess
import sys
import tempfile

logging.getLogger("scapy").setLevel(logging.ERROR)

from scapy.all import (  # noqa: E402  (after quietening Scapy's import-time warnings)
    ARP, DNS, DNSQR, DNSRR, DNSRRMX, DNSRROPT, DNSRRSOA, ICMP, IP, TCP, UDP, Dot1AD, Dot1Q, Ether, Raw,
    conf, fragment, raw)
from scapy.layers.dns import dns_compress  # noqa: E402
from scapy.layers.inet import (  # noqa: E402
    IPOption_LSRR, IPOption_NOP, IPOption_Router_Alert, IPOption_RR, IPOption_SSRR, IPOption_Timestamp)

conf.verb = 0

TSHARK = "/usr/bin/tshark"
MERGECAP = "/usr/bin/mergecap"  # mergecap and capinfos come with tshark (wireshark-common)
CAPINFOS = "/usr/bin/capinfos"

# Preferences that make tshark's view comparable with ours: each fragment on
# its own (we do not reassemble), raw sequence numbers and SACK edges, no
# sequence analysis (it adds nothing we compare and costs time), every
# checksum verified (tshark's default is "unverified"), and no TCP
# reassembly, so that each frame shows only its own segment.
PREFERENCES = {
    "ip.defragment": "FALSE",
    "tcp.relative_sequence_numbers": "FALSE",
    "tcp.analyze_sequence_numbers": "FALSE",
    "ip.check_checksum": "TRUE",
    "tcp.check_checksum": "TRUE",
    "udp.check_checksum": "TRUE",
    "tcp.desegment_tcp_streams": "FALSE",
}

# tshark prints every occurrence of every field: the first occurrence is the
# outer header (an ICMP error quotes a second IP header),
# the whole list serves list fields (VLAN ids, option kinds, SACK edges, DNS
# names). The aggregator is the ASCII unit separator rather than ",", since
# a DNS name or an expert message may hold a comma.
AGGREGATOR = "\x1f"

FIELDS = [
    "frame.cap_len", "frame.protocols",
    "_ws.malformed", "_ws.short", "_ws.expert.severity", "_ws.expert.group", "_ws.expert.message",
    "eth.dst", "eth.src", "eth.type", "vlan.id", "vlan.etype",
    "ieee8021ad.id", "ieee8021ad.svid", "ieee8021ad.cvid",
    "arp.hw.type", "arp.proto.type", "arp.hw.size", "arp.proto.size",
    "arp.opcode", "arp.src.hw_mac", "arp.src.proto_ipv4", "arp.dst.hw_mac", "arp.dst.proto_ipv4",
    "ip.version", "ip.src", "ip.dst", "ip.hdr_len", "ip.dsfield", "ip.len", "ip.id", "ip.flags.df",
    "ip.flags.mf", "ip.frag_offset", "ip.ttl", "ip.proto", "ip.checksum.status", "ip.opt.type",
    "ip.cur_rt",
    "icmp.type", "icmp.code", "icmp.ident", "icmp.seq", "icmp.checksum.status",
    "udp.srcport", "udp.dstport", "udp.length", "udp.checksum.status",
    "tcp.srcport", "tcp.dstport", "tcp.seq_raw", "tcp.ack_raw", "tcp.hdr_len", "tcp.flags",
    "tcp.window_size_value", "tcp.urgent_pointer", "tcp.checksum.status", "tcp.option_kind",
    "tcp.options.mss_val", "tcp.options.wscale.shift", "tcp.options.timestamp.tsval",
    "tcp.options.timestamp.tsecr", "tcp.options.sack_le", "tcp.options.sack_re", "tcp.len",
    "dns.id", "dns.flags.response", "dns.flags.opcode", "dns.flags.authoritative", "dns.flags.truncated",
    "dns.flags.recdesired", "dns.flags.recavail", "dns.flags.rcode", "dns.count.queries",
    "dns.count.answers", "dns.count.auth_rr", "dns.count.add_rr", "dns.qry.name", "dns.qry.type",
    "dns.qry.class", "dns.resp.name", "dns.resp.type", "dns.resp.class", "dns.resp.ttl", "dns.a",
    "dns.aaaa", "dns.cname", "dns.ns", "dns.ptr.domain_name", "dns.resp.len", "dns.mx.preference",
    "dns.soa.serial_number", "dns.rr.udp_payload_size",
]

# proto_checksum_enum_e in Wireshark's epan/proto.h.
CHECKSUM_BAD, CHECKSUM_GOOD, CHECKSUM_UNVERIFIED, CHECKSUM_NOT_PRESENT = 0, 1, 2, 3
# Expert severity and groups (epan/proto.h: PI_WARN, PI_MALFORMED, PI_PROTOCOL).
PI_WARN = 0x00600000
PI_MALFORMED, PI_PROTOCOL = 0x07000000, 0x09000000

DNS_PORT = 53
OPT_TYPE = 41  # EDNS(0) pseudo-record: tshark shows no class or TTL for it
OUR_OPTION_CODES = {"eol": 0, "nop": 1, "mss": 2, "wscale": 3, "sack_perm": 4, "sack": 5, "timestamp": 8}
# Our flag letters, in the order of their bits from 0x01 (RFC 9293 §3.1, RFC 3168 §6.1).
FLAG_LETTERS = "FSRPAUEC"


# ---------------------------------------------------------------------------
# Captures built with Scapy.

class CaptureBuilder:
    """Frames for each decoding path of `dissect`; some values drawn from a seed."""

    MACS = ("02:00:00:00:00:01", "02:00:00:00:00:02")

    def __init__(self, seed):
        self.r = random.Random(seed)
        self.frames = []  # (bytes, wire length)

    def add(self, packet, cut=None):
        """A frame; `cut` keeps that many bytes, as a capture's snapshot length would."""
        data = raw(packet)
        if cut is None:
            self.frames.append((data, len(data)))
        else:
            self.frames.append((data[:cut], len(data)))

    def eth(self):
        return Ether(src=self.MACS[0], dst=self.MACS[1])

    def u32_near_wrap(self):
        return (1 << 32) - 1 - self.r.randrange(5000) if self.r.random() < 0.5 else self.r.randrange(1 << 32)

    def ip(self, **fields):
        base = dict(src="192.0.2.%d" % self.r.randrange(1, 255), dst="198.51.100.%d" % self.r.randrange(1, 255),
                    id=self.r.randrange(65536), ttl=self.r.randrange(1, 256), tos=self.r.randrange(256))
        base.update(fields)
        return IP(**base)

    def build(self):
        self.tags()
        self.arp()
        self.ip_options()
        self.fragments()
        self.tcp_options()
        self.random_tcp(40)
        self.dns()
        self.icmp()
        self.checksums()
        self.truncated()
        self.design_choices()
        return self.frames

    def tags(self):
        payload = self.ip(proto=6) / TCP(sport=40000, dport=443, flags="S", options=[("MSS", 1460)])
        self.add(self.eth() / Dot1Q(vlan=10, prio=3) / payload)
        # QinQ: an 802.1ad S-tag outside a C-tag, and the older 0x8100 twice.
        self.add(self.eth() / Dot1AD(vlan=100) / Dot1Q(vlan=200) / self.ip() / UDP(sport=5000, dport=5001) / b"qinq")
        self.add(self.eth() / Dot1Q(vlan=4094) / Dot1Q(vlan=1) / self.ip() / ICMP(id=7, seq=9))
        self.add(Ether(src=self.MACS[0], dst=self.MACS[1], type=0x9100) / Dot1Q(vlan=77) / self.ip() / ICMP())
        self.add(self.eth() / Dot1AD(vlan=300) / self.ip() / ICMP(type=0, id=1, seq=2))
        self.add(self.eth() / Dot1Q(vlan=12) / ARP(op=1, hwsrc=self.MACS[0], psrc="10.1.1.1", pdst="10.1.1.2"))

    def arp(self):
        self.add(Ether(src=self.MACS[0], dst="ff:ff:ff:ff:ff:ff") /
                 ARP(op=1, hwsrc=self.MACS[0], psrc="10.0.0.1", hwdst="00:00:00:00:00:00", pdst="10.0.0.2"))
        self.add(self.eth() / ARP(op=2, hwsrc=self.MACS[1], psrc="10.0.0.2", hwdst=self.MACS[0], pdst="10.0.0.1"))

    def ip_options(self):
        self.add(self.eth() / self.ip(options=[IPOption_RR(routers=["10.0.0.1", "10.0.0.2"]),
                                               IPOption_Router_Alert()]) / ICMP(id=3, seq=4))
        self.add(self.eth() / self.ip(options=[IPOption_NOP(), IPOption_LSRR(routers=["10.9.9.9"])]) /
                 UDP(sport=7000, dport=7001) / b"lsrr")
        self.add(self.eth() / self.ip(options=[IPOption_Timestamp(flg=0, timestamp=1234)]) /
                 TCP(sport=1, dport=2, flags="A"))
        # A strict source route with hops left: the transport checksum covers
        # the final destination (the route's last address), not the header's.
        self.add(self.eth() / self.ip(options=[IPOption_SSRR(routers=["10.8.8.8", "10.9.9.9"])]) /
                 TCP(sport=3, dport=4, flags="S") / b"ssrr")

    def fragments(self):
        # UDP, TCP and ICMP datagrams cut into fragments: only the first
        # carries the transport header, and none can have its transport
        # checksum verified on its own.
        for upper in (UDP(sport=40001, dport=9999) / (b"u" * 2400),
                      TCP(sport=40002, dport=80, flags="PA", seq=self.u32_near_wrap()) / (b"t" * 2000),
                      ICMP(id=5, seq=6) / (b"i" * 1800)):
            for piece in fragment(self.ip(id=self.r.randrange(65536)) / upper, fragsize=self.r.choice([504, 800, 1000])):
                self.add(self.eth() / piece)
        # A fragment with DF and MF both set, and a lone last fragment.
        self.add(self.eth() / self.ip(flags="DF+MF", proto=17) / UDP(sport=1, dport=2, len=200) / (b"x" * 40))
        self.add(self.eth() / self.ip(frag=100, proto=6) / (b"y" * 30))

    def tcp_options(self):
        seq = self.u32_near_wrap()
        edges = [self.u32_near_wrap() for _ in range(8)]
        lists = [
            [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (self.u32_near_wrap(), 0)), ("NOP", None), ("WScale", 14)],
            [("NOP", None), ("NOP", None), ("SAck", tuple(edges[:2]))],
            [("NOP", None), ("NOP", None), ("SAck", tuple(edges[:6])), ("NOP", None), ("NOP", None),
             ("Timestamp", (1, 2))],
            [("SAck", tuple(edges[:8]))],
            # Kinds nobody defined, MPTCP and TFO: opaque to us, listed by tshark.
            [(254, b"\x12\x34"), (99, b""), (30, b"\x00\x81\x00\x00\x00\x00"), (34, b"\xaa" * 8)],
            # End of list: ours stops listing there, padding after it.
            [("NOP", None), (253, b"\x01\x02"), ("EOL", None), ("NOP", None), ("NOP", None)],
        ]
        for options in lists:
            self.add(self.eth() / self.ip() / TCP(sport=22, dport=40100, seq=seq, ack=self.u32_near_wrap(),
                                                  flags="A", options=options) / b"data")

    def random_tcp(self, count):
        kinds = [("MSS", lambda: self.r.randrange(65536)), ("WScale", lambda: self.r.randrange(15)),
                 ("SAckOK", lambda: b""), ("NOP", lambda: None),
                 ("Timestamp", lambda: (self.u32_near_wrap(), self.u32_near_wrap())),
                 ("SAck", lambda: tuple(self.u32_near_wrap() for _ in range(2 * self.r.randrange(1, 4)))),
                 (self.r.choice([6, 7, 19, 27, 29, 69, 200, 253, 254]), lambda: bytes(self.r.randrange(6)))]
        for _ in range(count):
            options, size = [], 0
            for _ in range(self.r.randrange(6)):
                name, value = self.r.choice(kinds)
                option = (name, value())
                length = len(raw(TCP(options=[option]))) - 20
                if size + length > 40:
                    break
                options.append(option)
                size += length
            segment = TCP(sport=self.r.randrange(1024, 65536), dport=self.r.choice([80, 443, 8080, 22]),
                          seq=self.u32_near_wrap(), ack=self.u32_near_wrap(), flags=self.r.randrange(512),
                          window=self.r.randrange(65536), urgptr=self.r.randrange(65536), options=options)
            payload = bytes(self.r.randrange(256) for _ in range(self.r.randrange(0, 60)))
            ip = self.ip(flags=self.r.choice(["", "DF"]))
            frame = self.eth() / ip / segment / payload
            if self.r.random() < 0.1:
                frame[TCP].chksum = self.r.randrange(65536)
            self.add(frame)

    def dns(self):
        answers = (DNSRR(rrname="www.example.com", type="CNAME", ttl=300, rdata="web.example.com") /
                   DNSRR(rrname="web.example.com", type="A", ttl=60, rdata="192.0.2.80") /
                   DNSRR(rrname="web.example.com", type="AAAA", ttl=60, rdata="2001:db8::80") /
                   DNSRRMX(rrname="example.com", type="MX", ttl=3600, preference=10, exchange="mail.example.com") /
                   DNSRR(rrname="example.com", type="TXT", ttl=5, rdata=b"v=spf1 -all") /
                   DNSRR(rrname="80.2.0.192.in-addr.arpa", type="PTR", ttl=7, rdata="web.example.com") /
                   DNSRR(rrname="example.com", type=65280, ttl=1, rdata=b"\x01\x02\x03"))
        authority = (DNSRR(rrname="example.com", type="NS", ttl=86400, rdata="ns1.example.com") /
                     DNSRRSOA(rrname="example.com", mname="ns1.example.com", rname="admin.example.com",
                              serial=2024010101))
        additional = DNSRR(rrname="ns1.example.com", type="A", ttl=86400, rdata="192.0.2.53") / DNSRROPT(rclass=1232)
        response = DNS(id=self.r.randrange(65536), qr=1, aa=1, rd=1, ra=1, opcode=0, rcode=0,
                       qd=DNSQR(qname="www.example.com", qtype="A"), an=answers, ns=authority, ar=additional)
        query = DNS(id=0x1234, rd=1, qd=DNSQR(qname="www.example.com", qtype="AAAA"))
        udp_to, udp_from = UDP(sport=53000, dport=DNS_PORT), UDP(sport=DNS_PORT, dport=53000)
        self.add(self.eth() / self.ip() / udp_to / query)
        self.add(self.eth() / self.ip() / udp_from / response)
        self.add(self.eth() / self.ip() / udp_from / dns_compress(response))
        # The root name, an NXDOMAIN, and a truncated answer flag.
        self.add(self.eth() / self.ip() / udp_from /
                 DNS(id=9, qr=1, rcode=3, tc=1, qd=DNSQR(qname=".", qtype="NS"),
                     ns=DNSRRSOA(rrname=".", mname="a.root-servers.net", rname="nstld.verisign-grs.com")))
        # A name pointer that points at itself: a loop, an error for both.
        looped = bytearray(raw(DNS(id=10, qr=1, qd=DNSQR(qname="a.example"))))
        looped += b"\xc0" + bytes([len(looped)]) + b"\x00\x01\x00\x01\x00\x00\x00\x10\x00\x04\x7f\x00\x00\x01"
        looped[7] = 1  # one answer
        self.add(self.eth() / self.ip() / udp_from / Raw(bytes(looped)))
        # DNS over TCP: `dissect` decodes DNS only over UDP (tools/dissect.md).
        self.add(self.eth() / self.ip() / TCP(sport=DNS_PORT, dport=53001, flags="PA") /
                 (len(raw(query)).to_bytes(2, "big") + raw(query)))

    def icmp(self):
        quoted_udp = raw(IP(src="198.51.100.7", dst="192.0.2.9", id=77) / UDP(sport=33434, dport=33435) / (b"q" * 20))
        quoted_tcp = raw(IP(src="198.51.100.7", dst="192.0.2.9") / TCP(sport=5555, dport=80, seq=1, flags="S"))
        self.add(self.eth() / self.ip() / ICMP(type=3, code=3) / Raw(quoted_udp[:28]))
        self.add(self.eth() / self.ip() / ICMP(type=11, code=0) / Raw(quoted_tcp))
        self.add(self.eth() / self.ip() / ICMP(type=3, code=4, nexthopmtu=1400) / Raw(quoted_tcp[:28]))
        self.add(self.eth() / self.ip() / ICMP(type=5, code=1, gw="192.0.2.1") / Raw(quoted_udp[:28]))
        self.add(self.eth() / self.ip() / ICMP(type=12, code=0, ptr=20) / Raw(quoted_udp[:28]))
        self.add(self.eth() / self.ip() / ICMP(type=8, id=0xbeef, seq=0xffff) / b"ping")
        self.add(self.eth() / self.ip() / ICMP(type=0, id=1, seq=1) / b"pong")
        self.add(self.eth() / self.ip() / ICMP(type=13, id=2, seq=3, ts_ori=1, ts_rx=2, ts_tx=3))

    def checksums(self):
        self.add(self.eth() / self.ip(chksum=0x1234) / UDP(sport=1000, dport=2000) / b"bad ip checksum")
        self.add(self.eth() / self.ip() / UDP(sport=1000, dport=2000, chksum=0) / b"no udp checksum")
        self.add(self.eth() / self.ip() / UDP(sport=1000, dport=2000, chksum=0xdead) / b"bad udp checksum")
        self.add(self.eth() / self.ip() / TCP(sport=1000, dport=2000, chksum=0xbeef) / b"bad tcp checksum")
        self.add(self.eth() / self.ip() / ICMP(chksum=0x0bad) / b"bad icmp checksum")

    def truncated(self):
        # Cut by the snapshot length (wire length > captured length).
        segment = self.eth() / self.ip() / TCP(sport=3000, dport=80, flags="PA") / (b"z" * 100)
        self.add(segment, cut=14 + 20 + 20 + 10)
        self.add(self.eth() / self.ip() / UDP(sport=3000, dport=4000) / (b"z" * 100), cut=14 + 20 + 8 + 3)
        self.add(self.eth() / self.ip() / ICMP(id=4, seq=5) / (b"p" * 56), cut=14 + 20 + 8 + 6)
        # Cut inside the TCP header: no TCP for either tool.
        self.add(segment, cut=14 + 20 + 12)

    def design_choices(self):
        # Each frame here meets one of the rules in `explain_missing`.
        # TCP options of bad lengths: below 2, past the header, a length byte
        # past the header, and lengths their kinds do not allow.
        for options in (b"\x63\x01\x00\x00", b"\x01\x63\x08\x00", b"\x01\x01\x01\x02",
                        b"\x02\x03\x05\x01", b"\x04\x03\x00\x00", b"\x03\x02\x00\x00",
                        b"\x08\x08" + bytes(6), b"\x05\x0c" + bytes(10), b"\x05\x08" + bytes(6)):
            self.add(self.eth() / self.ip() / TCP(sport=1, dport=2, flags="A", dataofs=5 + len(options) // 4) /
                     Raw(options))
        # Three VLAN tags; an 802.1ad tag inside another one.
        self.add(self.eth() / Dot1Q(vlan=1) / Dot1Q(vlan=2) / Dot1Q(vlan=3) / self.ip() / ICMP())
        self.add(self.eth() / Dot1AD(vlan=1) / Dot1AD(vlan=2) / self.ip() / ICMP())
        # An 802.3 frame (length, then LLC), as spanning tree sends.
        self.add(Ether(src=self.MACS[0], dst="01:80:c2:00:00:00", type=38) / Raw(b"\x42\x42\x03" + bytes(35)))
        # ARP for something other than Ethernet and IPv4 (IPv6 addresses).
        self.add(self.eth() / ARP(ptype=0x86dd, plen=16, psrc=None, pdst=None) / Raw(bytes(20)))


def write_pcap(path, link_type, frames):
    """A classic pcap file; each frame is (captured bytes, length on the wire).

    Written here rather than with Scapy's writers so that the wire length of
    a cut frame is set explicitly (libpcap format, "Packet Record").
    """
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, link_type))
        for index, (data, wire_length) in enumerate(frames):
            out.write(struct.pack("<IIII", index, 0, len(data), wire_length))
            out.write(data)


def build_captures(seed, directory):
    ethernet = os.path.join(directory, "scapy_ethernet.pcap")
    write_pcap(ethernet, 1, CaptureBuilder(seed).build())

    # Raw IPv4 (DLT_RAW): the other link type `dissect` reads.
    r = random.Random(seed + 1)
    raw_ip = os.path.join(directory, "scapy_raw_ip.pcap")
    packets = (
        IP(src="10.0.0.1", dst="10.0.0.2", id=r.randrange(65536)) / ICMP(id=1, seq=1),
        IP(src="10.0.0.2", dst="10.0.0.1") / UDP(sport=DNS_PORT, dport=5300) /
        DNS(id=r.randrange(65536), qr=1, qd=DNSQR(qname="raw.example"), an=DNSRR(rrname="raw.example", rdata="10.0.0.9")),
        IP(src="10.0.0.1", dst="10.0.0.2", options=[IPOption_Router_Alert()]) /
        TCP(sport=r.randrange(65536), dport=80, seq=r.randrange(1 << 32), flags="SEC", options=[("MSS", 536), ("EOL", None)]),
    )
    write_pcap(raw_ip, 101, [(raw(p), len(raw(p))) for p in packets])
    return [ethernet, raw_ip]


# ---------------------------------------------------------------------------
# Running the two tools.

def check_preferences(env):
    """An unknown -o makes tshark fail; say which name this version lacks."""
    listing = subprocess.run([TSHARK, "-G", "defaultprefs"], env=env, capture_output=True, text=True, check=True).stdout
    known = {line.lstrip("#").split(":", 1)[0] for line in listing.splitlines() if ":" in line}
    missing = [name for name in PREFERENCES if name not in known]
    if missing:
        sys.exit("tshark %s lacks the preferences %s" % (TSHARK, ", ".join(missing)))


def run_tshark(path, env):
    command = [TSHARK, "-n", "-r", path, "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a",
               "-E", "aggregator=" + AGGREGATOR, "-E", "quote=n"]
    for name, value in PREFERENCES.items():
        command += ["-o", "%s:%s" % (name, value)]
    for field in FIELDS:
        command += ["-e", field]
    done = subprocess.run(command, env=env, capture_output=True, text=True, errors="backslashreplace")
    if done.returncode != 0:
        raise RuntimeError("tshark failed on %s (%d): %s" % (path, done.returncode, done.stderr.strip()))
    frames = []
    for line in done.stdout.split("\n")[:-1]:
        values = line.split("\t")
        if len(values) != len(FIELDS):
            raise RuntimeError("tshark printed %d columns for %d fields on %s: %r" %
                               (len(values), len(FIELDS), path, line))
        frames.append({f: (v.split(AGGREGATOR) if v else []) for f, v in zip(FIELDS, values)})
    return frames


def run_dissect(dissect, path):
    done = subprocess.run([dissect, path], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError("dissect failed on %s (%d): %s" % (path, done.returncode, done.stderr.strip()))
    return [json.loads(line) for line in done.stdout.splitlines()]


# ---------------------------------------------------------------------------
# Comparison.

def number(text):
    return int(text, 0)


def checksum_status(ours, field):
    """What tshark must say for our `checksum_ok` in `field`."""
    if ours is None:
        return {CHECKSUM_UNVERIFIED}
    if not ours:
        return {CHECKSUM_BAD}
    # tools/dissect.md: a zero UDP checksum (none sent) counts as ok.
    return {CHECKSUM_GOOD, CHECKSUM_NOT_PRESENT} if field.startswith("udp.") else {CHECKSUM_GOOD}


def dns_name(tshark_name):
    # tshark writes the root as "<Root>", the format as ".".
    return "." if tshark_name == "<Root>" else tshark_name


def tshark_layers(ts):
    """Layers of our format that tshark decoded, up to the first ICMP message.

    A walk over frame.protocols ("eth:ethertype:vlan:ethertype:ip:tcp"): it
    stops at the first protocol that our format does not carry on from
    (IPv6, MPLS, IP in IP, an application other than DNS), since nothing
    after it can be in our JSON.
    """
    tokens = ts["frame.protocols"][0].split(":") if ts["frame.protocols"] else []
    layers = []
    i = 0
    if tokens[:1] == ["eth"]:
        layers.append("eth")
        i = 1
        while i < len(tokens) and tokens[i] in ("ethertype", "vlan", "ieee8021ad"):
            if tokens[i] != "ethertype" and "vlan" not in layers:
                layers.append("vlan")
            i += 1
    elif tokens[:1] == ["raw"]:
        i = 1
    else:
        return layers  # a link type `dissect` does not read (tools/dissect.md)
    if i < len(tokens) and tokens[i] == "arp":
        layers.append("arp")
    elif i < len(tokens) and tokens[i] == "ip":
        layers.append("ipv4")
        following = tokens[i + 1] if i + 1 < len(tokens) else None
        if following in ("icmp", "udp", "tcp"):
            layers.append(following)
        if following == "udp" and i + 2 < len(tokens) and tokens[i + 2] == "dns":
            ports = {number(ts["udp.srcport"][0]), number(ts["udp.dstport"][0])}
            # Our format decodes DNS on port 53 only; tshark also on other
            # ports it was told about (mDNS and LLMNR are other protocols).
            if DNS_PORT in ports:
                layers.append("dns")
    return layers


def our_layers(ours):
    layers = [name for name in ("eth", "arp", "ipv4", "icmp", "udp", "tcp", "dns") if name in ours]
    if "eth" in ours and ours["eth"].get("vlan"):
        layers.insert(1, "vlan")
    return layers


def tshark_flags_frame(ts):
    """How tshark itself says that the frame is malformed or cut short, or None.

    Its expert notes about checksums or sequence numbers do not count: they
    say nothing about whether a header could be read.
    """
    if ts["_ws.malformed"]:
        return "tshark: malformed"
    if ts["_ws.short"]:
        return "tshark: " + ts["_ws.short"][0]
    for severity, group, message in zip(ts["_ws.expert.severity"], ts["_ws.expert.group"],
                                        ts["_ws.expert.message"]):
        if number(severity) >= PI_WARN and number(group) in (PI_MALFORMED, PI_PROTOCOL):
            return "tshark: " + message
    return None


def tag_walk(ts):
    """VLAN ids outermost first, and the EtherType after the last tag, or None.

    tshark names an 802.1Q tag `vlan` and an 802.1ad S-tag `ieee8021ad`; the
    latter has no EtherType field, and when it is followed by another S-tag
    it shows both ids as svid and cvid.
    """
    vlan_ids, ad_ids = list(ts["vlan.id"]), list(ts["ieee8021ad.id"])
    svids, cvids = list(ts["ieee8021ad.svid"]), list(ts["ieee8021ad.cvid"])
    vlan_types = list(ts["vlan.etype"])
    ids, last_type = [], number(ts["eth.type"][0]) if ts["eth.type"] else None
    for token in ts["frame.protocols"][0].split(":"):
        if token == "vlan" and vlan_ids:
            ids.append(number(vlan_ids.pop(0)))
            last_type = number(vlan_types.pop(0)) if vlan_types else None
        elif token == "ieee8021ad":
            if ad_ids:
                ids.append(number(ad_ids.pop(0)))
            elif svids:
                ids += [number(svids.pop(0))] + ([number(cvids.pop(0))] if cvids else [])
            # No EtherType field follows an S-tag in tshark; that our type is
            # right there shows in the next layer being decoded by both.
            last_type = None
    return ids, last_type


def explain_missing(layer, ours, ts):
    """Why a layer tshark decoded is absent from our JSON, or None if it should be there.

    Each rule is a documented choice of our format; the JSON must carry the
    error that the rule predicts.
    """
    error = ours.get("error", "")
    if layer in ("eth", "vlan"):
        ids, _ = tag_walk(ts)
        tokens = ts["frame.protocols"][0].split(":")
        # include/pystack/wire/ethernet.hpp, eth::view::checked: at most two
        # tags, an inner one must be 0x8100 (an S-tag in an S-tag, which
        # tshark shows as svid and cvid, is not read), and the type field
        # must be an EtherType, not an 802.3 length (then tshark shows LLC).
        if error.startswith("eth: vlan tags") and len(ids) > 2:
            return "design: more than two VLAN tags"
        if error.startswith("eth: inner vlan tpid") and ts["ieee8021ad.cvid"]:
            return "design: 802.1ad tag inside a tag"
        if error.startswith("eth: ethertype") and "llc" in tokens:
            return "design: 802.3 length instead of an EtherType"
    if layer == "arp":
        # tools/dissect.md: only Ethernet/IPv4 ARP is decoded.
        ethernet_ipv4 = (ts["arp.hw.type"][:1] == ["1"] and number(ts["arp.proto.type"][0]) == 0x0800
                         and ts["arp.hw.size"][:1] == ["6"] and ts["arp.proto.size"][:1] == ["4"])
        if error.startswith("arp:") and not ethernet_ipv4:
            return "design: ARP that is not Ethernet/IPv4"
    if layer == "tcp" and re.match(r"tcp: [a-z ]*option", error):
        # tools/dissect.md and include/pystack/wire/tcp.hpp: an option whose
        # length is below 2, runs past the header, or is not the length its
        # kind has (MSS 4, SACK 2 + 8n, ...) makes the segment an error.
        # tshark notes such an option and goes on by its length byte.
        noted = [m for m in ts["_ws.expert.message"]
                 if "option length" in m or "past end of options" in m]
        if noted:
            return "design: TCP option of a bad length; tshark: " + noted[0]
    if layer == "dns" and error.startswith("dns: name pointer"):
        # tools/dissect.md: a compression loop or a pointer out of the
        # message is an error. tshark shows a placeholder name instead
        # ("<Name contains a pointer that loops>") and goes on.
        if any(n.startswith("<") and n != "<Root>" for n in ts["dns.qry.name"] + ts["dns.resp.name"]):
            return "design: DNS name pointer that loops or points out"
    flagged = tshark_flags_frame(ts)
    if error and flagged:
        return "malformed for both; " + flagged
    return None


class Frame:
    """Comparison of one frame; collects mismatches as text."""

    def __init__(self, capture, ours, ts, context):
        self.capture, self.ours, self.ts, self.context = capture, ours, ts, context
        self.problems, self.notes = [], []

    def where(self):
        return "%s frame %d" % (self.capture, self.ours.get("frame", 0))

    def mismatch(self, field, tshark_value, our_value):
        self.problems.append("%s: %s: tshark %r, dissect %r%s" %
                             (self.where(), field, tshark_value, our_value, self.context))

    def first(self, field):
        values = self.ts[field]
        return values[0] if values else None

    def same(self, field, our_value, convert=number, expected=None):
        """Compares tshark's first occurrence of `field` with our value."""
        text = self.first(field)
        if text is None:
            self.mismatch(field, None, our_value)
            return
        value = convert(text) if expected is None else expected(convert(text))
        if value != our_value:
            self.mismatch(field, text, our_value)

    def same_checksum(self, field, checksum_ok):
        text = self.first(field)
        if checksum_ok is None and text is not None and "ipv4: datagram truncated" in self.ours.get("error", ""):
            # tools/dissect.md: in a datagram shorter than its IPv4 total
            # length the transport checksum is not checked (`null`), while
            # tshark checks what is there when the transport's own length fits.
            if number(text) != CHECKSUM_UNVERIFIED:
                self.notes.append("%s: %s %s, dissect null (design: datagram shorter than its total length)" %
                                  (self.where(), field, text))
            return
        if text is None or number(text) not in checksum_status(checksum_ok, field):
            self.mismatch(field, text, checksum_ok)

    def same_list(self, field, our_values, convert=number):
        values = [convert(v) for v in self.ts[field]]
        if values != list(our_values):
            self.mismatch(field + " (all)", values, list(our_values))

    def compare(self):
        ours, ts = self.ours, self.ts
        self.same("frame.cap_len", ours["len"])
        expected, present = tshark_layers(ts), our_layers(ours)
        for layer in expected:
            if layer in present:
                continue
            reason = explain_missing(layer, ours, ts)
            if reason is None:
                self.mismatch("layer " + layer, ts["frame.protocols"][0], ours.get("error", "(no error)"))
            else:
                self.notes.append("%s: %s missing (%s); dissect: %s; tshark decoded %s" %
                                  (self.where(), layer, reason, ours.get("error"), ts["frame.protocols"][0]))
                break  # what follows a missing layer is missing for the same reason
        for layer in present:
            if layer not in expected:
                self.mismatch("layer " + layer, ts["frame.protocols"][0] if ts["frame.protocols"] else None, "present")
        # VLAN tags are compared with the Ethernet header they belong to.
        for layer in present:
            if layer in expected and layer != "vlan":
                getattr(self, "compare_" + layer)()

    def compare_eth(self):
        eth = self.ours["eth"]
        self.same("eth.dst", eth["dst"], str.lower)
        self.same("eth.src", eth["src"], str.lower)
        ids, last_type = tag_walk(self.ts)
        if ids != eth.get("vlan", []):
            self.mismatch("vlan.id/ieee8021ad.id (all)", ids, eth.get("vlan"))
        if last_type is not None and last_type != eth["type"]:
            self.mismatch("eth.type or last vlan.etype", "0x%04x" % last_type, eth["type"])

    def compare_arp(self):
        arp = self.ours["arp"]
        self.same("arp.opcode", arp["op"])
        self.same("arp.src.hw_mac", arp["sha"], str.lower)
        self.same("arp.src.proto_ipv4", arp["spa"], str)
        self.same("arp.dst.hw_mac", arp["tha"], str.lower)
        self.same("arp.dst.proto_ipv4", arp["tpa"], str)

    def compare_ipv4(self):
        ip = self.ours["ipv4"]
        self.same("ip.src", ip["src"], str)
        # With a source route that has hops left, tshark shows the route's
        # last address as ip.dst (the final destination) and the header's
        # destination as ip.cur_rt; our `dst` is the header's.
        routed = ip["options_len"] > 0 and any(number(t) in (131, 137) for t in self.ts["ip.opt.type"])
        self.same("ip.cur_rt" if routed and self.ts["ip.cur_rt"] else "ip.dst", ip["dst"], str)
        # tshark counts the header length in bytes, our format in words.
        self.same("ip.hdr_len", ip["ihl"] * 4)
        self.same("ip.hdr_len", ip["options_len"], expected=lambda v: v - 20)
        self.same("ip.dsfield", ip["tos"])
        self.same("ip.len", ip["len"])
        self.same("ip.id", ip["id"])
        self.same("ip.flags.df", int(ip["df"]))
        self.same("ip.flags.mf", int(ip["mf"]))
        # tshark 4.0 shows the offset in 8-byte units, as the header holds it.
        self.same("ip.frag_offset", ip["frag"])
        self.same("ip.ttl", ip["ttl"])
        self.same("ip.proto", ip["proto"])
        self.same_checksum("ip.checksum.status", ip["checksum_ok"])

    def compare_icmp(self):
        icmp = self.ours["icmp"]
        self.same("icmp.type", icmp["type"])
        self.same("icmp.code", icmp["code"])
        self.same_checksum("icmp.checksum.status", icmp["checksum_ok"])
        if "id" in icmp:
            self.same("icmp.ident", icmp["id"])
            self.same("icmp.seq", icmp["seq"])
        elif icmp["type"] in (0, 8):
            self.mismatch("icmp.ident", self.first("icmp.ident"), None)

    def whole_datagram(self):
        """The datagram is all here: not a fragment, not cut short."""
        ip = self.ours.get("ipv4")
        return ip is not None and not ip["mf"] and "truncated" not in self.ours.get("error", "")

    def compare_udp(self):
        udp = self.ours["udp"]
        self.same("udp.srcport", udp["sport"])
        self.same("udp.dstport", udp["dport"])
        self.same("udp.length", udp["len"])
        self.same_checksum("udp.checksum.status", udp["checksum_ok"])
        length = number(self.first("udp.length"))
        if self.whole_datagram():
            if self.ours["payload_len"] != length - 8:
                self.mismatch("udp.length - 8 (payload)", length - 8, self.ours["payload_len"])
        elif self.ours["payload_len"] > max(length - 8, 0):
            # A fragment or a cut frame holds at most what the length announces.
            self.mismatch("udp.length - 8 >= payload", length - 8, self.ours["payload_len"])

    def compare_tcp(self):
        tcp = self.ours["tcp"]
        self.same("tcp.srcport", tcp["sport"])
        self.same("tcp.dstport", tcp["dport"])
        self.same("tcp.seq_raw", tcp["seq"])
        self.same("tcp.ack_raw", tcp["ack"])
        self.same("tcp.hdr_len", tcp["off"] * 4)
        # tshark's flags field also has the 4 reserved bits and AccECN's AE
        # (RFC 3540's NS); our format lists the 8 flags of RFC 9293 §3.1.
        flags = sum(1 << FLAG_LETTERS.index(c) for c in tcp["flags"])
        self.same("tcp.flags", flags, expected=lambda v: v & 0xff)
        self.same("tcp.window_size_value", tcp["win"])
        self.same("tcp.urgent_pointer", tcp["urg"])
        self.same_checksum("tcp.checksum.status", tcp["checksum_ok"])
        options = tcp["options"]
        kinds = [OUR_OPTION_CODES.get(o["kind"], o.get("code")) for o in options]
        theirs = [number(k) for k in self.ts["tcp.option_kind"]]
        # tools/dissect.md: our list ends at the first End of Option List.
        # tshark goes on listing each zero byte of the padding after it as
        # one more End of Option List (and stops at a non-zero byte).
        if 0 in theirs:
            end = theirs.index(0)
            if all(k == 0 for k in theirs[end:]):
                theirs = theirs[:end + 1]
        if theirs != kinds:
            self.mismatch("tcp.option_kind (all, up to the first EOL)", theirs, kinds)
        self.same_list("tcp.options.mss_val", [o["value"] for o in options if o["kind"] == "mss"])
        self.same_list("tcp.options.wscale.shift", [o["value"] for o in options if o["kind"] == "wscale"])
        self.same_list("tcp.options.timestamp.tsval", [o["tsval"] for o in options if o["kind"] == "timestamp"])
        self.same_list("tcp.options.timestamp.tsecr", [o["tsecr"] for o in options if o["kind"] == "timestamp"])
        blocks = [b for o in options if o["kind"] == "sack" for b in o["blocks"]]
        self.same_list("tcp.options.sack_le", [b[0] for b in blocks])
        self.same_list("tcp.options.sack_re", [b[1] for b in blocks])
        # tcp.len counts the segment by the IPv4 total length; a frame cut by
        # the snapshot length holds fewer bytes.
        # tshark leaves tcp.len out of a first fragment (more to come).
        length = self.first("tcp.len")
        if length is None:
            if not self.ours["ipv4"]["mf"]:
                self.mismatch("tcp.len", None, self.ours["payload_len"])
        elif "truncated" not in self.ours.get("error", ""):
            self.same("tcp.len", self.ours["payload_len"])
        elif self.ours["payload_len"] > number(length):
            self.mismatch("tcp.len >= payload", length, self.ours["payload_len"])

    def compare_dns(self):
        dns = self.ours["dns"]
        self.same("dns.id", dns["id"])
        self.same("dns.flags.response", int(dns["qr"]))
        self.same("dns.flags.opcode", dns["opcode"])
        self.same("dns.flags.truncated", int(dns["tc"]))
        self.same("dns.flags.recdesired", int(dns["rd"]))
        # tshark shows these three only in responses.
        for field, ours in (("dns.flags.authoritative", dns["aa"]), ("dns.flags.recavail", dns["ra"]),
                            ("dns.flags.rcode", dns["rcode"])):
            if dns["qr"] or self.first(field) is not None:
                self.same(field, int(ours))
        records = dns["answers"] + dns["authorities"] + dns["additionals"]
        self.same("dns.count.queries", len(dns["questions"]))
        self.same("dns.count.answers", len(dns["answers"]))
        self.same("dns.count.auth_rr", len(dns["authorities"]))
        self.same("dns.count.add_rr", len(dns["additionals"]))
        self.same_list("dns.qry.name", [q["name"] for q in dns["questions"]], dns_name)
        self.same_list("dns.qry.type", [q["type"] for q in dns["questions"]])
        self.same_list("dns.qry.class", [q["class"] for q in dns["questions"]])
        self.same_list("dns.resp.name", [r["name"] for r in records], dns_name)
        self.same_list("dns.resp.type", [r["type"] for r in records])
        plain = [r for r in records if r["type"] != OPT_TYPE]
        self.same_list("dns.resp.class", [r["class"] for r in plain])
        self.same_list("dns.resp.ttl", [r["ttl"] for r in plain])
        for field, rtype, convert in (("dns.a", 1, str), ("dns.aaaa", 28, str), ("dns.cname", 5, dns_name),
                                      ("dns.ns", 2, dns_name), ("dns.ptr.domain_name", 12, dns_name)):
            self.same_list(field, [r["data"] for r in records if r["type"] == rtype], convert)
        # Other types come as hex of the RDATA: its length is tshark's data
        # length, and fixed fields can be read from it (RFC 1035 §3.3.9 MX
        # preference first; §3.3.13 SOA serial 20 bytes from the end).
        as_hex = [r for r in records if r["type"] not in (1, 28, 5, 2, 12)]
        self.same_list("dns.mx.preference", [int(r["data"][:4], 16) for r in as_hex if r["type"] == 15])
        self.same_list("dns.soa.serial_number", [int(r["data"][-40:-32], 16) for r in as_hex if r["type"] == 6])
        self.same_list("dns.rr.udp_payload_size", [r["class"] for r in records if r["type"] == OPT_TYPE])
        lengths = [number(v) for v in self.ts["dns.resp.len"]]
        if len(lengths) != len(records):
            self.mismatch("dns.resp.len (all)", lengths, "%d records" % len(records))
            return
        fixed = {1: 4, 28: 16}
        for i, (record, length) in enumerate(zip(records, lengths)):
            ours = fixed.get(record["type"], len(record["data"]) // 2 if record in as_hex else None)
            if ours is not None and ours != length:
                self.mismatch("dns.resp.len of record %d (type %d)" % (i + 1, record["type"]), length, ours)


def tshark_per_capture(paths, scratch, env):
    """tshark's frames for each capture, from a single tshark run.

    tshark takes about a second to start, most of this test's time when run
    once per capture; so the captures are concatenated (mergecap -a, pcapng,
    which keeps each file's link type and FCS length) and the rows split
    again by each file's frame count (capinfos). With the preferences above
    (no reassembly, no sequence analysis) no compared field depends on
    earlier frames, so a file's frames decode as they would alone; only
    expert notes such as ARP's duplicate-address warning can differ, and
    those count only when they say malformed (see tshark_flags_frame).
    """
    merged = os.path.join(scratch, "all_captures.pcapng")
    subprocess.run([MERGECAP, "-a", "-F", "pcapng", "-w", merged] + paths, env=env, check=True)
    table = subprocess.run([CAPINFOS, "-c", "-M", "-T", "-r"] + paths, env=env, capture_output=True, text=True,
                           check=True).stdout
    counts = [int(line.rsplit("\t", 1)[1]) for line in table.splitlines()]
    rows = run_tshark(merged, env)
    if len(counts) != len(paths) or sum(counts) != len(rows):
        raise RuntimeError("capinfos counted %s frames in %d files, tshark decoded %d" % (counts, len(paths), len(rows)))
    per_capture, start = [], 0
    for count in counts:
        per_capture.append(rows[start:start + count])
        start += count
    return per_capture


def compare_capture(label, ours, theirs, context):
    problems, notes = [], []
    if len(ours) != len(theirs):
        problems.append("%s: %d frames from dissect, %d from tshark" % (label, len(ours), len(theirs)))
    for mine, ts in zip(ours, theirs):
        frame = Frame(label, mine, ts, context)
        try:
            frame.compare()
        except Exception as e:  # a frame this script cannot compare must still name itself
            frame.problems.append("%s: comparison failed: %r; dissect %s; tshark %s" %
                                  (frame.where(), e, json.dumps(mine), ts))
        problems += frame.problems
        notes += frame.notes
    return problems, notes


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dissect", required=True)
    parser.add_argument("--captures", nargs="*", default=[])
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", help="write the Scapy captures to this directory and keep them")
    args = parser.parse_args()

    seed = args.seed if args.seed is not None else random.randrange(1 << 31)
    print("seed %d (replay with --seed %d)" % (seed, seed))
    scratch = os.environ.get("TEST_TMPDIR") or tempfile.mkdtemp(prefix="tshark_oracle_")
    env = dict(os.environ, HOME=scratch)  # tshark reads and writes its profile under HOME
    check_preferences(env)

    captures = [(os.path.basename(p), p, "") for p in args.captures]
    generated = build_captures(seed, args.keep or scratch)
    captures += [(os.path.basename(p), p, " [Scapy seed %d]" % seed) for p in generated]
    testdata = os.environ.get("PYSTACK_TESTDATA")
    if testdata and os.path.isdir(testdata):
        found = []
        for root, _, names in os.walk(testdata):
            found += [os.path.join(root, n) for n in names if n.endswith((".pcap", ".pcapng"))]
        captures += [(os.path.relpath(p, testdata), p, "") for p in sorted(found)]
    else:
        print("SKIPPED: tshark comparison of the shared captures needs ../shared/testdata, which is absent "
              "(PYSTACK_TESTDATA is unset or not a folder); the repository's and Scapy's captures still run")

    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        ours = list(pool.map(lambda c: run_dissect(args.dissect, c[1]), captures))
    theirs = tshark_per_capture([c[1] for c in captures], scratch, env)
    total_frames, problems, notes = 0, [], []
    for (label, _, context), mine, ts in zip(captures, ours, theirs):
        found, explained = compare_capture(label, mine, ts, context)
        print("%-50s %4d frames, %d mismatches" % (label, len(mine), len(found)))
        total_frames += len(mine)
        problems += found
        notes += explained
    for note in notes:
        print("allowed: " + note)
    for problem in problems:
        print("MISMATCH: " + problem)
    print("%d captures, %d frames, %d mismatches, %d frames with an allowed difference (seed %d)" %
          (len(captures), total_frames, len(problems), len(notes), seed))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

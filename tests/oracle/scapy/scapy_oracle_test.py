#!/usr/bin/python3
"""Differential test against Scapy: parse and build, on random packets.

Scapy builds several hundred random frames from a seed (Ethernet with 0-2
VLAN tags; ARP; IPv4 with options; TCP with random option lists, UDP, ICMP,
DNS), writes them to a pcap, and is the oracle for three checks:

1. Parse: `dissect` on that pcap must print, frame by frame, exactly the
   fields Scapy reads back from the same bytes (`Ether(raw(p))`), in the
   format of tools/dissect.md (every key, no more, no fewer).
2. Build: `reemit` parses every layer into its repr and emits the frame anew
   into a 0xa5-filled buffer, recomputing lengths and checksums; the bytes
   must equal Scapy's. Scapy computed those lengths and checksums, so
   equality checks ours and theirs at once.
3. DNS writer: `reemit` re-encodes every DNS message from its parsed records
   with dns::writer (its own compression) and wraps it in fresh UDP, IPv4 and
   Ethernet headers; Scapy must read our frame back to the same message, with
   valid IPv4 and UDP lengths and checksums.

Usage (Bazel passes the binaries; add options with --test_arg=...):
  scapy_oracle_test.py --dissect PATH --reemit PATH [--seed N] [--count N] [--show N]
The seed is random unless given, and printed; a failure prints it with the
command that replays it, and keeps the capture, Scapy's view of it
(scapy_view.jsonl) and our re-encoded DNS frames in the test's outputs.
"""

import argparse
import ipaddress
import json
import logging
import os
import random
import shutil
import subprocess
import sys
import tempfile

logging.getLogger("scapy").setLevel(logging.ERROR)

from scapy.all import (  # noqa: E402  (after quietening Scapy's import-time warnings)
    ARP, DNS, DNSQR, DNSRR, DNSRRMX, DNSRRSOA, ICMP, IP, TCP, UDP, Dot1AD, Dot1Q, Ether, NoPayload, Raw,
    RawPcapReader, RawPcapWriter, conf, raw)
from scapy.layers.dns import dns_compress  # noqa: E402
from scapy.layers.inet import (  # noqa: E402
    IPOption_EOL, IPOption_LSRR, IPOption_NOP, IPOption_Router_Alert, IPOption_RR, IPOption_SSRR,
    IPOption_Timestamp, TCPOptions, in4_chksum)
from scapy.utils import checksum as internet_checksum  # noqa: E402

conf.verb = 0

# ---------------------------------------------------------------------------
# Generation. Every random choice comes from one random.Random(seed).


class Generator:
    # TCP option kinds Scapy gives no name to, so that it reads them back as
    # (kind, bytes) like any unknown option; known kinds are drawn by name.
    UNKNOWN_TCP_KINDS = [k for k in range(6, 254) if k not in TCPOptions[0]]
    DNS_TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28}
    # Private-use types (RFC 6895 §3.1) and other numbers Scapy has no layout
    # for, so their RDATA stays raw bytes on both sides.
    UNKNOWN_DNS_TYPES = [65280, 65300, 65534, 4660, 3333]
    LABEL_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"

    def __init__(self, seed):
        self.r = random.Random(seed)

    # -- small values
    def u8(self):
        return self.r.randrange(256)

    def u16(self):
        return self.r.randrange(65536)

    def u32(self):
        # Often near the wrap, where modular arithmetic bugs show.
        pick = self.r.random()
        if pick < 0.25:
            return (1 << 32) - 1 - self.r.randrange(4096)
        if pick < 0.3:
            return self.r.randrange(4096)
        return self.r.randrange(1 << 32)

    def mac(self):
        if self.r.random() < 0.05:
            return "ff:ff:ff:ff:ff:ff"
        return ":".join("%02x" % self.u8() for _ in range(6))

    def ip(self):
        return str(ipaddress.IPv4Address(self.r.randrange(1 << 32)))

    def data(self, low, high):
        return bytes(self.r.randrange(256) for _ in range(self.r.randint(low, high)))

    # -- Ethernet and VLAN tags
    def ethernet(self):
        e = Ether(dst=self.mac(), src=self.mac())
        tags = self.r.choices([0, 1, 2], weights=[55, 25, 20])[0]
        if tags == 0:
            return e
        def tag(cls):
            return cls(prio=self.r.randrange(8), id=self.r.randrange(2), vlan=self.r.randrange(4096))
        if tags == 1:
            return e / tag(Dot1AD if self.r.random() < 0.2 else Dot1Q)
        # 802.1ad S-tag outside a C-tag, or the older 0x8100 in 0x8100.
        outer = Dot1AD if self.r.random() < 0.7 else Dot1Q
        return e / tag(outer) / tag(Dot1Q)

    # -- ARP
    def arp(self):
        op = self.r.choice([1, 2])
        target_mac = "00:00:00:00:00:00" if op == 1 and self.r.random() < 0.7 else self.mac()
        return ARP(op=op, hwsrc=self.mac(), psrc=self.ip(), hwdst=target_mac, pdst=self.ip())

    # -- IPv4
    def ip_options(self):
        """A random, well framed option list of at most 40 bytes padded."""
        options = []
        size = 0
        source_routed = ended = False
        for _ in range(self.r.randint(1, 6)):
            kind = self.r.choice(["nop", "eol", "rr", "ts", "lsrr", "ssrr", "ra"])
            # A source route sets the destination of the transport
            # pseudo-header. One at most, and none after an End of Option
            # List: with two, Scapy takes the IP destination and tcpdump the
            # first route's last hop, and Scapy also reads options past an
            # End of Option List, where tcpdump (and RFC 791) stop.
            if kind in ("lsrr", "ssrr"):
                if source_routed or ended:
                    continue
                source_routed = True
            ended = ended or kind == "eol"
            if kind == "nop":
                o = IPOption_NOP()
            elif kind == "eol":
                o = IPOption_EOL()
            elif kind == "ra":
                o = IPOption_Router_Alert()
            elif kind == "ts":
                if self.r.random() < 0.5:
                    o = IPOption_Timestamp(flg=0, timestamp=self.u32(), pointer=self.r.choice([5, 9]))
                else:
                    o = IPOption_Timestamp(flg=1, internet_address=self.ip(), timestamp=self.u32(),
                                           pointer=self.r.choice([5, 13]))
            else:
                cls = {"rr": IPOption_RR, "lsrr": IPOption_LSRR, "ssrr": IPOption_SSRR}[kind]
                routers = [self.ip() for _ in range(self.r.randint(1, 4))]
                # A source route whose pointer is past its end has been
                # followed to the last hop: each hop recorded itself in the
                # route (RFC 791 §3.1), so the final destination is the
                # header's, and that is what the library (like Linux on
                # receipt) puts in the TCP/UDP pseudo-header. Scapy and
                # tcpdump take the route's last slot whatever the pointer, so
                # they disagree there by design; tests/wire/ipv4_test.cc
                # covers that case. Here routes are still being followed.
                last = len(routers) if kind == "rr" else len(routers) - 1
                o = cls(routers=routers, pointer=4 + 4 * self.r.randint(0, last))
            n = len(raw(o))
            if (size + n + 3) // 4 * 4 > 40:
                break
            options.append(o)
            size += n
        return options

    def ip_header(self, proto, fragment="none"):
        """fragment: "none", "first" (MF, offset 0) or "later" (offset > 0)."""
        header = IP(src=self.ip(), dst=self.ip(), tos=self.u8(), id=self.u16(), ttl=self.u8(), proto=proto)
        # Now and then the reserved flag, which RFC 791 says must be zero but
        # a repr must carry through to re-emit the header as it came.
        flags = 4 if self.r.random() < 0.05 else 0
        if fragment == "none" and self.r.random() < 0.5:
            flags |= 2  # DF
        if fragment == "first":
            flags |= 1  # MF
        header.flags = flags
        if fragment == "later":
            header.frag = self.r.randint(1, 0x1fff)
            if self.r.random() < 0.5:
                header.flags = int(header.flags) | 1
        if self.r.random() < 0.35:
            header.options = self.ip_options()
        return header

    # -- transports
    def ports(self, layer):
        """Ports for which Scapy decodes the payload as Raw, never port 53."""
        while True:
            sport, dport = self.r.randint(1, 65535), self.r.randint(1, 65535)
            if 53 in (sport, dport):
                continue
            if layer(sport=sport, dport=dport).guess_payload_class(b"\x00" * 8) is Raw:
                return sport, dport

    def tcp_options(self):
        options = []
        size = 0
        for _ in range(self.r.randint(0, 8)):
            kind = self.r.choice(["mss", "wscale", "sackok", "ts", "sack", "nop", "nop", "eol", "unknown"])
            if kind == "mss":
                o, n = ("MSS", self.u16()), 4
            elif kind == "wscale":
                o, n = ("WScale", self.r.choice([0, 7, 14, 15, 255])), 3
            elif kind == "sackok":
                o, n = ("SAckOK", b""), 2
            elif kind == "ts":
                o, n = ("Timestamp", (self.u32(), self.u32())), 10
            elif kind == "sack":
                blocks = self.r.randint(1, 4)
                o, n = ("SAck", tuple(self.u32() for _ in range(2 * blocks))), 2 + 8 * blocks
            elif kind == "nop":
                o, n = ("NOP", None), 1
            elif kind == "eol":
                o, n = ("EOL", None), 1
            else:
                payload = self.data(0, 6)
                o, n = (self.r.choice(self.UNKNOWN_TCP_KINDS), payload), 2 + len(payload)
            if size + n > 40:
                continue
            options.append(o)
            size += n
        return options

    def tcp(self):
        sport, dport = self.ports(TCP)
        t = TCP(sport=sport, dport=dport, seq=self.u32(), ack=self.u32(), flags=self.u8(), window=self.u16(),
                urgptr=self.u16(), options=self.tcp_options())
        # Now and then the AE/NS bit and the reserved bits, which a repr
        # must carry through to re-emit the segment.
        if self.r.random() < 0.1:
            t.flags = int(t.flags) | 0x100
        if self.r.random() < 0.1:
            t.reserved = self.r.randrange(1, 8)
        return t / Raw(self.data(0, 200))

    def udp(self):
        sport, dport = self.ports(UDP)
        u = UDP(sport=sport, dport=dport)
        if self.r.random() < 0.2:
            u.chksum = 0  # none sent (RFC 768)
        return u / Raw(self.data(0, 300))

    def icmp(self):
        kind = self.r.choice(["echo", "echo", "unreachable", "exceeded", "timestamp"])
        if kind == "echo":
            return ICMP(type=self.r.choice([0, 8]), id=self.u16(), seq=self.u16()) / Raw(self.data(0, 100))
        if kind == "timestamp":
            return ICMP(type=self.r.choice([13, 14]), id=self.u16(), seq=self.u16(), ts_ori=self.u32(),
                        ts_rx=self.u32(), ts_tx=self.u32())
        # An error quotes the offending datagram's header and the first 8
        # bytes of its data (RFC 792); its total length still counts all.
        inner = self.ip_header(self.r.choice([6, 17])) / (self.tcp() if self.r.random() < 0.5 else self.udp())
        quoted = raw(inner)
        quoted = quoted[:(quoted[0] & 0xf) * 4 + 8]
        if kind == "unreachable":
            code = self.r.randrange(16)
            message = ICMP(type=3, code=code, nexthopmtu=self.u16() if code == 4 else 0)
        else:
            message = ICMP(type=11, code=self.r.randrange(2))
        return message / Raw(quoted)

    # -- DNS
    def dns_name(self):
        if self.r.random() < 0.04:
            return "."
        labels = []
        for _ in range(self.r.randint(1, 4)):
            length = 63 if self.r.random() < 0.03 else self.r.randint(1, 10)
            labels.append("".join(self.r.choice(self.LABEL_CHARS) for _ in range(length)))
        return ".".join(labels)

    def dns_record(self, names):
        owner = self.r.choice(names) if names and self.r.random() < 0.6 else self.dns_name()
        ttl = self.u32()
        kind = self.r.choice(list(self.DNS_TYPES) + ["unknown", "unknown"])
        if kind == "A":
            return DNSRR(rrname=owner, type=1, ttl=ttl, rdata=self.ip())
        if kind == "AAAA":
            words = [self.u16() if self.r.random() < 0.5 else 0 for _ in range(8)]
            if self.r.random() < 0.1:
                words = [0, 0, 0, 0, 0, 0xffff, self.u16(), self.u16()]  # IPv4-mapped
            address = ipaddress.IPv6Address(b"".join(w.to_bytes(2, "big") for w in words))
            return DNSRR(rrname=owner, type=28, ttl=ttl, rdata=str(address))
        if kind in ("CNAME", "NS", "PTR"):
            target = self.r.choice(names) if names and self.r.random() < 0.5 else self.dns_name()
            return DNSRR(rrname=owner, type=self.DNS_TYPES[kind], ttl=ttl, rdata=target)
        if kind == "MX":
            exchange = self.r.choice(names) if names and self.r.random() < 0.5 else self.dns_name()
            return DNSRRMX(rrname=owner, type=15, ttl=ttl, preference=self.u16(), exchange=exchange)
        if kind == "SOA":
            return DNSRRSOA(rrname=owner, type=6, ttl=ttl, mname=self.dns_name(), rname=self.dns_name(),
                            serial=self.u32(), refresh=self.u32(), retry=self.u32(), expire=self.u32(),
                            minimum=self.u32())
        if kind == "TXT":
            strings = [self.data(1, 20) for _ in range(self.r.randint(1, 3))]
            rclass = 1 if self.r.random() < 0.8 else 3  # IN, sometimes CH
            return DNSRR(rrname=owner, type=16, rclass=rclass, ttl=ttl, rdata=strings)
        rclass = self.r.choice([1, 1, 3, 4, 255])
        return DNSRR(rrname=owner, type=self.r.choice(self.UNKNOWN_DNS_TYPES), rclass=rclass, ttl=ttl,
                     rdata=self.data(0, 24))

    def dns(self):
        response = self.r.random() < 0.7
        names = [self.dns_name() for _ in range(self.r.randint(1, 3))]
        questions = None
        for name in names[: self.r.randint(0 if response else 1, len(names))]:
            qtype = self.r.choice(list(self.DNS_TYPES.values()) + [255, 65300])
            qclass = self.r.choice([1, 1, 1, 3, 255])
            q = DNSQR(qname=name, qtype=qtype, qclass=qclass)
            questions = q if questions is None else questions / q
        def section(low, high):
            chain = None
            for _ in range(self.r.randint(low, high) if response else 0):
                rr = self.dns_record(names)
                chain = rr if chain is None else chain / rr
            return chain
        message = DNS(id=self.u16(), qr=int(response), opcode=self.r.choice([0, 0, 0, 1, 2, 4, 5]),
                      aa=self.r.randrange(2), tc=self.r.randrange(2), rd=self.r.randrange(2),
                      ra=self.r.randrange(2), z=self.r.randrange(2), ad=self.r.randrange(2),
                      cd=self.r.randrange(2), rcode=self.r.randrange(6),
                      qd=questions, an=section(0, 4), ns=section(0, 2), ar=section(0, 2))
        if self.r.random() < 0.5:
            compressed = dns_compress(message)
            # Scapy's compressor picks pointer targets by searching the
            # message bytes; keep its output only when Scapy itself reads it
            # back to the same message.
            if dns_summary(DNS(raw(compressed))) == dns_summary(DNS(raw(message))):
                message = compressed
        port = self.r.randint(1024, 65535) if self.r.random() < 0.9 else 53
        sport, dport = (53, port) if response else (port, 53)
        return UDP(sport=sport, dport=dport) / message

    # -- whole frames
    def frame(self):
        kind = self.r.choices(["arp", "tcp", "udp", "icmp", "dns", "fragment"],
                              weights=[8, 34, 18, 15, 18, 7])[0]
        link = self.ethernet()
        if kind == "arp":
            packet = link / self.arp()
        elif kind == "tcp":
            packet = link / self.ip_header(6) / self.tcp()
        elif kind == "udp":
            packet = link / self.ip_header(17) / self.udp()
        elif kind == "icmp":
            packet = link / self.ip_header(1) / self.icmp()
        elif kind == "dns":
            packet = link / self.ip_header(17) / self.dns()
        else:
            proto = self.r.choice([1, 6, 17])
            if self.r.random() < 0.5:
                # A first fragment: the transport header is there, its
                # checksum covers only the bytes present.
                upper = {1: self.icmp, 6: self.tcp, 17: self.udp}[proto]()
                packet = link / self.ip_header(proto, "first") / upper
            else:
                packet = link / self.ip_header(proto, "later") / Raw(self.data(8, 120))
        frame = raw(packet)
        # Link padding after the network packet, as Ethernet adds below 60
        # bytes (zeros) or a sloppy driver leaves (anything).
        if self.r.random() < 0.15:
            if len(frame) < 60 and self.r.random() < 0.7:
                frame += bytes(60 - len(frame))
            else:
                frame += self.data(1, 12)
        return frame


# ---------------------------------------------------------------------------
# Scapy's reading of the bytes, in the dissect format.


def layers_of(chain, count):
    """The first `count` layers of a Scapy chain (qd, an, ns, ar)."""
    out = []
    while chain is not None and not isinstance(chain, NoPayload) and len(out) < count:
        out.append(chain)
        chain = chain.payload
    return out


def own(layer, name):
    """A field of this layer only (getattr would fall through to the payload)."""
    return layer.getfieldval(name) if name in layer.fields else layer.default_fields.get(name)


def name_text(value):
    """Scapy's decoded name ('www.Example.com.') as dissect writes it."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if value in ("", "."):
        return "."
    return value[:-1] if value.endswith(".") else value


def ipv6_text(text):
    """RFC 5952 text. Python's ipaddress follows RFC 5952 except for
    IPv4-mapped addresses before Python 3.13, which RFC 5952 §5 writes with
    the IPv4 part dotted ("::ffff:192.0.2.1")."""
    address = ipaddress.IPv6Address(text)
    if address.ipv4_mapped is not None:
        return "::ffff:" + str(address.ipv4_mapped)
    return address.compressed


def skip_name(message, pos):
    """Past the name at `pos` (labels up to the root octet or a pointer)."""
    while True:
        length = message[pos]
        if length == 0:
            return pos + 1
        if length & 0xC0 == 0xC0:
            return pos + 2
        pos += 1 + length


def record_frames(message, counts):
    """(type, class, ttl, rdata bytes) of every record, read off the message
    itself: Scapy decodes RDATA names through pointers, while dissect's hex is
    of the RDATA bytes as they are in the packet."""
    pos = 12
    for _ in range(counts[0]):
        pos = skip_name(message, pos) + 4
    out = []
    for _ in range(sum(counts[1:])):
        pos = skip_name(message, pos)
        rtype, rclass = int.from_bytes(message[pos:pos + 2], "big"), int.from_bytes(message[pos + 2:pos + 4], "big")
        ttl = int.from_bytes(message[pos + 4:pos + 8], "big")
        length = int.from_bytes(message[pos + 8:pos + 10], "big")
        out.append((rtype, rclass, ttl, bytes(message[pos + 10:pos + 10 + length])))
        pos += 10 + length
    return out


def dns_summary(d):
    """A message as Scapy reads it, names case-folded: for the compressor check."""
    def rr(x):
        fields = {f.name: own(x, f.name) for f in x.fields_desc if f.name not in ("rdlen",)}
        return {k: (v.lower() if isinstance(v, bytes) else v) for k, v in fields.items()}
    return [[rr(x) for x in layers_of(getattr(d, s), getattr(d, c))]
            for s, c in (("qd", "qdcount"), ("an", "ancount"), ("ns", "nscount"), ("ar", "arcount"))]


def expected_dns(d, message):
    counts = (d.qdcount, d.ancount, d.nscount, d.arcount)
    frames = record_frames(message, counts)
    # The one-bit flags are JSON booleans, as every flag in the format is.
    out = {"id": d.id, "qr": bool(d.qr), "opcode": d.opcode, "aa": bool(d.aa), "tc": bool(d.tc),
           "rd": bool(d.rd), "ra": bool(d.ra), "rcode": d.rcode, "questions": [], "answers": [], "authorities": [], "additionals": []}
    for q in layers_of(d.qd, d.qdcount):
        out["questions"].append({"name": name_text(q.qname), "type": q.qtype, "class": q.qclass})
    records = layers_of(d.an, d.ancount) + layers_of(d.ns, d.nscount) + layers_of(d.ar, d.arcount)
    if len(records) != len(frames):
        raise AssertionError("Scapy read %d records, the counts say %d" % (len(records), len(frames)))
    sections = ["answers"] * d.ancount + ["authorities"] * d.nscount + ["additionals"] * d.arcount
    for section, rr, (rtype, rclass, ttl, rdata) in zip(sections, records, frames):
        if (rr.type, rr.rclass, rr.ttl) != (rtype, rclass, ttl):
            raise AssertionError("record framing disagrees with Scapy: %r vs %r" %
                                 ((rr.type, rr.rclass, rr.ttl), (rtype, rclass, ttl)))
        data = rdata.hex()
        if rclass == 1 and rtype == 1:
            data = own(rr, "rdata")
        elif rclass == 1 and rtype == 28:
            data = ipv6_text(own(rr, "rdata"))
        elif rclass == 1 and rtype in (2, 5, 12):
            data = name_text(own(rr, "rdata"))
        out[section].append({"name": name_text(rr.rrname), "type": rtype, "class": rclass, "ttl": ttl,
                             "data": data})
    return out


TCP_LETTERS = "FSRPAUEC"


def expected_tcp_options(options):
    out = []
    for name, value in options:
        if name == "EOL":
            out.append({"kind": "eol"})
            break  # the list ends at the first End of Option List
        if name == "NOP":
            out.append({"kind": "nop"})
        elif name == "MSS":
            out.append({"kind": "mss", "value": value})
        elif name == "WScale":
            out.append({"kind": "wscale", "value": value})
        elif name == "SAckOK":
            out.append({"kind": "sack_perm"})
        elif name == "SAck":
            out.append({"kind": "sack", "blocks": [[value[i], value[i + 1]] for i in range(0, len(value), 2)]})
        elif name == "Timestamp":
            out.append({"kind": "timestamp", "tsval": value[0], "tsecr": value[1]})
        elif isinstance(name, int):
            out.append({"kind": "unknown", "code": name, "len": 2 + len(value)})
        else:
            raise AssertionError("generator made an option Scapy names %r" % name)
    return out


def expected_frame(index, frame):
    p = Ether(frame)
    out = {"frame": index, "len": len(frame)}
    tags = [layer for layer in p.iterpayloads() if isinstance(layer, (Dot1Q, Dot1AD))]
    eth = {"dst": p.dst, "src": p.src, "type": tags[-1].type if tags else p.type}
    if tags:
        eth["vlan"] = [t.vlan for t in tags]
    out["eth"] = eth
    if ARP in p:
        a = p[ARP]
        out["arp"] = {"op": a.op, "sha": a.hwsrc, "spa": a.psrc, "tha": a.hwdst, "tpa": a.pdst}
        return out
    ip = p[IP]
    header_bytes = raw(ip)[:ip.ihl * 4]
    out["ipv4"] = {"src": ip.src, "dst": ip.dst, "ihl": ip.ihl, "tos": ip.tos, "len": ip.len, "id": ip.id,
                   "df": bool(ip.flags.DF), "mf": bool(ip.flags.MF), "frag": ip.frag, "ttl": ip.ttl,
                   "proto": ip.proto, "checksum_ok": internet_checksum(header_bytes) == 0,
                   "options_len": ip.ihl * 4 - 20}
    if ip.frag != 0:
        return out
    # The transport bytes as the total length delimits them.
    segment = raw(ip)[ip.ihl * 4:ip.len]
    def transport_checksum_ok():
        if ip.flags.MF:
            return None  # the rest of the datagram is elsewhere
        return in4_chksum(ip.proto, ip.copy(), segment) == 0
    if ip.proto == 1:
        m = ip[ICMP]
        icmp = {"type": m.type, "code": m.code,
                "checksum_ok": None if ip.flags.MF else internet_checksum(segment) == 0}
        if m.type in (0, 8):
            icmp["id"], icmp["seq"] = m.id, m.seq
        out["icmp"] = icmp
    elif ip.proto == 17:
        u = ip[UDP]
        ok = True if u.chksum == 0 else transport_checksum_ok()
        out["udp"] = {"sport": u.sport, "dport": u.dport, "len": u.len, "checksum_ok": ok}
        out["payload_len"] = u.len - 8
        if 53 in (u.sport, u.dport):
            out["dns"] = expected_dns(u[DNS], segment[8:u.len])
    elif ip.proto == 6:
        t = ip[TCP]
        bits = int(t.flags)
        out["tcp"] = {"sport": t.sport, "dport": t.dport, "seq": t.seq, "ack": t.ack, "off": t.dataofs,
                      "flags": "".join(c for i, c in enumerate(TCP_LETTERS) if bits & (1 << i)),
                      "win": t.window, "urg": t.urgptr, "checksum_ok": transport_checksum_ok(),
                      "options": expected_tcp_options(t.options)}
        out["payload_len"] = len(segment) - t.dataofs * 4
    return out


# ---------------------------------------------------------------------------
# Comparison.


def differences(expected, actual, path=""):
    """Every place the two JSON values differ, as (path, expected, actual).
    Types matter: 1 is not true, and 1 is not 1.0."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = []
        for key in sorted(set(expected) | set(actual)):
            where = "%s.%s" % (path, key) if path else key
            if key not in actual:
                out.append((where, expected[key], "<missing>"))
            elif key not in expected:
                out.append((where, "<absent>", actual[key]))
            else:
                out.extend(differences(expected[key], actual[key], where))
        return out
    if isinstance(expected, list) and isinstance(actual, list):
        out = []
        if len(expected) != len(actual):
            out.append((path + ".length", len(expected), len(actual)))
        for i, (e, a) in enumerate(zip(expected, actual)):
            out.extend(differences(e, a, "%s[%d]" % (path, i)))
        return out
    # bool is a subclass of int in Python, so compare the types first.
    if type(expected) is not type(actual) and not (expected is None or actual is None):
        if not (isinstance(expected, int) and isinstance(actual, int) and
                isinstance(expected, bool) == isinstance(actual, bool)):
            return [(path, expected, actual)]
    return [] if expected == actual else [(path, expected, actual)]


# ---------------------------------------------------------------------------
# The DNS writer check: Scapy reads our re-encoded message.


def dns_writer_differences(original, ours):
    """Compare Scapy's reading of our rebuilt frame with its reading of the
    original. Names are compared without regard to case: dns::writer
    compresses a name into an earlier one that matches it without regard to
    case, and the name then reads with the earlier one's case (dns.hpp says
    so; DNS names compare that way, RFC 4343 §3)."""
    out = []
    p, q = Ether(original), Ether(ours)
    ip_p, ip_q = p[IP], q[IP]
    for field in ("src", "dst", "tos", "id", "flags", "frag", "ttl", "proto", "options"):
        if getattr(ip_p, field) != getattr(ip_q, field):
            out.append(("ipv4." + field, getattr(ip_p, field), getattr(ip_q, field)))
    # Both frames end with the original's link padding, which Scapy counts
    # in raw(IP); the datagram is what lies between header and padding.
    link_header = len(original) - len(raw(ip_p))
    padding = original[link_header + ip_p.len:]
    if not ours.endswith(padding):
        out.append(("link padding", padding.hex(), ours[len(ours) - len(padding):].hex()))
    our_ip = ours[link_header:len(ours) - len(padding)]
    if ip_q.len != len(our_ip):
        out.append(("ipv4.len", len(our_ip), ip_q.len))
    if internet_checksum(our_ip[:ip_q.ihl * 4]) != 0:
        out.append(("ipv4.checksum", "valid", hex(ip_q.chksum)))
    u = q[UDP]
    if u.len != len(our_ip) - ip_q.ihl * 4:
        out.append(("udp.len", len(our_ip) - ip_q.ihl * 4, u.len))
    if (u.sport, u.dport) != (p[UDP].sport, p[UDP].dport):
        out.append(("udp.ports", (p[UDP].sport, p[UDP].dport), (u.sport, u.dport)))
    if (p[UDP].chksum == 0) != (u.chksum == 0):
        out.append(("udp.checksum_sent", p[UDP].chksum != 0, u.chksum != 0))
    if u.chksum != 0 and in4_chksum(17, ip_q.copy(), our_ip[ip_q.ihl * 4:]) != 0:
        out.append(("udp.checksum", "valid", hex(u.chksum)))

    d, e = p[DNS], q[DNS]
    for field in ("id", "qr", "opcode", "aa", "tc", "rd", "ra", "z", "ad", "cd", "rcode",
                  "qdcount", "ancount", "nscount", "arcount"):
        if getattr(d, field) != getattr(e, field):
            out.append(("dns." + field, getattr(d, field), getattr(e, field)))
    if out:
        return out
    theirs = raw(p[UDP])[8:p[UDP].len]
    mine = raw(u)[8:u.len]
    counts = (d.qdcount, d.ancount, d.nscount, d.arcount)
    for i, (a, b) in enumerate(zip(layers_of(d.qd, d.qdcount), layers_of(e.qd, e.qdcount))):
        if name_text(a.qname).lower() != name_text(b.qname).lower() or (a.qtype, a.qclass) != (b.qtype, b.qclass):
            out.append(("dns.questions[%d]" % i, (a.qname, a.qtype, a.qclass), (b.qname, b.qtype, b.qclass)))
    ra = layers_of(d.an, d.ancount) + layers_of(d.ns, d.nscount) + layers_of(d.ar, d.arcount)
    rb = layers_of(e.an, e.ancount) + layers_of(e.ns, e.nscount) + layers_of(e.ar, e.arcount)
    fa, fb = record_frames(theirs, counts), record_frames(mine, counts)
    for i, (a, b, framed_a, framed_b) in enumerate(zip(ra, rb, fa, fb)):
        where = "dns.records[%d]" % i
        if name_text(a.rrname).lower() != name_text(b.rrname).lower():
            out.append((where + ".name", a.rrname, b.rrname))
        if (a.type, a.rclass, a.ttl) != (b.type, b.rclass, b.ttl):
            out.append((where, (a.type, a.rclass, a.ttl), (b.type, b.rclass, b.ttl)))
            continue
        if type(a) is not type(b):
            out.append((where + ".layer", type(a).__name__, type(b).__name__))
            continue
        for f in a.fields_desc:
            if f.name in ("rrname", "type", "rclass", "ttl", "rdlen"):
                continue
            va, vb = own(a, f.name), own(b, f.name)
            if a.rclass == 1 and a.type == 16:
                va, vb = framed_a[3], framed_b[3]  # TXT: the character-strings byte for byte
            elif isinstance(va, (bytes, str)) and f.name in ("rdata", "exchange", "mname", "rname") and \
                    (a.type in (2, 5, 12, 15, 6)):
                va, vb = name_text(va).lower(), name_text(vb).lower()
            elif a.type not in (1, 28, 2, 5, 6, 12, 15, 16) or a.rclass != 1:
                va, vb = framed_a[3], framed_b[3]
            if va != vb:
                out.append(("%s.%s" % (where, f.name), va, vb))
    return out


# ---------------------------------------------------------------------------


def run(binary, *args):
    result = subprocess.run([binary, *args], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise SystemExit("FAIL: %s exited %d: %s" % (binary, result.returncode, result.stderr.strip()))
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dissect", required=True)
    parser.add_argument("--reemit", required=True)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--count", type=int, default=720)
    parser.add_argument("--show", type=int, default=40, help="differences to print (default 40)")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    print("seed %d, %d frames" % (seed, args.count))
    count = "" if args.count == 720 else " --count %d" % args.count
    replay = ("replay: bazel test //tests/oracle/scapy:scapy_oracle_test --test_arg=--seed=%d%s "
              "(or run tests/oracle/scapy/scapy_oracle_test.py --seed %d%s --dissect bazel-bin/tools/dissect "
              "--reemit bazel-bin/tests/oracle/scapy/reemit)" %
              (seed, count.replace(" --", " --test_arg=--").replace("count ", "count="), seed, count))

    workdir = os.environ.get("TEST_TMPDIR") or tempfile.mkdtemp(prefix="scapy_oracle_")
    capture = os.path.join(workdir, "scapy_frames.pcap")
    dns_capture = os.path.join(workdir, "reencoded_dns.pcap")
    generator = Generator(seed)
    frames = [generator.frame() for _ in range(args.count)]
    writer = RawPcapWriter(capture, linktype=1, sync=True)
    for frame in frames:
        writer.write(frame)
    writer.close()
    expected = [expected_frame(i + 1, f) for i, f in enumerate(frames)]
    with open(os.path.join(workdir, "scapy_view.jsonl"), "w") as view:
        for e in expected:
            view.write(json.dumps(e) + "\n")

    failures = []

    def fail(check, frame, field, want, got):
        failures.append("%s: frame %s: %s: Scapy %s, ours %s" %
                        (check, frame, field, json.dumps(want, default=repr), json.dumps(got, default=repr)))

    # 1. Parse.
    dissected = run(args.dissect, capture)
    if len(dissected) != len(frames):
        fail("dissect", "-", "frame count", len(frames), len(dissected))
    for e, a in zip(expected, dissected):
        for field, want, got in differences(e, a):
            fail("dissect", e["frame"], field, want, got)

    # 2. Build, and 3. the DNS writer.
    rebuilt = run(args.reemit, capture, dns_capture)
    if len(rebuilt) != len(frames):
        fail("reemit", "-", "frame count", len(frames), len(rebuilt))
    dns_frames = [bytes(data) for data, _ in RawPcapReader(dns_capture)] if os.path.exists(dns_capture) else []
    dns_checked = 0
    for line in rebuilt:
        index = line.get("frame")
        if line.get("ok") is not True:
            if "error" in line:
                fail("reemit", index, "parse", "a frame", line["error"])
            else:
                fail("reemit", index, "byte %s (of %s, ours %s)" % (line.get("offset"), line.get("expected_len"),
                                                                    line.get("actual_len")),
                     line.get("expected"), line.get("actual"))
        is_dns = "dns" in expected[index - 1] if 0 < index <= len(expected) else False
        if is_dns:
            if "dns_error" in line:
                fail("dns writer", index, "re-encode", "a message", line["dns_error"])
            elif "dns_out" not in line:
                fail("dns writer", index, "dns_out", "a re-encoded frame", None)
            else:
                ours = dns_frames[line["dns_out"] - 1]
                for field, want, got in dns_writer_differences(frames[index - 1], ours):
                    fail("dns writer", index, field, want, got)
                dns_checked += 1

    kinds = {}
    for e in expected:
        for key in ("arp", "tcp", "udp", "icmp", "dns"):
            if key in e:
                kinds[key] = kinds.get(key, 0) + 1
        if "ipv4" in e and (e["ipv4"]["frag"] or e["ipv4"]["mf"]):
            kinds["fragment"] = kinds.get("fragment", 0) + 1
    print("frames by layer: %s; DNS messages re-encoded and read back: %d" %
          (", ".join("%s %d" % kv for kv in sorted(kinds.items())), dns_checked))

    if failures:
        for line in failures[:args.show]:
            print(line)
        if len(failures) > args.show:
            print("... and %d more" % (len(failures) - args.show))
        print("FAIL: %d differences with Scapy, seed %d" % (len(failures), seed))
        print(replay)
        keep = os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR")
        if keep:
            for name in ("scapy_frames.pcap", "scapy_view.jsonl", "reencoded_dns.pcap"):
                if os.path.exists(os.path.join(workdir, name)):
                    shutil.copy(os.path.join(workdir, name), keep)
            print("capture and Scapy's view kept in %s" % keep)
        return 1
    print("PASS: %d frames parse and rebuild as Scapy has them (seed %d)" % (len(frames), seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())

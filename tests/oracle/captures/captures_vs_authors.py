#!/usr/bin/python3
"""Runs //tools:dissect over captures that other projects wrote and checks
every frame against what those projects' own tools and tests say about it.

Two oracles, neither of them ours:

* tcpdump's test suite (../shared/testdata/tcpdump): each capture comes with
  the text tcpdump printed for it (`-# -n -r X.pcap` plus the flags listed in
  testdata/README.md). That text is parsed here, line by line, into what each
  frame must decode to: addresses, ports, TCP flags, sequence and
  acknowledgement numbers, window, options, lengths, IPv4 header fields and
  checksum verdicts where -v prints them, ARP and DNS fields, and the frames
  tcpdump calls invalid or truncated. Nothing is copied by hand from the .out
  files: the expectations are the parse of them.
* PcapPlusPlus's test suite (../shared/testdata/pcapplusplus): the values its
  Packet++ and Pcap++ tests assert for the same packets, written out below
  with the test and assertion each one comes from.

Run by Bazel as an sh_test with the dissect binary as its argument; it reads
the captures from $PYSTACK_TESTDATA and says that it skipped when the folder
is absent. A failure names the capture, the frame, the field, the expected
value and where that expectation came from, and our value.
"""

import json
import os
import re
import subprocess
import sys

MOD32 = 1 << 32


# --------------------------------------------------------------------------
# Where things are

def find_inputs():
    if len(sys.argv) != 2:
        sys.exit("usage: captures_vs_authors.py PATH/TO/dissect")
    dissect = os.path.abspath(sys.argv[1])
    testdata = os.environ.get("PYSTACK_TESTDATA", "")
    if not testdata or not os.path.isdir(testdata):
        print("SKIPPED: captures_vs_authors needs ../shared/testdata, which is absent "
              "(PYSTACK_TESTDATA is %s)" % (repr(testdata) if testdata else "unset"))
        sys.exit(0)
    return dissect, testdata


# --------------------------------------------------------------------------
# Failures are collected, not raised, so that one run shows all of them.

class OracleNotUnderstood(Exception):
    """The authors' text holds something this parser does not know: a test
    that skipped it would silently check less than it claims."""


MISSING = object()


def get(obj, path):
    for part in path.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return MISSING
        obj = obj[part]
    return obj


def same(expected, actual):
    # JSON true must not pass for 1, nor 0 for false.
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if expected is None or actual is None:
        return expected is actual
    return expected == actual


class Report:
    def __init__(self):
        self.failures = []
        self.checks = 0

    def fail(self, where, what):
        self.failures.append("%s: %s" % (where, what))

    def eq(self, where, obj, path, expected, source):
        self.checks += 1
        actual = get(obj, path)
        if actual is MISSING:
            self.fail(where, "%s missing; expected %r (%s)" % (path, expected, source))
        elif not same(expected, actual):
            self.fail(where, "%s is %r; expected %r (%s)" % (path, actual, expected, source))

    def true(self, where, condition, what):
        self.checks += 1
        if not condition:
            self.fail(where, what)

    def absent(self, where, obj, key, source):
        self.checks += 1
        if key in obj:
            self.fail(where, "%s present (%r); expected absent (%s)" % (key, obj[key], source))

    def error_at(self, where, obj, layers, source, numbers=()):
        """An `error` naming one of `layers` ("tcp" in "tcp: data offset ...")
        and, when given, quoting the numbers the oracle's own message quotes."""
        self.checks += 1
        error = obj.get("error")
        if not isinstance(error, str):
            self.fail(where, "no error; expected one from %s (%s)" % ("/".join(layers), source))
            return
        layer = error.split(":", 1)[0]
        if layer not in layers:
            self.fail(where, "error %r is at layer %s; expected %s (%s)" % (error, layer, "/".join(layers), source))
        said = set(re.findall(r"\d+", error))
        for n in numbers:
            if str(n) not in said:
                self.fail(where, "error %r does not say %s (%s)" % (error, n, source))

    def no_error(self, where, obj, source):
        self.checks += 1
        if "error" in obj:
            self.fail(where, "unexpected error %r (%s)" % (obj["error"], source))


# --------------------------------------------------------------------------
# Running dissect and reading the capture's own record headers

def capture_records(path):
    """(captured length, length on the wire) of every record, read by Scapy,
    which does not share a line of code with libpcap or with us."""
    from scapy.utils import RawPcapNgReader, RawPcapReader
    with open(path, "rb") as f:
        magic = f.read(4)
    reader = RawPcapNgReader if magic == b"\x0a\x0d\x0d\x0a" else RawPcapReader
    r = reader(path)
    try:
        return [(len(data), meta.wirelen) for data, meta in r]
    finally:
        r.close()


def run_dissect(dissect, path, report):
    """Runs dissect, checks the things every capture must satisfy (exit 0, one
    JSON object per frame, frames numbered from 1, `len` the captured length)
    and returns the objects."""
    name = os.path.basename(path)
    proc = subprocess.run([dissect, path], capture_output=True, timeout=60)
    report.true(name, proc.returncode == 0,
                "dissect exited %d (stderr %r)" % (proc.returncode, proc.stderr.decode(errors="replace")[-300:]))
    frames = []
    for number, line in enumerate(proc.stdout.decode().splitlines(), 1):
        try:
            obj = json.loads(line)
        except ValueError as e:
            report.fail("%s line %d" % (name, number), "not JSON (%s): %r" % (e, line[:200]))
            continue
        report.true("%s line %d" % (name, number), isinstance(obj, dict) and obj.get("frame") == number,
                    "expected frame %d, got %r" % (number, line[:200]))
        frames.append(obj)
    records = capture_records(path)
    report.true(name, len(frames) == len(records),
                "dissect printed %d frames; the capture holds %d (read by Scapy)" % (len(frames), len(records)))
    for obj, (caplen, _) in zip(frames, records):
        report.eq("%s frame %s" % (name, obj.get("frame")), obj, "len", caplen, "captured length, read by Scapy")
    return frames, records


def link_header_size(obj):
    vlans = get(obj, "eth.vlan")
    return 14 + 4 * (len(vlans) if isinstance(vlans, list) else 0)


# --------------------------------------------------------------------------
# testdata/README.md: which .out goes with which capture, and which flags
# made it. Parsed rather than repeated, so that the table stays the authority.

def readme_table(testdata):
    rows = {}
    section = None
    with open(os.path.join(testdata, "README.md")) as f:
        for line in f:
            if line.startswith("## "):
                section = line[3:].split()[0].rstrip("/")
                continue
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if section != "tcpdump" or len(cells) != 4 or not cells[0].endswith(".pcap"):
                continue
            capture, oracle, flags, _ = cells
            if oracle == "same name .out":
                oracle = capture[: -len(".pcap")] + ".out"
            rows[capture] = (oracle, flags.split())
    return rows


# --------------------------------------------------------------------------
# tcpdump's text, frame by frame

FRAME_LINE = re.compile(r"^\s*(\d+)  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ (.*)$")
HEX_LINE = re.compile(r"^\t0x([0-9a-f]{4}):  ([0-9a-f ]+)$")


def split_frames(text):
    """Frame number -> {"lines": [text after the timestamp, continuation lines
    (-v prints the transport on a second line, indented by four spaces)],
    "hex": bytes of -x}. Lines indented by a tab are application payload
    (HTTP text) that dissect does not decode."""
    frames = {}
    current = None
    for line in text.splitlines():
        m = FRAME_LINE.match(line)
        if m:
            number = int(m.group(1))
            if number in frames:
                raise OracleNotUnderstood("frame %d printed twice" % number)
            current = frames[number] = {"lines": [m.group(2)], "hex": bytearray()}
            continue
        if current is None:
            if line.strip():
                raise OracleNotUnderstood("text before the first frame: %r" % line)
            continue
        h = HEX_LINE.match(line)
        if h:
            if int(h.group(1), 16) != len(current["hex"]):
                raise OracleNotUnderstood("hex dump offsets out of order: %r" % line)
            current["hex"] += bytes.fromhex(h.group(2).replace(" ", ""))
        elif line.startswith("    "):
            current["lines"].append(line.strip())
        elif not line.startswith("\t"):
            raise OracleNotUnderstood("line not understood: %r" % line)
    return frames


# tcpdump's TCP flag letters (print-tcp.c tcp_flag_values) and ours
# (FSRPAUEC). tcpdump's 'e' is the AE bit (RFC 3540's NS, AccECN's AE), which
# the dissect format does not carry.
TCPDUMP_FLAGS = {"F": "F", "S": "S", "R": "R", "P": "P", ".": "A", "U": "U", "E": "E", "W": "C", "e": None}


def our_flags(tcpdump_flags):
    if tcpdump_flags == "none":
        return ""
    letters = set()
    for c in tcpdump_flags:
        if c not in TCPDUMP_FLAGS:
            raise OracleNotUnderstood("TCP flag letter %r" % c)
        if TCPDUMP_FLAGS[c]:
            letters.add(TCPDUMP_FLAGS[c])
    return "".join(c for c in "FSRPAUEC" if c in letters)


def split_top_level(text, sep=","):
    """Splits at `sep` outside brackets and braces (mptcp prints
    "flags [AH] csum {0x..,0x..}" inside the option list)."""
    parts, depth, start = [], 0, 0
    for i, c in enumerate(text):
        if c in "[{(":
            depth += 1
        elif c in "]})":
            depth -= 1
        elif c == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def bracketed(text, start):
    """The text between text[start] == '[' and its matching ']', and the index
    after it."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] in "[{":
            depth += 1
        elif text[i] in "]}":
            depth -= 1
            if depth == 0:
                return text[start + 1:i], i + 1
    raise OracleNotUnderstood("unbalanced brackets in %r" % text)


def parse_tcp_option(token):
    """One entry of tcpdump's "options [...]" as a dict in the dissect format;
    `len` None where tcpdump's text does not say it, sack blocks still in
    tcpdump's relative numbering (resolved later)."""
    t = token.strip()
    if t in ("nop", "eol"):
        return {"kind": t}
    if t == "sackOK":
        return {"kind": "sack_perm"}
    m = re.fullmatch(r"mss (\d+)", t)
    if m:
        return {"kind": "mss", "value": int(m.group(1))}
    m = re.fullmatch(r"wscale (\d+)", t)
    if m:
        return {"kind": "wscale", "value": int(m.group(1))}
    m = re.fullmatch(r"TS val (\d+) ecr (\d+)", t)
    if m:
        return {"kind": "timestamp", "tsval": int(m.group(1)), "tsecr": int(m.group(2))}
    m = re.fullmatch(r"sack (\d+) ((?:\{\d+:\d+\})*)", t)
    if m:
        blocks = [[int(a), int(b)] for a, b in re.findall(r"\{(\d+):(\d+)\}", m.group(2))]
        if len(blocks) != int(m.group(1)):
            raise OracleNotUnderstood("sack count in %r" % t)
        return {"kind": "sack", "blocks": blocks}
    # Kinds the dissect format lists as "unknown": the code is the kind, the
    # length the option's total length where tcpdump's text gives it away.
    m = re.fullmatch(r"mptcp (\d+)\b.*", t)  # RFC 8684, kind 30; tcpdump prints its length first
    if m:
        return {"kind": "unknown", "code": 30, "len": int(m.group(1))}
    m = re.fullmatch(r"(exp-)?tfo (cookiereq|cookie ([0-9a-f]+))", t)  # RFC 7413: kind 34, or 254 + magic 0xF989
    if m:
        cookie = len(m.group(3)) // 2 if m.group(3) else 0
        if m.group(1):
            return {"kind": "unknown", "code": 254, "len": 4 + cookie}
        return {"kind": "unknown", "code": 34, "len": 2 + cookie}
    m = re.fullmatch(r"exp-[0-9a-f]{4}", t)  # RFC 6994 experiment with an ExID tcpdump does not know
    if m:
        return {"kind": "unknown", "code": 254, "len": None}
    m = re.fullmatch(r"unknown-(\d+)(?: ([0-9a-f]+))?", t)
    if m:
        return {"kind": "unknown", "code": int(m.group(1)),
                "len": 2 + len(m.group(2)) // 2 if m.group(2) else None}
    raise OracleNotUnderstood("TCP option %r" % t)


def parse_tcp(rest):
    """tcpdump's TCP text after "src > dst: ", in print-tcp.c's order."""
    tcp = {}
    m = re.match(r"Flags \[([^\]]*)\]", rest)
    if not m:
        raise OracleNotUnderstood("TCP text %r" % rest)
    tcp["flags"] = our_flags(m.group(1))
    pos = m.end()
    fields = [
        ("cksum", re.compile(r", cksum 0x[0-9a-f]{4}(?: \((correct|incorrect -> 0x[0-9a-f]{4})\))?")),
        ("seq", re.compile(r", seq (\d+)(?::(\d+))?")),
        ("ack", re.compile(r", ack (\d+)")),
        ("win", re.compile(r", win (\d+)")),
        ("urg", re.compile(r", urg (\d+)")),
    ]
    for name, pattern in fields:
        m = pattern.match(rest, pos)
        if not m:
            continue
        pos = m.end()
        if name == "cksum":
            verdict = m.group(1)
            tcp["checksum_ok"] = None if verdict is None else verdict == "correct"
        elif name == "seq":
            tcp["seq"] = int(m.group(1))
            tcp["seq_end"] = int(m.group(2)) if m.group(2) else None
        else:
            tcp[name] = int(m.group(1))
    if rest.startswith(", options [", pos):
        inside, pos = bracketed(rest, pos + len(", options "))
        tcp["options"] = [parse_tcp_option(t) for t in split_top_level(inside)]
    else:
        tcp["options"] = []
    m = re.compile(r", length (\d+)").match(rest, pos)
    if not m:
        raise OracleNotUnderstood("TCP text after %r: %r" % (rest[:pos], rest[pos:]))
    tcp["length"] = int(m.group(1))
    tcp["tail"] = rest[m.end():]
    return tcp


DNS_TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28}
DNS_RCODES = {"FormErr": 1, "ServFail": 2, "NXDomain": 3, "NotImp": 4, "Refused": 5}


def parse_dns(text):
    """print-domain.c ns_print without -v: a query is
    "ID[+][%] [..an][..n][..au] TYPE? NAME. (LEN)", a response
    "ID[ RCODE][*][-][|][$] AN/NS/AR ANSWER, ANSWER (LEN)"."""
    m = re.fullmatch(r"(\d+)((?: [A-Z][A-Za-z]+)?)(\*?)(-?)(\|?)(\$?)(?: \[(\d+)q\])? (\d+)/(\d+)/(\d+)(.*) \((\d+)\)", text)
    if m:
        rcode = m.group(2).strip()
        if rcode and rcode not in DNS_RCODES:
            raise OracleNotUnderstood("DNS rcode %r" % rcode)
        answers = []
        for item in split_top_level(m.group(11)) if m.group(11).strip() else []:
            a = re.fullmatch(r" ?(A|AAAA) (\S+)", item) or re.fullmatch(r" ?(CNAME|NS|PTR) (\S+)\.", item)
            if not a:
                raise OracleNotUnderstood("DNS answer %r" % item)
            answers.append((DNS_TYPES[a.group(1)], a.group(2)))
        return {
            "qr": True, "rcode": DNS_RCODES.get(rcode, 0), "aa": m.group(3) == "*", "ra": m.group(4) != "-",
            "tc": m.group(5) == "|", "questions": int(m.group(7) or 1),
            "counts": (int(m.group(8)), int(m.group(9)), int(m.group(10))),
            "answer_data": answers, "length": int(m.group(12)), "id": int(m.group(1)),
        }
    m = re.fullmatch(r"(\d+)(\+?)(%?)((?: \[\d+(?:an|n|au|q)\])*) ([A-Z0-9]+)\? (\S+) \((\d+)\)", text)
    if m:
        counts = {k: int(v) for v, k in re.findall(r"\[(\d+)(an|n|au|q)\]", m.group(4))}
        if m.group(5) not in DNS_TYPES:
            raise OracleNotUnderstood("DNS question type %r" % m.group(5))
        name = m.group(6)
        return {
            "qr": False, "rd": m.group(2) == "+", "questions": counts.get("q", 1),
            "counts": (counts.get("an", 0), counts.get("n", 0), counts.get("au", 0)),
            "question": (name[:-1] if name.endswith(".") and name != "." else name, DNS_TYPES[m.group(5)], 1),
            "length": int(m.group(7)), "id": int(m.group(1)),
        }
    raise OracleNotUnderstood("DNS text %r" % text)


ENDPOINTS = re.compile(r"^(\d+\.\d+\.\d+\.\d+)\.(\d+) > (\d+\.\d+\.\d+\.\d+)\.(\d+): (.*)$")


def parse_transport(line, proto):
    m = ENDPOINTS.match(line)
    if not m:
        raise OracleNotUnderstood("transport line %r" % line)
    t = {"src": m.group(1), "sport": int(m.group(2)), "dst": m.group(3), "dport": int(m.group(4))}
    rest = m.group(5).strip()
    trunc = re.search(r"\[\|(\w+)\]", rest)
    t["truncated_in"] = trunc.group(1) if trunc else None
    if rest.startswith("Flags ["):
        t["proto"] = 6
        t["tcp"] = parse_tcp(rest)
    elif trunc and rest == trunc.group(0):
        # Cut before tcpdump could print anything past the ports.
        t["proto"] = {"tcp": 6, "udp": 17}[trunc.group(1)]
    elif 53 in (t["sport"], t["dport"]) and proto in (None, 17):
        t["proto"] = 17
        t["dns"] = parse_dns(rest)
    else:
        raise OracleNotUnderstood("transport text %r" % rest)
    return t


def parse_ip_header(text):
    """-v's "(tos 0x0, ttl 64, id 0, offset 0, flags [DF], proto TCP (6),
    length 60[, bad cksum X (->Y)!])" (print-ip.c)."""
    def field(pattern):
        m = re.search(pattern, text)
        if not m:
            raise OracleNotUnderstood("IPv4 header text %r lacks %s" % (text, pattern))
        return m.group(1)
    flags = field(r"\bflags \[([^\]]*)\]")
    for f in flags.split(", "):
        if f not in ("none", "DF", "+", "rsvd"):
            raise OracleNotUnderstood("IPv4 flag %r" % f)
    if "options (" in text:
        raise OracleNotUnderstood("IPv4 options in %r" % text)
    offset = int(field(r"\boffset (\d+)"))
    return {
        "tos": int(field(r"\btos (0x[0-9a-f]+)"), 16),
        "ttl": int(field(r"\bttl (\d+)")),
        "id": int(field(r"\bid (\d+)")),
        "frag": offset // 8,
        "df": "DF" in flags.split(", "),
        "mf": "+" in flags.split(", "),
        "proto": int(field(r"\bproto \S+ \((\d+)\)")),
        "len": int(field(r"\blength (\d+)")),
        "checksum_ok": re.search(r"\bbad cksum [0-9a-f]+ \(->[0-9a-f]+\)!", text) is None,
        "options_len": 0,
    }


def parse_arp(text):
    """print-arp.c: "[HRD (len N), PRO (len N), ]Request who-has TPA[ (THA)]
    tell SPA, length N" or "... Reply SPA is-at SHA, length N"."""
    arp = {"ethernet": True}
    m = re.match(r"(Unknown Hardware \((\d+)\)|Ethernet) \(len (\d+)\), IPv4 \(len 4\), ", text)
    if m:
        arp["ethernet"] = m.group(1) == "Ethernet" and m.group(3) == "6"
        arp["hardware_type"] = int(m.group(2)) if m.group(2) else 1
        text = text[m.end():]
    m = re.fullmatch(r"Request who-has (\S+)(?: \(([0-9a-f:]+)\))? tell (\S+), length (\d+)", text)
    if m:
        arp.update(op=1, tpa=m.group(1), tha=m.group(2) or "00:00:00:00:00:00", spa=m.group(3), length=int(m.group(4)))
        return arp
    m = re.fullmatch(r"Reply (\S+) is-at ([0-9a-f:]+), length (\d+)", text)
    if m:
        arp.update(op=2, spa=m.group(1), sha=m.group(2), length=int(m.group(3)))
        return arp
    raise OracleNotUnderstood("ARP text %r" % text)


def parse_frame(lines, verbose):
    first = lines[0]
    if first.startswith("ARP, "):
        return {"eth_type": 0x0806, "arp": parse_arp(first[len("ARP, "):])}
    if not first.startswith("IP"):
        raise OracleNotUnderstood("frame text %r" % first)
    exp = {"eth_type": 0x0800, "ip": None, "invalid": None, "transport": None}
    rest = first[2:]
    m = re.match(r" +\[([^\]]*)\] \(invalid\)", rest)
    if m:
        exp["invalid"] = m.group(1)
        rest = rest[m.end():]
    if verbose:
        if rest:
            m = re.fullmatch(r" \((.*)\)", rest)
            if not m:
                raise OracleNotUnderstood("IPv4 -v text %r" % rest)
            exp["ip"] = parse_ip_header(m.group(1))
        transport_lines = lines[1:]
    else:
        transport_lines = [rest.strip()] if rest.strip() else []
        transport_lines += lines[1:]
    if len(transport_lines) > 1:
        raise OracleNotUnderstood("more lines than expected: %r" % lines)
    if transport_lines:
        exp["transport"] = parse_transport(transport_lines[0], exp["ip"]["proto"] if exp["ip"] else None)
    return exp


# --------------------------------------------------------------------------
# tcpdump's relative sequence numbers

class RelativeSequence:
    """Without -S, tcpdump prints TCP sequence and acknowledgement numbers
    relative to the first segment with ACK it sees of a connection (or to a
    SYN-ACK), and absolute before that (print-tcp.c, the tcp_seq_hash table).
    This repeats that bookkeeping over our absolute values so that they can be
    compared with what tcpdump printed:

    - Only segments with ACK take part. The first one of a connection, and
      any with SYN, (re)start it: the base of the sender's numbers is its seq,
      the base of the receiver's is ack - 1, and the segment prints absolute.
    - Later segments print seq - base(sender), ack - base(receiver).
    - SACK blocks count from base(receiver), absolute without ACK.
    - tcpdump files each connection under its two ends in a fixed order
      (address bytes, then port) and keeps the bases as that order's
      "seq"/"ack"; this does the same, which matters for a segment sent from
      an address and port to themselves."""

    def __init__(self):
        self.table = {}

    def __call__(self, src, sport, dst, dport, flags, seq, ack):
        if "A" not in flags:
            return seq, ack, 0
        a = (bytes(int(x) for x in src.split(".")), sport)
        b = (bytes(int(x) for x in dst.split(".")), dport)
        rev = a > b
        key = (b, a) if rev else (a, b)
        entry = self.table.get(key)
        if entry is None or "S" in flags:
            entry = {"seq": (ack - 1) % MOD32, "ack": seq} if rev else {"seq": seq, "ack": (ack - 1) % MOD32}
            self.table[key] = entry
            return seq, ack, entry["seq"] if rev else entry["ack"]
        if rev:
            return (seq - entry["ack"]) % MOD32, (ack - entry["seq"]) % MOD32, entry["seq"]
        return (seq - entry["seq"]) % MOD32, (ack - entry["ack"]) % MOD32, entry["ack"]


# --------------------------------------------------------------------------
# Checking our frames against tcpdump's

def check_tcp(report, where, obj, t, relative, source):
    tcp = t["tcp"]
    ours = obj.get("tcp")
    if not isinstance(ours, dict):
        report.fail(where, "no tcp; tcpdump decoded %r (%s)" % (tcp, source))
        return
    report.eq(where, obj, "tcp.sport", t["sport"], source)
    report.eq(where, obj, "tcp.dport", t["dport"], source)
    report.eq(where, obj, "tcp.flags", tcp["flags"], source)
    if "win" in tcp:
        report.eq(where, obj, "tcp.win", tcp["win"], source)
    else:
        report.fail(where, "tcpdump printed no window: %r" % tcp)
    if "urg" in tcp:
        report.eq(where, obj, "tcp.urg", tcp["urg"], source)
    if "checksum_ok" in tcp:
        report.eq(where, obj, "tcp.checksum_ok", tcp["checksum_ok"], source + " (-v checksum verdict)")

    seq, ack = ours.get("seq"), ours.get("ack")
    if not isinstance(seq, int) or not isinstance(ack, int):
        report.fail(where, "tcp seq/ack not integers: %r %r" % (seq, ack))
        return
    rel_seq, rel_ack, sack_base = relative(t["src"], t["sport"], t["dst"], t["dport"], ours.get("flags", ""), seq, ack)
    if "seq" in tcp:
        report.true(where, rel_seq == tcp["seq"],
                    "tcp.seq %d is %d in tcpdump's relative numbering; tcpdump printed %d (%s)"
                    % (seq, rel_seq, tcp["seq"], source))
        if tcp["seq_end"] is not None:
            report.true(where, (tcp["seq"] + tcp["length"]) % MOD32 == tcp["seq_end"],
                        "tcpdump's seq %d:%d does not span its length %d" % (tcp["seq"], tcp["seq_end"], tcp["length"]))
    if "ack" in tcp:
        report.true(where, rel_ack == tcp["ack"],
                    "tcp.ack %d is %d in tcpdump's relative numbering; tcpdump printed %d (%s)"
                    % (ack, rel_ack, tcp["ack"], source))
    else:
        report.true(where, "A" not in ours.get("flags", ""), "tcpdump printed no ack, yet our flags have A")

    expected_options = []
    for o in tcp["options"]:
        o = dict(o)
        if o["kind"] == "sack":
            o["blocks"] = [[(l + sack_base) % MOD32, (r + sack_base) % MOD32] for l, r in o["blocks"]]
        expected_options.append(o)
    got = ours.get("options")
    ok = isinstance(got, list) and len(got) == len(expected_options)
    if ok:
        for e, g in zip(expected_options, got):
            if e.get("len", 0) is None:  # tcpdump did not say the length
                e = {k: v for k, v in e.items() if k != "len"}
                g = {k: v for k, v in g.items() if k != "len"} if isinstance(g, dict) else g
            ok = ok and e == g
    report.true(where, ok, "tcp.options %s; expected %s (%s)" % (json.dumps(got), json.dumps(expected_options), source))

    # tcpdump's "length" is what the IPv4 total length leaves after the TCP
    # header; payload_len is what the capture holds of it.
    ip = obj.get("ipv4", {})
    if all(isinstance(x, int) for x in (ip.get("len"), ip.get("ihl"), ours.get("off"))):
        report.true(where, ip["len"] - 4 * ip["ihl"] - 4 * ours["off"] == tcp["length"],
                    "ipv4.len %d - 4*ihl %d - 4*off %d is not tcpdump's length %d (%s)"
                    % (ip["len"], ip["ihl"], ours["off"], tcp["length"], source))
    if "error" not in obj:
        report.eq(where, obj, "payload_len", tcp["length"], source)
    elif all(isinstance(x, int) for x in (obj.get("len"), ip.get("ihl"), ours.get("off"))):
        # Cut short by the capture: what is left of tcpdump's length.
        present = obj["len"] - link_header_size(obj) - 4 * ip["ihl"] - 4 * ours["off"]
        report.eq(where, obj, "payload_len", min(tcp["length"], present),
                  source + " length %d, of which the capture holds %d" % (tcp["length"], present))


def check_dns(report, where, obj, dns, source):
    if not isinstance(obj.get("dns"), dict):
        report.fail(where, "no dns; tcpdump decoded %r (%s)" % (dns, source))
        return
    report.eq(where, obj, "dns.id", dns["id"], source)
    report.eq(where, obj, "dns.qr", dns["qr"], source)
    report.eq(where, obj, "dns.opcode", 0, source + " (no opcode printed: QUERY)")
    for flag in ("rd", "aa", "ra", "tc"):
        if flag in dns:
            report.eq(where, obj, "dns." + flag, dns[flag], source)
    if "rcode" in dns:
        report.eq(where, obj, "dns.rcode", dns["rcode"], source)
    questions = get(obj, "dns.questions")
    report.true(where, isinstance(questions, list) and len(questions) == dns["questions"],
                "dns.questions %r; tcpdump counts %d (%s)" % (questions, dns["questions"], source))
    if "question" in dns and isinstance(questions, list) and questions:
        name, qtype, qclass = dns["question"]
        report.eq(where, obj, "dns.questions", [{"name": name, "type": qtype, "class": qclass}], source)
    for section, count in zip(("answers", "authorities", "additionals"), dns["counts"]):
        records = get(obj, "dns." + section)
        report.true(where, isinstance(records, list) and len(records) == count,
                    "dns.%s has %s records; tcpdump counts %d (%s)"
                    % (section, len(records) if isinstance(records, list) else records, count, source))
    if "answer_data" in dns:
        answers = get(obj, "dns.answers")
        got = [(a.get("type"), a.get("data")) for a in answers] if isinstance(answers, list) else answers
        report.true(where, got == dns["answer_data"],
                    "dns.answers (type, data) %r; tcpdump printed %r (%s)" % (got, dns["answer_data"], source))
    report.eq(where, obj, "payload_len", dns["length"], source + " (DNS message length)")


def check_print_x_hex(report, where, obj, raw, source):
    """-x dumps the packet from the IPv4 header on: the header fields read
    straight from the authors' bytes (RFC 791 §3.1, RFC 793 §3.1 layouts)."""
    if len(raw) < 20:
        report.fail(where, "hex dump too short")
        return
    ihl = raw[0] & 0xF
    flags_frag = int.from_bytes(raw[6:8], "big")
    for path, value in [
        ("ipv4.ihl", ihl), ("ipv4.tos", raw[1]), ("ipv4.len", int.from_bytes(raw[2:4], "big")),
        ("ipv4.id", int.from_bytes(raw[4:6], "big")), ("ipv4.df", bool(flags_frag & 0x4000)),
        ("ipv4.mf", bool(flags_frag & 0x2000)), ("ipv4.frag", flags_frag & 0x1FFF), ("ipv4.ttl", raw[8]),
        ("ipv4.proto", raw[9]), ("ipv4.src", ".".join(map(str, raw[12:16]))),
        ("ipv4.dst", ".".join(map(str, raw[16:20]))), ("ipv4.options_len", 4 * ihl - 20),
    ]:
        report.eq(where, obj, path, value, source + " hex dump")
    t = raw[4 * ihl:]
    if raw[9] == 6 and len(t) >= 20:
        for path, value in [
            ("tcp.seq", int.from_bytes(t[4:8], "big")), ("tcp.ack", int.from_bytes(t[8:12], "big")),
            ("tcp.off", t[12] >> 4), ("tcp.win", int.from_bytes(t[14:16], "big")),
            ("tcp.urg", int.from_bytes(t[18:20], "big")),
        ]:
            report.eq(where, obj, path, value, source + " hex dump")
    report.true(where, len(raw) == get(obj, "ipv4.len"),
                "the hex dump holds %d bytes, ipv4.len says %r" % (len(raw), get(obj, "ipv4.len")))


def check_tcpdump_capture(report, dissect, testdata, capture, oracle, flags):
    source = "tcpdump %s" % oracle
    path = os.path.join(testdata, "tcpdump", capture)
    frames, records = run_dissect(dissect, path, report)
    with open(os.path.join(testdata, "tcpdump", oracle)) as f:
        printed = split_frames(f.read())
    report.true(capture, sorted(printed) == list(range(1, len(frames) + 1)),
                "tcpdump printed frames %s, dissect %d" % (sorted(printed)[:5], len(frames)))
    verbose = "-v" in flags
    relative = RelativeSequence()
    for obj, (caplen, wirelen) in zip(frames, records):
        n = obj["frame"]
        where = "%s frame %d" % (capture, n)
        if n not in printed:
            continue
        exp = parse_frame(printed[n]["lines"], verbose)
        report.eq(where, obj, "eth.type", exp["eth_type"], source + " (the line starts with %s)"
                  % ("ARP" if exp["eth_type"] == 0x0806 else "IP"))
        if "arp" in exp:
            check_arp(report, where, obj, exp["arp"], wirelen, source)
            continue
        check_ip(report, where, obj, exp, caplen, relative, source)
        if printed[n]["hex"]:
            check_print_x_hex(report, where, obj, printed[n]["hex"], source)


def check_arp(report, where, obj, arp, wirelen, source):
    # "length N" is the frame's length on the wire after the link header
    # (print-ether.c passes it on): this also pins the number of VLAN tags.
    report.true(where, wirelen - link_header_size(obj) == arp["length"],
                "wire length %d minus the %d-byte link header is not tcpdump's ARP length %d (%s)"
                % (wirelen, link_header_size(obj), arp["length"], source))
    if not arp["ethernet"]:
        # dissect's format carries Ethernet/IPv4 ARP only; other hardware
        # types are a typed error naming the type tcpdump names.
        report.absent(where, obj, "arp", source + ": hardware type %d is not Ethernet" % arp["hardware_type"])
        report.error_at(where, obj, ["arp"], source, numbers=[arp["hardware_type"]])
        return
    report.no_error(where, obj, source)
    for key in ("op", "sha", "spa", "tha", "tpa"):
        if key in arp:
            report.eq(where, obj, "arp." + key, arp[key], source)


def check_ip(report, where, obj, exp, caplen, relative, source):
    t = exp["transport"]
    if exp["invalid"] is not None:
        # tcpdump's own message, e.g. "header length 16 < 20": ours must be
        # an ipv4 error quoting the same numbers.
        report.error_at(where, obj, ["ipv4"], source + " says [%s] (invalid)" % exp["invalid"],
                        numbers=re.findall(r"\d+", exp["invalid"]))
        if exp["ip"] is None:
            report.absent(where, obj, "ipv4", source + ": tcpdump decoded no IPv4 field")
    elif t is None or t["truncated_in"] is None:
        report.no_error(where, obj, source)
    if exp["ip"] is not None:
        for key, value in exp["ip"].items():
            report.eq(where, obj, "ipv4." + key, value, source + " (-v IPv4 header)")
    if t is None:
        return
    report.eq(where, obj, "ipv4.src", t["src"], source)
    report.eq(where, obj, "ipv4.dst", t["dst"], source)
    report.eq(where, obj, "ipv4.proto", t["proto"], source)
    layer = {6: "tcp", 17: "udp"}[t["proto"]]
    if t["truncated_in"] is not None:
        # "[|tcp]": the capture ends inside that layer. dissect reports the
        # datagram cut short of its total length (the format's rule) or the
        # layer itself; either way there is an error.
        report.error_at(where, obj, ["ipv4", t["truncated_in"]], source + " [|%s]" % t["truncated_in"])
        if str(obj.get("error", "")).startswith("ipv4:"):
            report.true(where, "truncated" in obj["error"],
                        "error %r is not the datagram's truncation (%s [|%s])"
                        % (obj["error"], source, t["truncated_in"]))
        present = caplen - link_header_size(obj) - 4 * (get(obj, "ipv4.ihl") or 5)
        header = 20 if layer == "tcp" else 8
        if layer not in obj:
            report.true(where, present < header,
                        "no %s key, yet %d bytes of its %d-byte header are captured (%s [|%s])"
                        % (layer, present, header, source, t["truncated_in"]))
        else:
            report.eq(where, obj, layer + ".sport", t["sport"], source)
            report.eq(where, obj, layer + ".dport", t["dport"], source)
    if "tcp" in t:
        check_tcp(report, where, obj, t, relative, source)
        if 53 in (t["sport"], t["dport"]):
            report.absent(where, obj, "dns", "dissect format: DNS is decoded from UDP only")
    if "dns" in t:
        report.eq(where, obj, "udp.sport", t["sport"], source)
        report.eq(where, obj, "udp.dport", t["dport"], source)
        check_dns(report, where, obj, t["dns"], source)


# --------------------------------------------------------------------------
# PcapPlusPlus: the values its own tests assert for these packets
#
# PcapPlusPlus's tests read most packets from hex resources
# (Tests/Packet++Test/PacketExamples/*.dat) that hold the same bytes as the
# frames of these captures. Which frame is which resource is stated per
# frame, with the bytes that tie them. Its tests read raw header fields on a
# little-endian host, so a 16-bit field it asserts as 0x3bd7 is 0xd73b on the
# wire; where that matters the comment says so.

def pcpp_expectations():
    exp = {}

    def add(capture, frame, path, value, source):
        exp.setdefault(capture, []).append((frame, path, value, source))

    # IPv4Tests.cpp, IPv4FragmentationTest, over IPv4Frag1/2/3.dat (the three
    # frames in order; same bytes). getFragmentOffset() is in bytes, ours in
    # 8-byte units: 1480 / 8 = 185, 2960 / 8 = 370.
    t = "IPv4Tests.cpp IPv4FragmentationTest"
    add("IPv4Frag.pcap", 1, "ipv4.frag", 0, t + ": getFragmentOffset() == 0")
    add("IPv4Frag.pcap", 1, "ipv4.mf", True, t + ": (getFragmentFlags() & PCPP_IP_MORE_FRAGMENTS) != 0")
    add("IPv4Frag.pcap", 2, "ipv4.frag", 1480 // 8, t + ": getFragmentOffset() == 1480")
    add("IPv4Frag.pcap", 2, "ipv4.mf", True, t + ": (getFragmentFlags() & PCPP_IP_MORE_FRAGMENTS) != 0")
    add("IPv4Frag.pcap", 3, "ipv4.frag", 2960 // 8, t + ": getFragmentOffset() == 2960")
    add("IPv4Frag.pcap", 3, "ipv4.mf", False, t + ": getFragmentFlags() == 0")
    add("IPv4Frag.pcap", 3, "ipv4.df", False, t + ": getFragmentFlags() == 0")
    for frame in (1, 2, 3):
        add("IPv4Frag.pcap", frame, "ipv4.id", 40073, "testdata/README.md: one UDP datagram in 3 fragments, id 40073")
    # The dissect format decodes the transport of a first fragment only, with
    # its checksum unknowable (PcapPlusPlus stops at a generic payload for all
    # three; the format goes one step further for the first).
    add("IPv4Frag.pcap", 1, "udp.checksum_ok", None, "dissect format: first fragment with more to come")
    add("IPv4Frag.pcap", 2, "!udp", None, "dissect format: not a first fragment")
    add("IPv4Frag.pcap", 3, "!udp", None, "dissect format: not a first fragment")

    # IPv4Tests.cpp, IPv4OptionsParsingTest, over IPv4Option1..7.dat, frames
    # 1..7 in order (their first option bytes: 86 16 commercial security,
    # 44 28 timestamp, 94 04 router alert, 07 27 record route, 44 24
    # timestamp, 01 89 NOP + strict source route, 01 83 NOP + loose source
    # route, as the test's option types say). getHeaderLen() is in bytes.
    t = "IPv4Tests.cpp IPv4OptionsParsingTest"
    for frame, header_len in enumerate([44, 60, 24, 60, 56, 28, 28], 1):
        add("ipv4-options.pcap", frame, "ipv4.ihl", header_len // 4,
            t + ": IPv4Option%d getHeaderLen() == %d" % (frame, header_len))
        add("ipv4-options.pcap", frame, "ipv4.options_len", header_len - 20,
            t + ": IPv4Option%d getHeaderLen() == %d, less the fixed 20" % (frame, header_len))
        add("ipv4-options.pcap", frame, "!error", None, t + ": IPv4Option%d parses (PTF_ASSERT_NOT_NULL(ipLayer))" % frame)

    # TcpTests.cpp, TcpPacketWithOptionsParsing, over TcpPacketWithOptions.dat
    # (the one frame).
    t = "TcpTests.cpp TcpPacketWithOptionsParsing"
    c = "TcpPacketWithOptions.pcap"
    add(c, 1, "tcp.sport", 44147, t + ": getSrcPort() == 44147")
    add(c, 1, "tcp.dport", 80, t + ": getDstPort() == 80")
    add(c, 1, "~tcp.flags has A", True, t + ": ackFlag == 1")
    add(c, 1, "~tcp.flags has P", True, t + ": pshFlag == 1")
    add(c, 1, "~tcp.flags has S", False, t + ": synFlag == 0")
    add(c, 1, "tcp.urg", 0, t + ": urgentPointer == 0")
    add(c, 1, "tcp.options",
        [{"kind": "nop"}, {"kind": "nop"}, {"kind": "timestamp", "tsval": 195102, "tsecr": 3555729271}],
        t + ': getTcpOptionCount() == 3, options ["Nop","Nop","Timestamp"], timestamp value '
        "htobe32(195102) and echo reply htobe32(3555729271UL)")

    # TcpTests.cpp, TcpMalformedPacketParsing, over tcp-malformed1.dat (both
    # frames hold its bytes): an IPv4 layer and no TCP layer.
    t = "TcpTests.cpp TcpMalformedPacketParsing"
    for frame in (1, 2):
        add("tcp-malformed.pcap", frame, "?ipv4", None, t + ": getLayerOfType<IPv4Layer>() not null")
        add("tcp-malformed.pcap", frame, "!tcp", None, t + ": getLayerOfType<TcpLayer>() null")
        add("tcp-malformed.pcap", frame, "error@tcp", None, t + ": the TCP header is not usable")

    # EthAndArpTests.cpp, EthAndArpPacketParsing, over ArpResponsePacket.dat.
    t = "EthAndArpTests.cpp EthAndArpPacketParsing"
    c = "ArpResponsePacket.pcap"
    add(c, 1, "eth.src", "30:46:9a:23:fb:fa", t + ": getSourceMac() == 30:46:9a:23:fb:fa")
    add(c, 1, "eth.dst", "6c:f0:49:b2:de:6e", t + ": getDestMac() == 6c:f0:49:b2:de:6e")
    add(c, 1, "eth.type", 0x0806, t + ": etherType == PCPP_ETHERTYPE_ARP")
    add(c, 1, "arp.op", 2, t + ": opcode == ARP_REPLY")
    add(c, 1, "arp.spa", "10.0.0.138", t + ": getSenderIpAddr() == 10.0.0.138")
    add(c, 1, "arp.tha", "6c:f0:49:b2:de:6e", t + ": getTargetMacAddress() == 6c:f0:49:b2:de:6e")

    # EthAndArpTests.cpp, ArpPacketCreation: builds Ethernet 6c:f0:49:b2:de:6e
    # -> ff:ff:ff:ff:ff:ff and ArpLayer(ARP_REQUEST, 6c:f0:49:b2:de:6e, ...,
    # 10.0.0.1, 10.0.0.138), asserts 42 bytes and compares them byte for
    # byte with ArpRequestPacket.dat (the frame), whose target hardware
    # address bytes are zero.
    t = "EthAndArpTests.cpp ArpPacketCreation"
    c = "ArpRequestPacket.pcap"
    add(c, 1, "len", 42, t + ": getRawDataLen() == 42")
    add(c, 1, "eth.src", "6c:f0:49:b2:de:6e", t + ": EthLayer source")
    add(c, 1, "eth.dst", "ff:ff:ff:ff:ff:ff", t + ": EthLayer destination")
    add(c, 1, "eth.type", 0x0806, t + ": PCPP_ETHERTYPE_ARP")
    add(c, 1, "arp.op", 1, t + ": ARP_REQUEST")
    add(c, 1, "arp.sha", "6c:f0:49:b2:de:6e", t + ": sender MAC")
    add(c, 1, "arp.spa", "10.0.0.1", t + ": sender IP 10.0.0.1")
    add(c, 1, "arp.tpa", "10.0.0.138", t + ": target IP 10.0.0.138")
    add(c, 1, "arp.tha", "00:00:00:00:00:00", t + ": PTF_ASSERT_BUF_COMPARE with ArpRequestPacket.dat")

    # IcmpTests.cpp, IcmpParsingTest, over fifteen resources that are the
    # fifteen frames of IcmpPackets.pcap. Types are the test's
    # isMessageOfType() (RFC 792 / 950 / 1256 numbers).
    t = "IcmpTests.cpp IcmpParsingTest"
    c = "IcmpPackets.pcap"
    icmp = [
        # frame, resource, type, code or None, what ties the frame to it
        (1, "IcmpRouterSol.dat", 10, None, "checksum bytes f5 ff, asserted as 0xfff5"),
        (2, "IcmpRedirect.dat", 5, None, "gateway 10.2.99.98, quoted source 10.2.10.2"),
        (3, "IcmpRouterAdv1.dat", 9, None, "router 192.168.144.2, lifetime 200 (same bytes as the .dat)"),
        (4, "IcmpRouterAdv2.dat", 9, None, "router 14.80.84.66"),
        (5, "IcmpTimeExceededUdp.dat", 11, None, "checksum bytes ac 2d, asserted as 0x2dac"),
        (6, "IcmpDestUnreachableUdp.dat", 3, 3, "code IcmpPortUnreachable, quoted source 10.0.1.2"),
        (7, "IcmpTimestampRequest.dat", 13, 0, "originate timestamp bytes 00 f6 24 63 (same bytes as the .dat)"),
        (8, "IcmpTimestampReply.dat", 14, None, "checksum bytes e3 19, asserted as 0x19e3"),
        (9, "IcmpEchoRequest.dat", 8, 0, "same bytes as the .dat"),
        (10, "IcmpEchoReply.dat", 0, None, "checksum bytes c3 b3, asserted as 0xb3c3"),
        (11, "IcmpTimeExceededEcho.dat", 11, 0, "quoted echo id bytes 0c 67, asserted as 0x670c"),
        (12, "IcmpDestUnreachableEcho.dat", 3, 1, "code IcmpHostUnreachable, quoted destination 10.0.0.111"),
        (13, "IcmpSourceQuench.dat", 4, None, "the remaining message, Source Quench (RFC 792 type 4)"),
        (14, "IcmpAddrMaskReq.dat", 17, None, "id bytes b0 0c, sequence 06 00, asserted as 0x0cb0 and 0x6"),
        (15, "IcmpAddrMaskRep.dat", 18, None, "id bytes b2 0c, asserted as 0x0cb2"),
    ]
    for frame, resource, icmp_type, code, tie in icmp:
        why = "%s on %s (frame %d: %s)" % (t, resource, frame, tie)
        add(c, frame, "icmp.type", icmp_type, why + ": isMessageOfType(%d)" % icmp_type)
        if code is not None:
            add(c, frame, "icmp.code", code, why + ": code == %d" % code)
        add(c, frame, "!error", None, why + ": isPacketOfType(ICMP)")
    # Echo request and reply ids: IcmpCreationTest builds them with
    # setEchoRequestData(0xd73b, 0, ...) / setEchoReplyData(0xd73b, 0, ...)
    # (host order in, network order out) and compares every byte from offset
    # 34 with IcmpEchoRequest.dat / IcmpEchoReply.dat; IcmpParsingTest reads
    # the same raw id as 0x3bd7 and sequence 0.
    for frame, call in ((9, "setEchoRequestData"), (10, "setEchoReplyData")):
        add(c, frame, "icmp.id", 0xD73B, "IcmpTests.cpp IcmpCreationTest: %s(0xd73b, 0, ...) == frame bytes" % call)
        add(c, frame, "icmp.seq", 0, "IcmpTests.cpp IcmpCreationTest: %s(0xd73b, 0, ...) == frame bytes" % call)

    # IPFragmentationTests.cpp (Pcap++Test), TestIPFragmentationSanity reads
    # frag_http_req.pcap itself: the first packet is FIRST_FRAGMENT, the
    # middle ones FRAGMENT, the last completes the datagram (REASSEMBLED);
    # TestIPFragPartialData names it IPv4PacketKey(16991, 172.16.133.54,
    # 216.137.33.81).
    t = "IPFragmentationTests.cpp"
    c = "frag_http_req.pcap"
    for frame in range(1, 12):
        add(c, frame, "ipv4.id", 16991, t + " TestIPFragPartialData: IPv4PacketKey(16991, ...)")
        add(c, frame, "ipv4.src", "172.16.133.54", t + " TestIPFragPartialData: IPv4PacketKey source")
        add(c, frame, "ipv4.dst", "216.137.33.81", t + " TestIPFragPartialData: IPv4PacketKey destination")
        status = "FIRST_FRAGMENT" if frame == 1 else "REASSEMBLED" if frame == 11 else "FRAGMENT"
        add(c, frame, "ipv4.mf", frame != 11, t + " TestIPFragmentationSanity: packet %d is %s" % (frame, status))
        add(c, frame, "ipv4.frag", 18 * (frame - 1),
            "testdata/README.md: 11 fragments of 144 bytes (18 units of 8), in order; %s" % status)
        add(c, frame, "!error", None, t + " TestIPFragmentationSanity: every packet is a usable fragment")
        if frame > 1:
            add(c, frame, "!tcp", None, "dissect format: not a first fragment")
    add(c, 1, "tcp.checksum_ok", None, "dissect format: first fragment with more to come")

    # ip4_bad_fragment.pcap: PcapPlusPlus issue #1815 / pull request #1829
    # (TestIPv4MalformedFragment): an IPv4 "fragment" whose total length
    # (3841) is far beyond the 60-byte frame, behind an MPLS label (EtherType
    # 0x8847 in the hex dump). PcapPlusPlus's reassembler must call it
    # malformed rather than read past the frame; dissect does not decode
    # MPLS, so the frame is Ethernet only, and must not crash.
    add("ip4_bad_fragment.pcap", 1, "eth.type", 0x8847, "PcapPlusPlus issue #1815 hex dump: 88 47 (MPLS)")
    add("ip4_bad_fragment.pcap", 1, "!ipv4", None, "dissect format: MPLS is not decoded")
    add("ip4_bad_fragment.pcap", 1, "!error", None, "dissect format: an EtherType it does not decode is not an error")
    return exp


def check_pcpp_capture(report, dissect, testdata, capture, expectations):
    frames, _ = run_dissect(dissect, os.path.join(testdata, "pcapplusplus", capture), report)
    by_number = {obj.get("frame"): obj for obj in frames}
    for frame, path, value, source in expectations:
        where = "%s frame %d" % (capture, frame)
        obj = by_number.get(frame)
        if obj is None:
            report.fail(where, "no such frame in dissect's output (%s)" % source)
            continue
        if path.startswith("!"):
            report.absent(where, obj, path[1:], source)
        elif path.startswith("?"):
            report.true(where, isinstance(obj.get(path[1:]), dict), "%s missing (%s)" % (path[1:], source))
        elif path.startswith("error@"):
            report.error_at(where, obj, [path[len("error@"):]], source)
        elif path.startswith("~"):
            m = re.fullmatch(r"~(\S+) has (\S)", path)
            flags = get(obj, m.group(1))
            report.true(where, isinstance(flags, str) and (m.group(2) in flags) == value,
                        "%s is %r; %s %s expected (%s)" % (m.group(1), flags, m.group(2),
                                                          "set" if value else "clear", source))
        else:
            report.eq(where, obj, path, value, source)


# --------------------------------------------------------------------------

def main():
    dissect, testdata = find_inputs()
    report = Report()

    table = readme_table(testdata)
    tcpdump_dir = os.path.join(testdata, "tcpdump")
    captures = sorted(f for f in os.listdir(tcpdump_dir) if f.endswith(".pcap"))
    report.true("testdata/README.md", sorted(table) == captures,
                "the README's tcpdump table lists %s, the folder holds %s" % (sorted(table), captures))
    for capture in captures:
        if capture not in table:
            continue
        oracle, flags = table[capture]
        try:
            check_tcpdump_capture(report, dissect, testdata, capture, oracle, flags)
        except OracleNotUnderstood as e:
            report.fail("%s (%s)" % (capture, oracle), "oracle text not understood, so not checked: %s" % e)

    expectations = pcpp_expectations()
    pcpp_dir = os.path.join(testdata, "pcapplusplus")
    pcpp_captures = sorted(f for f in os.listdir(pcpp_dir) if f.endswith(".pcap"))
    report.true("pcapplusplus", sorted(expectations) == pcpp_captures,
                "expectations for %s, folder holds %s" % (sorted(expectations), pcpp_captures))
    for capture in pcpp_captures:
        check_pcpp_capture(report, dissect, testdata, capture, expectations.get(capture, []))

    print("captures_vs_authors: %d checks over %d tcpdump and %d PcapPlusPlus captures, %d failed"
          % (report.checks, len(captures), len(pcpp_captures), len(report.failures)))
    for failure in report.failures:
        print("FAIL " + failure)
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())

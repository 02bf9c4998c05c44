"""DNS on the wire (RFC 1035): build a query, parse a response, resolve over UDP with TCP fallback."""

from __future__ import annotations

import ipaddress
import secrets
import socket
import struct
import time
from dataclasses import dataclass, field

# Resource record types (RFC 1035 §3.2.2, RFC 3596 for AAAA, RFC 2782 for SRV).
TYPES: dict[str, int] = {
    "A": 1,
    "NS": 2,
    "CNAME": 5,
    "SOA": 6,
    "PTR": 12,
    "MX": 15,
    "TXT": 16,
    "AAAA": 28,
    "SRV": 33,
}
CLASS_IN = 1

RData = str | tuple[int, str] | list[bytes] | bytes


@dataclass(frozen=True)
class Question:
    """One entry of the question section: QNAME, QTYPE, QCLASS (§4.1.2)."""

    name: str  # "example.com": labels joined by dots, no final dot; the root is "."
    qtype: int
    qclass: int = CLASS_IN


@dataclass(frozen=True)
class Record:
    """One resource record (§4.1.3), with RDATA decoded by type:

    A      "93.184.216.34"                 AAAA   "2001:db8::1" (str(ipaddress.IPv6Address))
    NS, CNAME, PTR  the name, "ns1.example.com"
    MX     (preference, exchange): (10, "mail.example.com")
    TXT    the character-strings: [b"v=spf1 -all"]
    other  the raw RDATA bytes, as they are in the message
    """

    name: str
    rtype: int
    rclass: int
    ttl: int
    data: RData


@dataclass
class Message:
    """A parsed DNS message: the header's fields (§4.1.1) and its four sections."""

    id: int
    qr: bool  # True in a response
    opcode: int
    aa: bool
    tc: bool  # truncated: the answer did not fit, ask again over TCP
    rd: bool
    ra: bool
    rcode: int  # 0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN
    questions: list[Question] = field(default_factory=list)
    answers: list[Record] = field(default_factory=list)
    authority: list[Record] = field(default_factory=list)
    additional: list[Record] = field(default_factory=list)


class DNSError(Exception):
    """The server answered with an error RCODE (3 NXDOMAIN: the name does not exist)."""

    def __init__(self, rcode: int, name: str) -> None:
        super().__init__(f"{name}: server answered RCODE {rcode}")
        self.rcode = rcode


def build_query(name: str, qtype: str | int = "A", qid: int | None = None, recursion_desired: bool = True) -> bytes:
    """The wire bytes of a standard query for one question, class IN, no EDNS.

    `name` is ASCII, with or without the final dot ("." is the root); `qtype` a key of TYPES or
    a number 0-65535; `qid` None picks a random 16-bit ID. A label longer than 63 bytes, an
    empty label ("a..b"), a name longer than 255 bytes on the wire, a name that isn't ASCII
    (or send its IDNA form) or a QTYPE that is neither raises ValueError.

    >>> build_query("example.com", "A", qid=0x1234).hex(" ")
    '12 34 01 00 00 01 00 00 00 00 00 00 07 65 78 61 6d 70 6c 65 03 63 6f 6d 00 00 01 00 01'
    """
    if qid is None:
        # An unpredictable ID is half of the defence against forged answers (the source port
        # is the other half): an off-path attacker must guess both.
        qid = int.from_bytes(secrets.token_bytes(2), "big")
    code = _type_code(qtype)
    # Flags: QR=0 (query), OPCODE=0 (standard query), and RD is bit 8 of the 16.
    flags = 0x0100 if recursion_desired else 0
    header = struct.pack("!6H", qid, flags, 1, 0, 0, 0)
    return header + encode_name(name) + struct.pack("!HH", code, CLASS_IN)


def _type_code(qtype: str | int) -> int:
    if isinstance(qtype, int):
        if not 0 <= qtype <= 0xFFFF:
            raise ValueError(f"QTYPE must fit in 16 bits, got {qtype}")
        return qtype
    try:
        return TYPES[qtype.upper()]
    except KeyError:
        raise ValueError(f"unknown record type {qtype!r}; known: {', '.join(TYPES)}") from None


def encode_name(name: str) -> bytes:
    """QNAME: each label as one length byte and its bytes, then the root's zero-length label."""
    if name in ("", "."):
        return b"\x00"
    out = bytearray()
    for label in name.removesuffix(".").split("."):
        raw = label.encode("ascii")  # UnicodeEncodeError is a ValueError: IDNA is out of scope
        if not raw:
            raise ValueError(f"empty label in {name!r}")
        if len(raw) > 63:  # the top two bits of the length byte mark pointers (§4.1.4)
            raise ValueError(f"label {label[:10]!r}... is {len(raw)} bytes, at most 63 allowed")
        out.append(len(raw))
        out += raw
    out.append(0)  # without it the reader runs on into QTYPE
    if len(out) > 255:
        raise ValueError(f"{name[:20]!r}... is {len(out)} bytes on the wire, at most 255 allowed")
    return bytes(out)


def parse_message(data: bytes) -> Message:
    """Parse a whole DNS message, following compression pointers (§4.1.4).

    Anything malformed raises ValueError and never loops or reads past the end: a compression
    pointer loop, a pointer past the end, a label or RDATA running past the end, a length byte
    01xxxxxx or 10xxxxxx, a name over 255 bytes, fewer questions or records than the header
    counts, a header shorter than 12 bytes, RDATA that doesn't fit its type (an A record of 3
    bytes, a name or TXT character-string running past RDLENGTH, bytes left after the name).

    >>> parse_message(build_query("example.com", qid=7)).questions
    [Question(name='example.com', qtype=1, qclass=1)]
    """
    if len(data) < 12:
        raise ValueError(f"a DNS message starts with a 12-byte header, got {len(data)} bytes")
    qid, flags, qdcount, ancount, nscount, arcount = struct.unpack_from("!6H", data)
    message = Message(
        id=qid,
        qr=bool(flags & 0x8000),
        opcode=(flags >> 11) & 0xF,
        aa=bool(flags & 0x0400),
        tc=bool(flags & 0x0200),
        rd=bool(flags & 0x0100),
        ra=bool(flags & 0x0080),
        rcode=flags & 0xF,
    )
    pos = 12
    for i in range(qdcount):
        name, pos = read_name(data, pos)
        if pos + 4 > len(data):
            raise ValueError(f"question {i + 1} of {qdcount} ends past the end of the message")
        qtype, qclass = struct.unpack_from("!HH", data, pos)
        message.questions.append(Question(name, qtype, qclass))
        pos += 4
    for section, count in ((message.answers, ancount), (message.authority, nscount), (message.additional, arcount)):
        for i in range(count):
            record, pos = _read_record(data, pos, f"record {i + 1} of {count}")
            section.append(record)
    return message


def _read_record(data: bytes, pos: int, what: str) -> tuple[Record, int]:
    name, pos = read_name(data, pos)
    if pos + 10 > len(data):
        raise ValueError(f"{what} ends past the end of the message (offset {pos})")
    rtype, rclass, ttl, rdlength = struct.unpack_from("!HHIH", data, pos)
    start = pos + 10
    end = start + rdlength
    if end > len(data):
        raise ValueError(f"{what}: RDLENGTH {rdlength} at offset {pos + 8} runs past the end")
    return Record(name, rtype, rclass, ttl, _decode_rdata(data, rtype, start, end)), end


def _decode_rdata(data: bytes, rtype: int, start: int, end: int) -> RData:
    rdata = data[start:end]
    if rtype == TYPES["A"]:
        if len(rdata) != 4:
            raise ValueError(f"A record with {len(rdata)} bytes of RDATA, expected 4")
        return str(ipaddress.IPv4Address(rdata))
    if rtype == TYPES["AAAA"]:
        if len(rdata) != 16:
            raise ValueError(f"AAAA record with {len(rdata)} bytes of RDATA, expected 16")
        return str(ipaddress.IPv6Address(rdata))
    if rtype in (TYPES["NS"], TYPES["CNAME"], TYPES["PTR"]):
        # The name is read from the whole message, not the RDATA slice: its pointers are
        # offsets from the start of the message.
        target, after = read_name(data, start)
        _check_fills(after, end, rtype)
        return target
    if rtype == TYPES["MX"]:
        if len(rdata) < 3:
            raise ValueError(f"MX record with {len(rdata)} bytes of RDATA")
        (preference,) = struct.unpack_from("!H", data, start)
        exchange, after = read_name(data, start + 2)
        _check_fills(after, end, rtype)
        return preference, exchange
    if rtype == TYPES["TXT"]:
        strings, i = [], 0
        while i < len(rdata):  # character-strings: a length byte, then that many bytes
            length = rdata[i]
            if i + 1 + length > len(rdata):
                raise ValueError("TXT character-string runs past the end of its RDATA")
            strings.append(rdata[i + 1 : i + 1 + length])
            i += 1 + length
        return strings
    return rdata


def _check_fills(after: int, end: int, rtype: int) -> None:
    if after != end:
        raise ValueError(f"type {rtype}: the name in RDATA ends at {after}, RDLENGTH says {end}")


def read_name(data: bytes, pos: int) -> tuple[str, int]:
    """The name at `pos`, and the offset right after it in place (after its first pointer)."""
    labels: list[str] = []
    wire_length = 1  # the root's zero byte
    after: int | None = None  # where the caller goes on: right after the first pointer
    jumped_to: set[int] = set()
    while True:
        if pos >= len(data):
            raise ValueError(f"name runs past the end of the message (offset {pos})")
        length = data[pos]
        if length & 0xC0 == 0xC0:
            if pos + 1 >= len(data):
                raise ValueError(f"compression pointer cut off at the end (offset {pos})")
            # 14 bits of offset from the first byte of the header, not from here (§4.1.4)
            target = ((length & 0x3F) << 8) | data[pos + 1]
            if after is None:
                after = pos + 2
            if target >= len(data):
                raise ValueError(f"compression pointer at {pos} to {target}, past the end")
            # Every offset is visited at most once, so a malicious packet whose pointers go
            # round in a circle is rejected instead of looping forever.
            if target in jumped_to:
                raise ValueError(f"compression pointer loop: offset {target} reached twice")
            jumped_to.add(target)
            pos = target
            continue
        if length & 0xC0:
            raise ValueError(f"reserved label type {length >> 6:02b} at offset {pos}")
        if length == 0:
            break
        raw = data[pos + 1 : pos + 1 + length]
        if len(raw) != length:  # slicing never raises: check it got every byte
            raise ValueError(f"label of {length} bytes at offset {pos} runs past the end")
        wire_length += 1 + length
        if wire_length > 255:
            raise ValueError(f"name longer than 255 bytes at offset {pos}")
        labels.append(raw.decode("ascii"))  # UnicodeDecodeError is a ValueError too
        pos += 1 + length
    return ".".join(labels) or ".", after if after is not None else pos + 1


def resolve(name: str, qtype: str | int, server: tuple[str, int], timeout: float | None = 2.0) -> list[Record]:
    """Ask `server` (host, port) one question; return the records of the answer section.

    Over UDP first. A datagram that isn't the answer to this query (another sender, another ID,
    another question, not a response, not DNS at all) is skipped: keep waiting. If the answer has
    TC set, ask again over TCP, where each message is preceded by its length in 2 bytes
    (§4.2.2). An RCODE other than 0 raises DNSError; no answer within `timeout` seconds, one
    deadline for the whole resolve however many datagrams arrive, raises TimeoutError;
    `timeout=0` is a deadline already passed, `timeout=None` waits as long as it takes.
    """
    # One deadline for the whole resolve: every wait gets what is left of it, so a stream of
    # junk datagrams can't keep the query alive. None waits as long as it takes.
    deadline = None if timeout is None else time.monotonic() + timeout
    query = build_query(name, qtype)  # a fresh random ID for every query
    (qid,) = struct.unpack_from("!H", query)
    (question,) = parse_message(query).questions
    response = _ask_udp(query, qid, question, server, deadline)
    if response.tc:
        # The server had more to say than fits in a datagram: TCP has no such limit.
        response = _ask_tcp(query, qid, server, deadline)
    if response.rcode != 0:
        raise DNSError(response.rcode, name)
    return response.answers


def _remaining(deadline: float | None) -> float | None:
    if deadline is None:
        return None  # settimeout(None): block until something arrives
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("no answer from the DNS server in time")
    return left


def _ask_udp(query: bytes, qid: int, question: Question, server: tuple[str, int], deadline: float | None) -> Message:
    # A new socket per query gets a random ephemeral source port; connect() makes the kernel
    # drop datagrams from any other address or port.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(server)
        sock.send(query)
        while True:
            sock.settimeout(_remaining(deadline))
            datagram = sock.recv(65535)
            try:
                response = parse_message(datagram)
            except ValueError:
                continue  # garbage is no answer: keep waiting for the real one
            # Only the answer to *this* query counts: an ID mismatch is a stale or forged reply,
            # and a response must echo the question it answers (RFC 5452 §9.1).
            if response.id == qid and response.qr and response.questions == [question]:
                return response


def _ask_tcp(query: bytes, qid: int, server: tuple[str, int], deadline: float | None) -> Message:
    with socket.create_connection(server, timeout=_remaining(deadline)) as sock:
        sock.sendall(struct.pack("!H", len(query)) + query)
        (length,) = struct.unpack("!H", _recv_exactly(sock, 2, deadline))
        response = parse_message(_recv_exactly(sock, length, deadline))
    if response.id != qid:
        raise ValueError(f"TCP answer has ID {response.id:#06x}, the query had {qid:#06x}")
    return response


def _recv_exactly(sock: socket.socket, n: int, deadline: float | None) -> bytes:
    # TCP is a byte stream: one recv() may return any part of what the server sent.
    buf = bytearray()
    while len(buf) < n:
        sock.settimeout(_remaining(deadline))
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"server closed the connection after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)

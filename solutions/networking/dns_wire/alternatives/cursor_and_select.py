"""DNS on the wire, another design: a bounds-checked cursor, backward-only compression pointers,
IDNA for non-ASCII names, and an unconnected UDP socket waited on with select()."""

from __future__ import annotations

import ipaddress
import secrets
import select
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

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
    name: str
    qtype: int
    qclass: int = CLASS_IN


@dataclass(frozen=True)
class Record:
    name: str
    rtype: int
    rclass: int
    ttl: int
    data: RData


@dataclass
class Message:
    id: int
    qr: bool
    opcode: int
    aa: bool
    tc: bool
    rd: bool
    ra: bool
    rcode: int
    questions: list[Question] = field(default_factory=list)
    answers: list[Record] = field(default_factory=list)
    authority: list[Record] = field(default_factory=list)
    additional: list[Record] = field(default_factory=list)


class DNSError(Exception):
    def __init__(self, rcode: int, name: str) -> None:
        super().__init__(f"{name}: server answered RCODE {rcode}")
        self.rcode = rcode


# --- building ---------------------------------------------------------------------------------


def _label_bytes(label: str) -> bytes:
    if label.isascii():
        return label.encode("ascii")
    return label.encode("idna")  # the xn-- form, as dnspython sends it


def build_query(name: str, qtype: str | int = "A", qid: int | None = None, recursion_desired: bool = True) -> bytes:
    if isinstance(qtype, str):
        if qtype not in TYPES:
            raise ValueError(f"unknown QTYPE {qtype!r}")
        code = TYPES[qtype]
    elif 0 <= qtype < 1 << 16:
        code = qtype
    else:
        raise ValueError(f"QTYPE {qtype} is not 16 bits")
    ident = secrets.randbits(16) if qid is None else qid
    out = bytearray(struct.pack(">HHHHHH", ident, 1 << 8 if recursion_desired else 0, 1, 0, 0, 0))
    wire_name = bytearray()
    labels = [] if name == "." else (name[:-1] if name.endswith(".") else name).split(".")
    for label in labels:
        raw = _label_bytes(label)
        if not 1 <= len(raw) <= 63:
            raise ValueError(f"label of {len(raw)} bytes in {name!r}")
        wire_name += bytes([len(raw)]) + raw
    wire_name.append(0)
    if len(wire_name) > 255:
        raise ValueError(f"{len(wire_name)} bytes on the wire")
    out += wire_name
    out += struct.pack(">HH", code, CLASS_IN)
    return bytes(out)


# --- parsing ----------------------------------------------------------------------------------


class Cursor:
    """A position in the message; every read checks the bytes are there."""

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def take(self, n: int) -> bytes:
        if self.pos + n > self.end:
            raise ValueError(f"{n} bytes wanted at offset {self.pos}, only {self.end - self.pos} left")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str) -> tuple[int, ...]:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))

    def name(self) -> str:
        """Labels until the root; a pointer must point before the label run it ends (backwards
        only), so a chain of pointers strictly decreases and cannot loop."""
        labels: list[str] = []
        size = 1
        resume: int | None = None
        floor = self.pos  # where the current run of labels started
        pos = self.pos
        while True:
            if pos >= self.end:
                raise ValueError(f"name runs past offset {self.end}")
            b = self.data[pos]
            kind = b >> 6
            if kind == 3:
                if pos + 2 > self.end:
                    raise ValueError("pointer cut in half")
                target = ((b & 0x3F) << 8) | self.data[pos + 1]
                if target >= floor:
                    raise ValueError(f"pointer at {pos} to {target} does not point backwards")
                if resume is None:
                    resume = pos + 2
                floor = pos = target
            elif kind:
                raise ValueError(f"label type {kind:02b} is reserved")
            elif b == 0:
                self.pos = resume if resume is not None else pos + 1
                return ".".join(labels) if labels else "."
            else:
                if pos + 1 + b > self.end:
                    raise ValueError("label runs past the end")
                size += 1 + b
                if size > 255:
                    raise ValueError("name over 255 bytes")
                labels.append(self.data[pos + 1 : pos + 1 + b].decode("ascii"))
                pos += 1 + b


def _txt(rd: Cursor) -> list[bytes]:
    strings = []
    while rd.pos < rd.end:
        (n,) = rd.unpack(">B")
        strings.append(rd.take(n))
    return strings


def _name_in_rdata(rd: Cursor) -> str:
    # Names in RDATA point into the whole message; the cursor still stops at RDLENGTH's end.
    return rd.name()


def _fixed(size: int, convert: type[ipaddress.IPv4Address | ipaddress.IPv6Address]) -> Callable[[Cursor], str]:
    def decode(rd: Cursor) -> str:
        return str(convert(rd.take(size)))

    return decode


DECODERS = {
    1: _fixed(4, ipaddress.IPv4Address),
    28: _fixed(16, ipaddress.IPv6Address),
    2: _name_in_rdata,
    5: _name_in_rdata,
    12: _name_in_rdata,
    15: lambda rd: (rd.unpack(">H")[0], rd.name()),
    16: _txt,
}


def _record(cur: Cursor) -> Record:
    owner = cur.name()
    rtype, rclass, ttl, rdlength = cur.unpack(">HHIH")
    start = cur.pos
    cur.take(rdlength)
    rd = Cursor(cur.data, start, start + rdlength)
    decoder = DECODERS.get(rtype)
    data: RData = decoder(rd) if decoder else rd.take(rdlength)
    if rd.pos != rd.end:
        raise ValueError(f"{rd.end - rd.pos} bytes left over in type {rtype} RDATA")
    return Record(owner, rtype, rclass, ttl, data)


def parse_message(data: bytes) -> Message:
    cur = Cursor(bytes(data))
    ident, flags, qd, an, ns, ar = cur.unpack(">6H")
    msg = Message(
        ident,
        flags >> 15 == 1,
        (flags >> 11) & 15,
        bool(flags >> 10 & 1),
        bool(flags >> 9 & 1),
        bool(flags >> 8 & 1),
        bool(flags >> 7 & 1),
        flags & 15,
    )
    for _ in range(qd):
        qname = cur.name()
        msg.questions.append(Question(qname, *cur.unpack(">HH")))
    msg.answers = [_record(cur) for _ in range(an)]
    msg.authority = [_record(cur) for _ in range(ns)]
    msg.additional = [_record(cur) for _ in range(ar)]
    return msg


# --- resolving --------------------------------------------------------------------------------


class _Deadline:
    def __init__(self, timeout: float | None) -> None:
        self.at = None if timeout is None else time.monotonic() + timeout

    def left(self) -> float | None:
        if self.at is None:
            return None
        left = self.at - time.monotonic()
        if left <= 0:
            raise TimeoutError("the DNS server did not answer in time")
        return left

    def wait_readable(self, sock: socket.socket) -> None:
        while True:
            ready, _, _ = select.select([sock], [], [], self.left())
            if ready:
                return


def resolve(name: str, qtype: str | int, server: tuple[str, int], timeout: float | None = 2.0) -> list[Record]:
    deadline = _Deadline(timeout)
    query = build_query(name, qtype)
    asked = parse_message(query)
    family, _, _, _, address = socket.getaddrinfo(*server, type=socket.SOCK_DGRAM)[0]
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.bind(("", 0))  # a random ephemeral port, new for every query
        sock.sendto(query, address)
        while True:
            deadline.wait_readable(sock)
            datagram, sender = sock.recvfrom(65535)
            if sender[:2] != address[:2]:
                continue  # someone else's datagram
            try:
                reply = parse_message(datagram)
            except ValueError:
                continue
            if reply.qr and reply.id == asked.id and reply.questions == asked.questions:
                break
    if reply.tc:
        reply = _over_tcp(query, address, family, deadline)
    if reply.rcode:
        raise DNSError(reply.rcode, name)
    return reply.answers


def _over_tcp(query: bytes, address: tuple[str, int], family: int, deadline: _Deadline) -> Message:
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setblocking(False)
        sock.connect_ex(address)  # EINPROGRESS: the handshake goes on while select() waits
        while True:  # connected when writable
            _, writable, _ = select.select([], [sock], [], deadline.left())
            if writable:
                break
        error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:
            raise OSError(error, "TCP connect to the DNS server failed")
        sock.settimeout(deadline.left())
        sock.sendall(len(query).to_bytes(2, "big") + query)
        sock.setblocking(False)
        length = int.from_bytes(_exactly(sock, 2, deadline), "big")
        return parse_message(_exactly(sock, length, deadline))


def _exactly(sock: socket.socket, n: int, deadline: _Deadline) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        deadline.wait_readable(sock)
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)

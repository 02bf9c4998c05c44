"""DNS on the wire, another design: a name reader bounded by a hop budget instead of a
visited set, and resolve() in asyncio: a connected datagram endpoint feeding a queue, one
asyncio.timeout() around the UDP wait and the TCP retry, StreamReader.readexactly for TCP."""

from __future__ import annotations

import asyncio
import ipaddress
import random
import struct
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
_ids = random.SystemRandom()  # os.urandom underneath: unpredictable IDs

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


def build_query(name: str, qtype: str | int = "A", qid: int | None = None, recursion_desired: bool = True) -> bytes:
    code = TYPES.get(qtype) if isinstance(qtype, str) else qtype
    if code is None or not 0 <= code <= 0xFFFF:
        raise ValueError(f"no such QTYPE: {qtype!r}")
    qid = _ids.getrandbits(16) if qid is None else qid
    parts = [struct.pack("!HHHHHH", qid, 0x0100 * recursion_desired, 1, 0, 0, 0)]
    trimmed = name.removesuffix(".")
    size = 1
    for label in trimmed.split(".") if trimmed else []:
        raw = label.encode("ascii")  # anything else: UnicodeEncodeError, a ValueError
        if len(raw) == 0 or len(raw) > 63:
            raise ValueError(f"bad label {label!r}")
        size += 1 + len(raw)
        parts.append(len(raw).to_bytes(1, "big") + raw)
    if size > 255:
        raise ValueError(f"name of {size} bytes")
    parts.append(b"\0" + struct.pack("!HH", code, CLASS_IN))
    return b"".join(parts)


# --- parsing ----------------------------------------------------------------------------------


def read_name(data: bytes, pos: int) -> tuple[str, int]:
    """The name at `pos`, and the offset after it in place. Every pointer spends a hop of a
    budget of len(data): a loop-free chain of pointers visits distinct offsets, so a name that
    needs more hops than the message has bytes can only be going round a loop."""
    labels: list[bytes] = []
    after, hops, size = None, 0, 1
    while True:
        if pos >= len(data):
            raise ValueError("name runs past the end")
        b = data[pos]
        if b >= 0xC0:
            if pos + 1 >= len(data):
                raise ValueError("pointer cut off")
            hops += 1
            if hops > len(data):
                raise ValueError("compression pointer loop")
            after = pos + 2 if after is None else after
            pos = (b & 0x3F) << 8 | data[pos + 1]
            continue
        if b > 63:
            raise ValueError(f"reserved label type at {pos}")
        if b == 0:
            break
        label = data[pos + 1 : pos + 1 + b]
        if len(label) < b:
            raise ValueError("label runs past the end")
        size += 1 + b
        if size > 255:
            raise ValueError("name over 255 bytes")
        labels.append(label)
        pos += 1 + b
    return ".".join(label.decode("ascii") for label in labels) or ".", pos + 1 if after is None else after


def _rdata(data: bytes, rtype: int, start: int, end: int) -> RData:
    raw = data[start:end]
    if rtype in (1, 28):
        size = 4 if rtype == 1 else 16
        if len(raw) != size:
            raise ValueError(f"type {rtype} RDATA of {len(raw)} bytes")
        return str(ipaddress.ip_address(raw))
    if rtype in (2, 5, 12, 15):
        at = start + 2 if rtype == 15 else start
        if at > end:
            raise ValueError("MX without its preference")
        target, after = read_name(data, at)
        if after != end:
            raise ValueError("the name doesn't fill RDLENGTH")
        return (int.from_bytes(raw[:2], "big"), target) if rtype == 15 else target
    if rtype == 16:
        out, view = [], memoryview(raw)
        while view:
            n = view[0]
            if n >= len(view):
                raise ValueError("character-string past its RDATA")
            out.append(bytes(view[1 : 1 + n]))
            view = view[1 + n :]
        return out
    return raw


def parse_message(data: bytes) -> Message:
    if len(data) < 12:
        raise ValueError("short header")
    qid, flags, *counts = struct.unpack_from("!6H", data)
    bit = lambda n: bool(flags & 1 << n)  # noqa: E731
    msg = Message(qid, bit(15), flags >> 11 & 0xF, bit(10), bit(9), bit(8), bit(7), flags & 0xF)
    pos = 12
    for _ in range(counts[0]):
        name, pos = read_name(data, pos)
        if len(data) - pos < 4:
            raise ValueError("question cut short")
        msg.questions.append(Question(name, *struct.unpack_from("!HH", data, pos)))
        pos += 4
    for section, count in zip((msg.answers, msg.authority, msg.additional), counts[1:], strict=True):
        for _ in range(count):
            name, pos = read_name(data, pos)
            if len(data) - pos < 10:
                raise ValueError("record cut short")
            rtype, rclass, ttl, rdlength = struct.unpack_from("!HHIH", data, pos)
            pos += 10
            if pos + rdlength > len(data):
                raise ValueError("RDLENGTH past the end")
            section.append(Record(name, rtype, rclass, ttl, _rdata(data, rtype, pos, pos + rdlength)))
            pos += rdlength
    return msg


# --- resolving --------------------------------------------------------------------------------


class _Inbox(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.datagrams: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.datagrams.put_nowait(data)  # the endpoint is connected: only the server's


async def _resolve(name: str, qtype: str | int, server: tuple[str, int]) -> Message:
    query = build_query(name, qtype)
    mine = parse_message(query)
    loop = asyncio.get_running_loop()
    transport, inbox = await loop.create_datagram_endpoint(_Inbox, remote_addr=server)
    try:
        transport.sendto(query)
        while True:
            try:
                reply = parse_message(await inbox.datagrams.get())
            except ValueError:
                continue
            if reply.qr and reply.id == mine.id and reply.questions == mine.questions:
                break
    finally:
        transport.close()
    if not reply.tc:
        return reply
    reader, writer = await asyncio.open_connection(*server)
    try:
        writer.write(struct.pack("!H", len(query)) + query)
        await writer.drain()
        (length,) = struct.unpack("!H", await reader.readexactly(2))
        return parse_message(await reader.readexactly(length))
    finally:
        writer.close()


async def _within(timeout: float | None, name: str, qtype: str | int, server: tuple[str, int]) -> Message:
    async with asyncio.timeout(timeout):  # one deadline for all of it; None: no deadline
        return await _resolve(name, qtype, server)


def resolve(name: str, qtype: str | int, server: tuple[str, int], timeout: float | None = 2.0) -> list[Record]:
    reply = asyncio.run(_within(timeout, name, qtype, server))
    if reply.rcode != 0:
        raise DNSError(reply.rcode, name)
    return reply.answers

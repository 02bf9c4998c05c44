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
    # TODO: the 12-byte header (ID, flags with RD, QDCOUNT=1), then QNAME as length-prefixed
    # labels ending in the root's zero byte, then QTYPE and QCLASS (struct "!H").
    raise NotImplementedError("build_query")


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
    # TODO: unpack the header, then read QDCOUNT questions and ANCOUNT/NSCOUNT/ARCOUNT records.
    # A name is a run of labels ending in a zero byte OR a pointer (top two bits 11): the other
    # 14 bits are an offset from the start of the message. Remember each offset you jumped to.
    raise NotImplementedError("parse_message")


def resolve(name: str, qtype: str | int, server: tuple[str, int], timeout: float | None = 2.0) -> list[Record]:
    """Ask `server` (host, port) one question; return the records of the answer section.

    Over UDP first. A datagram that isn't the answer to this query (another sender, another ID,
    another question, not a response, not DNS at all) is skipped: keep waiting. If the answer has
    TC set, ask again over TCP, where each message is preceded by its length in 2 bytes
    (§4.2.2). An RCODE other than 0 raises DNSError; no answer within `timeout` seconds, one
    deadline for the whole resolve however many datagrams arrive, raises TimeoutError;
    `timeout=0` is a deadline already passed, `timeout=None` waits as long as it takes.
    """
    # TODO: a connected UDP socket with a fresh random ID; wait for the matching response (your
    # ID, your question, QR set) until one deadline, time.monotonic() + timeout, for everything;
    # on TC, one TCP connection: send length + query, read exactly 2 + length bytes.
    raise NotImplementedError("resolve")

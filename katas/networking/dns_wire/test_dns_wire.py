"""Tests for DNS on the wire: RFC 1035 vectors, dnspython both ways, malicious packets, a real server."""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from dojo.testing import Background

from .dns_wire import DNSError, Question, Record, build_query, parse_message, resolve

# docs/vectors.md §6.1: the query for example.com A, ID 0x1234, RD=1.
VECTOR_6_1 = b"\x124\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01"

PROPERTY = settings(max_examples=120, deadline=None)
# Shrinking a generated message takes longer than the test's time limit: report the first failure.
NO_SHRINK = settings(max_examples=50, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate])
LOWER = "abcdefghijklmnopqrstuvwxyz0123456789-_"
MIXED = LOWER + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


# --- building a query -------------------------------------------------------------------------


def _query_field(offset: int, length: int) -> str:
    """Which field of a one-question query the byte at `offset` belongs to."""
    fields = ["ID", "ID", "flags", "flags", "QDCOUNT", "QDCOUNT"] + ["AN/NS/ARCOUNT"] * 6
    if offset < 12:
        return fields[offset]
    if offset >= length - 4:
        return "QTYPE" if offset < length - 2 else "QCLASS"
    return "QNAME"


def explain_query_diff(got: bytes, want: bytes) -> str:
    first = next((i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b), None)
    if first is None:
        first = min(len(got), len(want))
    lines = [
        f"expected {len(want)} bytes: {want.hex(' ')}",
        f"got      {len(got)} bytes: {got.hex(' ')}",
        f"first difference at offset {first} ({_query_field(first, len(want))})",
    ]
    if got and want and got[:-4].rstrip(b"\x00") == want[:-4].rstrip(b"\x00") and len(got) < len(want):
        lines.append("QNAME must end with the root label, a single zero byte, before QTYPE")
    lines.append(
        "RFC 1035 §4.1.1-4.1.2: 12-byte header (ID, flags, 4 counts, big-endian), then each label "
        "as its length byte followed by its bytes, the root zero byte, QTYPE, QCLASS"
    )
    return "\n".join(lines)


@pytest.mark.stage(1, "building a query")
def test_the_query_for_example_com_is_the_rfc_vector_byte_for_byte() -> None:
    got = build_query("example.com", "A", qid=0x1234)
    assert got == VECTOR_6_1, explain_query_diff(got, VECTOR_6_1)


@pytest.mark.stage(1, "building a query")
def test_a_final_dot_and_a_numeric_qtype_give_the_same_query() -> None:
    got = build_query("example.com.", 1, qid=0x1234)
    assert got == VECTOR_6_1, "a final dot names the root, it is not an empty label\n" + (
        explain_query_diff(got, VECTOR_6_1)
    )


@st.composite
def dns_names(draw: st.DrawFn, alphabet: str = LOWER, max_labels: int = 6) -> str:
    """A name whose wire form (length bytes, labels, root byte) is at most 255 bytes."""
    budget = 254  # 255 minus the root byte
    labels: list[str] = []
    for _ in range(draw(st.integers(1, max_labels))):
        if budget < 2:
            break
        label = draw(st.text(alphabet, min_size=1, max_size=min(63, budget - 1)))
        labels.append(label)
        budget -= 1 + len(label)
    return ".".join(labels)


@pytest.mark.stage(1, "building a query")
@PROPERTY
@given(
    name=dns_names(MIXED),
    qtype=st.sampled_from(["A", "AAAA", "MX", "TXT", "NS", "CNAME", "PTR", "SOA", "SRV"]),
    qid=st.integers(0, 0xFFFF),
    rd=st.booleans(),
)
def test_queries_are_what_dnspython_builds_and_dnspython_reads_them(name: str, qtype: str, qid: int, rd: bool) -> None:
    got = build_query(name, qtype, qid=qid, recursion_desired=rd)
    want = dns.message.make_query(name, qtype, id=qid, flags=dns.flags.RD if rd else 0).to_wire()
    assert got == want, f"build_query({name!r}, {qtype!r}, qid={qid}, recursion_desired={rd})\n" + (
        explain_query_diff(got, want)
    )
    parsed = dns.message.from_wire(got)
    assert parsed.question[0].name == dns.name.from_text(name)


@pytest.mark.stage(1, "building a query")
def test_the_longest_legal_name_is_255_bytes_on_the_wire() -> None:
    longest = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])  # 3 * 64 + 62 + 1 = 255 bytes
    got = build_query(longest, "A", qid=1)
    assert len(got) == 12 + 255 + 4, "labels of 63 bytes are legal, and so is a 255-byte name"
    parsed = parse_message(dns.message.make_query(longest, "A", id=1).to_wire())
    assert parsed.questions == [Question(longest, 1, 1)], (
        "a name of exactly 255 bytes on the wire (root byte included) is legal when parsing too"
    )


@pytest.mark.stage(1, "building a query")
@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("a" * 64 + ".example", "a label is at most 63 bytes: the top two bits of its length byte mark pointers"),
        (".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 62]), "a name is at most 255 bytes on the wire (§2.3.4)"),
        ("www..example", "an empty label would be the root's zero byte in the middle of the name"),
    ],
    ids=["label-of-64", "name-of-256", "empty-label"],
)
def test_names_that_cannot_be_encoded_raise_value_error(name: str, why: str) -> None:
    try:
        got = build_query(name, "A", qid=1)
    except ValueError:
        return
    pytest.fail(f"build_query({name[:30]!r}...) returned {len(got)} bytes instead of raising ValueError: {why}")


@pytest.mark.stage(1, "building a query")
def test_the_root_is_a_single_zero_byte() -> None:
    got = build_query(".", "NS", qid=0x0101)
    want = dns.message.make_query(".", "NS", id=0x0101).to_wire()
    assert got == want, "the root name is the zero-length label alone, not an empty label before it\n" + (
        explain_query_diff(got, want)
    )


@pytest.mark.stage(1, "building a query")
def test_a_name_that_is_not_ascii_is_refused_or_sent_as_idna() -> None:
    name = "bücher.example"
    try:
        got = build_query(name, "A", qid=7)
    except ValueError:
        return
    want = dns.message.make_query(name, "A", id=7).to_wire()  # dnspython sends the IDNA form
    assert got == want, (
        f"build_query({name!r}) sent raw UTF-8 or something else: labels are ASCII on the wire. "
        "Raise ValueError (label.encode('ascii') does: UnicodeEncodeError is a ValueError) or "
        "send the IDNA form (xn--...)\n" + explain_query_diff(got, want)
    )


@pytest.mark.stage(1, "building a query")
def test_every_type_name_of_the_contract_is_its_iana_number() -> None:
    for qtype in ["A", "NS", "CNAME", "SOA", "PTR", "MX", "TXT", "AAAA", "SRV"]:
        got = build_query("example.com", qtype, qid=9)
        want = dns.message.make_query("example.com", qtype, id=9).to_wire()
        assert got == want, f"QTYPE {qtype} is {dns.rdatatype.from_text(qtype)}\n" + explain_query_diff(got, want)


@pytest.mark.stage(1, "building a query")
@pytest.mark.parametrize("qtype", [0, 1, 65280, 0xFFFF])
def test_a_numeric_qtype_is_any_16_bit_number(qtype: int) -> None:
    got = build_query("example.com", qtype, qid=9)
    want = dns.message.make_query("example.com", qtype, id=9).to_wire()
    assert got == want, f"QTYPE {qtype} is a 16-bit number on the wire\n" + explain_query_diff(got, want)


@pytest.mark.stage(1, "building a query")
@pytest.mark.parametrize("qtype", [-1, 0x10000, "BOGUS", ""], ids=["minus-1", "65536", "unknown-name", "empty"])
def test_a_qtype_that_is_no_type_raises_value_error(qtype: int | str) -> None:
    try:
        got = build_query("example.com", qtype, qid=9)
    except ValueError:
        return
    except struct.error:
        pytest.fail(f"QTYPE {qtype!r} reached struct.pack: check it is 0-65535 yourself and raise ValueError")
    pytest.fail(f"build_query(qtype={qtype!r}) returned {got.hex(' ')}: a QTYPE is a known name or 0-65535")


@pytest.mark.stage(1, "building a query")
def test_without_a_given_id_each_query_gets_a_random_16_bit_one() -> None:
    ids = [struct.unpack("!H", build_query("example.com")[:2])[0] for _ in range(64)]
    assert len(set(ids)) > 1, (
        f"64 queries all had ID {ids[0]:#06x}: pick it at random (secrets.randbelow(65536)), "
        "or anyone can forge the answer"
    )
    assert max(ids) > 0xFF, (
        "64 random IDs all fit in one byte: the ID has 16 bits, and every one of them is guessing an attacker must do"
    )


# --- parsing ----------------------------------------------------------------------------------


def rfc_compression_message() -> bytes:
    """A response laid out so the RFC 1035 §4.1.4 example names sit at offsets 20, 40, 64 and 92."""
    header = struct.pack("!6H", 0xBEEF, 0x8180, 1, 4, 0, 0)  # QR RD RA, 1 question, 4 answers
    question = b"\x07example" + b"\x01F\x03ISI\x04ARPA\x00" + struct.pack("!HH", 1, 1)
    bar = b"\x03BAR" + b"\x03FOO\xc0\x14" + struct.pack("!HHIH", 1, 1, 3600, 4) + bytes([192, 0, 2, 1])
    baz = (
        b"\x03BAZ"
        + b"\xc0\x1a"
        + struct.pack("!HHIH", 28, 1, 300, 16)
        + bytes.fromhex("20010db8000000000000000000000001")
    )
    root_mx = b"\x00" + struct.pack("!HHIH", 15, 1, 60, 4) + b"\x00\x0a\xc0\x40"  # MX 10 -> 64 -> 26
    cname = b"\xc0\x28" + struct.pack("!HHIH", 5, 1, 60, 6) + b"\x03www\xc0\x5c"  # www + root at 92
    data = header + question + bar + baz + root_mx + cname
    assert data[20:32] == bytes.fromhex("01 46 03 49 53 49 04 41 52 50 41 00")
    assert data[40:46] == bytes.fromhex("03 46 4f 4f c0 14")
    assert data[64:66] == bytes.fromhex("c0 1a")
    assert data[92] == 0
    return data


RFC_EXPECTED_ANSWERS = [
    Record("BAR.FOO.F.ISI.ARPA", 1, 1, 3600, "192.0.2.1"),
    Record("BAZ.ARPA", 28, 1, 300, "2001:db8::1"),
    Record(".", 15, 1, 60, (10, "ARPA")),
    Record("FOO.F.ISI.ARPA", 5, 1, 60, "www"),
]


@pytest.mark.stage(2, "parsing and compression")
def test_the_rfc_compression_example_decodes_like_dnspython_does() -> None:
    """RFC 1035 §4.1.4 (docs/vectors.md §6.2): pointers, a pointer to a pointer, pointers inside RDATA."""
    data = rfc_compression_message()
    peer = dns.message.from_wire(data)  # the independent reading
    assert [rr.name.to_text(omit_final_dot=True) for rr in peer.answer][:2] == ["BAR.FOO.F.ISI.ARPA", "BAZ.ARPA"]
    where = (
        "a pointer is 11 + a 14-bit OFFSET counted from the first byte of the message (the ID), "
        "not from the pointer nor from the start of the RDATA: read names in RDATA from the whole "
        "message"
    )
    try:
        message = parse_message(data)
    except ValueError as exc:
        pytest.fail(f"parse_message rejected the RFC's own example: {exc}\n{where}")
    assert (message.id, message.qr, message.rd, message.ra, message.rcode) == (0xBEEF, True, True, True, 0)
    assert message.questions == [Question("example.F.ISI.ARPA", 1, 1)], where
    for i, (got, want) in enumerate(zip(message.answers, RFC_EXPECTED_ANSWERS, strict=False)):
        assert got == want, f"answer {i + 1}: expected {want}, got {got}\n{where}"
    assert len(message.answers) == 4, f"expected 4 answers, got {len(message.answers)}"


@pytest.mark.stage(2, "parsing and compression")
def test_pointers_to_offsets_past_255_use_all_14_bits() -> None:
    query = dns.message.make_query("far.test", "A", id=0x0F0F)
    response = dns.message.make_response(query)
    response.answer.append(dns.rrset.from_text("pad.test.", 60, "IN", "TXT", '"' + "x" * 250 + '"'))
    response.answer.append(dns.rrset.from_text("www.deep.test.", 60, "IN", "A", "192.0.2.1"))
    response.answer.append(dns.rrset.from_text("mail.deep.test.", 60, "IN", "CNAME", "www.deep.test."))
    wire = response.to_wire()
    assert b"\xc1" in wire[256:], "the test meant to compress names found past offset 255"
    message = parse_message(wire)
    assert message.answers[1:] == [
        Record("www.deep.test", 1, 1, 60, "192.0.2.1"),
        Record("mail.deep.test", 5, 1, 60, "www.deep.test"),
    ], (
        "a pointer's offset is 14 bits: the low 6 bits of the first byte are the HIGH bits, "
        "((first & 0x3F) << 8) | second, so 0xC1 0x04 is offset 260"
    )


def _record_rdata(rtype: int, data: Any) -> dns.rdata.Rdata:
    """A dnspython rdata for one of the test's generated records."""
    if rtype == 16:
        return dns.rdata.from_wire(1, 16, b"".join(bytes([len(s)]) + s for s in data), 0, sum(len(s) + 1 for s in data))
    if rtype >= 0xFF00:
        return dns.rdata.GenericRdata(dns.rdataclass.IN, dns.rdatatype.RdataType.make(rtype), data)
    if rtype == 15:
        return dns.rdata.from_text(1, 15, f"{data[0]} {_absolute(data[1])}")
    if rtype in (2, 5, 12):
        return dns.rdata.from_text(1, rtype, _absolute(data))
    return dns.rdata.from_text(1, rtype, data)


def _absolute(name: str) -> str:
    return name if name == "." else f"{name}."


names_or_root = st.one_of(dns_names(max_labels=4), st.just("."))
rdata_for: dict[int, st.SearchStrategy[Any]] = {
    1: st.ip_addresses(v=4).map(str),
    28: st.ip_addresses(v=6).map(str),
    2: names_or_root,
    5: names_or_root,
    12: names_or_root,
    15: st.tuples(st.integers(0, 0xFFFF), names_or_root),
    16: st.lists(st.binary(max_size=255), min_size=1, max_size=3),
}


@st.composite
def records(draw: st.DrawFn) -> Record:
    rtype = draw(st.sampled_from([*rdata_for, 0xFF00, 0xFFFE]))
    strategy = rdata_for.get(rtype, st.binary(max_size=40))
    return Record(draw(names_or_root), rtype, 1, draw(st.integers(0, 2**31 - 1)), draw(strategy))


@dataclass
class Generated:
    wire: bytes
    header: dict[str, int | bool]
    questions: list[Question]
    sections: dict[str, list[Record]]


@st.composite
def dnspython_messages(draw: st.DrawFn) -> Generated:
    header: dict[str, Any] = {
        "id": draw(st.integers(0, 0xFFFF)),
        **{f: draw(st.booleans()) for f in ("qr", "aa", "tc", "rd", "ra")},
        "opcode": draw(st.sampled_from([0, 1, 2, 4])),
        "rcode": draw(st.integers(0, 15)),
    }
    msg = dns.message.Message(id=header["id"])
    bits = {"qr": dns.flags.QR, "aa": dns.flags.AA, "tc": dns.flags.TC, "rd": dns.flags.RD, "ra": dns.flags.RA}
    msg.flags = sum(bit for f, bit in bits.items() if header[f])
    msg.set_opcode(header["opcode"])
    msg.set_rcode(header["rcode"])
    questions = draw(st.lists(st.builds(Question, dns_names(), st.sampled_from([1, 28, 15, 16])), max_size=2))
    for q in questions:
        msg.question.append(dns.rrset.RRset(dns.name.from_text(q.name), 1, q.qtype))
    sections = {name: draw(st.lists(records(), max_size=3)) for name in ("answers", "authority", "additional")}
    for target, recs in zip((msg.answer, msg.authority, msg.additional), sections.values(), strict=True):
        for r in recs:  # one rdata per RRset: dnspython keeps their order
            target.append(dns.rrset.from_rdata(dns.name.from_text(r.name), r.ttl, _record_rdata(r.rtype, r.data)))
    return Generated(msg.to_wire(), header, questions, sections)


def _same_record(got: Record, want: Record) -> bool:
    if want.rtype == 28 and isinstance(got.data, str):
        try:
            return (got.name, got.rtype, got.rclass, got.ttl, ipaddress.ip_address(got.data)) == (
                want.name,
                want.rtype,
                want.rclass,
                want.ttl,
                ipaddress.ip_address(want.data),
            )
        except ValueError:
            return False
    return got == want


@pytest.mark.stage(2, "parsing and compression")
@PROPERTY
@given(generated=dnspython_messages())
def test_parses_any_message_dnspython_builds_compression_and_all(generated: Generated) -> None:
    message = parse_message(generated.wire)
    hint = f"message bytes: {generated.wire.hex(' ')}"
    for field_name, value in generated.header.items():
        got = getattr(message, field_name)
        assert got == value, f"header field {field_name}: expected {value!r}, got {got!r} (§4.1.1)\n{hint}"
    assert message.questions == generated.questions, f"questions\n{hint}"
    for section, want_records in generated.sections.items():
        got_records = getattr(message, section)
        assert len(got_records) == len(want_records), (
            f"{section}: expected {len(want_records)} records, got {len(got_records)}"
        )
        for i, (got, want) in enumerate(zip(got_records, want_records, strict=True)):
            assert _same_record(got, want), (
                f"{section}[{i}]: expected {want}\n{' ' * len(section)}      got {got}\n"
                "dnspython compresses every name it can, owner names and names inside NS, CNAME, "
                f"PTR and MX RDATA alike; unknown types keep their raw RDATA\n{hint}"
            )


@pytest.mark.stage(2, "parsing and compression")
def test_a_record_with_empty_rdata_may_end_the_message() -> None:
    """Every EDNS query ends this way: the OPT pseudo-record (RFC 6891 §6.1.2: owner the root,
    type 41, CLASS the UDP payload size, RDLENGTH 0) is the message's last 11 bytes."""
    wire = dns.message.make_query("example.com", "A", use_edns=0, payload=1232, id=7).to_wire()
    assert wire[-11:] == bytes.fromhex("00 0029 04d0 00000000 0000")
    message = parse_message(wire)
    assert message.additional == [Record(".", 41, 1232, 0, b"")], (
        "the last record's fixed fields (TYPE, CLASS, TTL, RDLENGTH: 10 bytes) end exactly at the "
        f"end of the message, and its RDATA is empty: got {message.additional}"
    )


@pytest.mark.stage(2, "parsing and compression")
def test_every_record_type_of_a_dnspython_response() -> None:
    query = dns.message.make_query("example.com", "ANY", id=0x0A0A)
    response = dns.message.make_response(query)
    response.flags |= dns.flags.AA
    rows = [
        ("example.com.", "A", "93.184.216.34"),
        ("example.com.", "AAAA", "2001:db8::1"),
        ("example.com.", "NS", "ns1.example.com."),
        ("www.example.com.", "CNAME", "example.com."),
        ("example.com.", "MX", "10 mail.example.com."),
        ("example.com.", "TXT", '"v=spf1 -all" "second"'),
        ("example.com.", "TYPE65280", r"\# 3 abcdef"),
    ]
    for owner, rdtype, text in rows:
        response.answer.append(dns.rrset.from_text(owner, 3600, "IN", rdtype, text))
    message = parse_message(response.to_wire())
    assert (message.id, message.qr, message.aa, message.rd) == (0x0A0A, True, True, True)
    assert message.questions == [Question("example.com", 255, 1)]
    assert message.answers == [
        Record("example.com", 1, 1, 3600, "93.184.216.34"),
        Record("example.com", 28, 1, 3600, "2001:db8::1"),
        Record("example.com", 2, 1, 3600, "ns1.example.com"),
        Record("www.example.com", 5, 1, 3600, "example.com"),
        Record("example.com", 15, 1, 3600, (10, "mail.example.com")),
        Record("example.com", 16, 1, 3600, [b"v=spf1 -all", b"second"]),
        Record("example.com", 65280, 1, 3600, b"\xab\xcd\xef"),
    ], "RDATA decoded by type: see the Record docstring for each type's form"


# --- malicious packets ------------------------------------------------------------------------

ONE_QUESTION = struct.pack("!6H", 0x6666, 0x8000, 1, 0, 0, 0)
ONE_ANSWER = struct.pack("!6H", 0x6666, 0x8000, 0, 1, 0, 0)
ONE_ANSWER_THEN_A = struct.pack("!6H", 0x6666, 0x8000, 0, 2, 0, 0)
A_IN = struct.pack("!HH", 1, 1)
HANG_AFTER = 2.0  # seconds; a correct parser needs microseconds


def _rr(rtype: int, rdlength: int) -> bytes:
    """TYPE, CLASS IN, TTL 60 and RDLENGTH: what follows a record's owner name."""
    return struct.pack("!HHIH", rtype, 1, 60, rdlength)


class _Hung(BaseException):
    """Raised inside a parse_message thread that went round in circles, to stop it."""


def _stop(thread: threading.Thread) -> None:
    # Threads can't be killed, but a pure-Python loop can be interrupted: raise an exception
    # in it at its next bytecode, so a looping learner thread doesn't burn CPU for the whole run.
    assert thread.ident is not None
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(_Hung))
    thread.join(2)


MALICIOUS = {
    "pointer-to-itself": (ONE_QUESTION + b"\xc0\x0c" + A_IN, "pointer loop"),
    "two-pointers-to-each-other": (ONE_QUESTION + b"\xc0\x0e\xc0\x0c" + A_IN, "pointer loop"),
    "label-then-pointer-back": (ONE_QUESTION + b"\x01a\xc0\x0c" + A_IN, "pointer loop"),
    "loop-inside-rdata": (ONE_ANSWER + b"\x00" + struct.pack("!HHIH", 5, 1, 60, 2) + b"\xc0\x17", "pointer loop"),
    "pointer-past-the-end": (ONE_QUESTION + b"\xc0\xff" + A_IN, "pointer past the end"),
    "label-past-the-end": (ONE_QUESTION + b"\x3fabc", "a label longer than what is left"),
    "name-without-root-byte": (ONE_QUESTION + b"\x03com", "a name that never ends"),
    "rdlength-past-the-end": (
        ONE_ANSWER + b"\x00" + struct.pack("!HHIH", 1, 1, 60, 200) + b"\x01\x02\x03\x04",
        "RDLENGTH past the end",
    ),
    "fewer-records-than-ancount": (
        struct.pack("!6H", 1, 0x8000, 0, 3, 0, 0) + b"\x00" + struct.pack("!HHIH", 1, 1, 60, 4) + b"\x01\x02\x03\x04",
        "ANCOUNT larger than the records present",
    ),
    "header-cut-short": (b"\x12\x34\x81", "a header shorter than 12 bytes"),
    "header-of-11-bytes": (ONE_QUESTION[:11], "a header one byte short"),
    "pointer-cut-off": (ONE_QUESTION + b"\x01a\xc0", "a pointer missing its second byte"),
    "reserved-label-type-01": (ONE_QUESTION + b"\x41" + b"a" * 65 + b"\x00" + A_IN, "a length byte 01xxxxxx"),
    "reserved-label-type-10": (ONE_QUESTION + b"\x81" + b"a" * 129 + b"\x00" + A_IN, "a length byte 10xxxxxx"),
    "name-of-256-bytes": (
        ONE_QUESTION + (b"\x3f" + b"a" * 63) * 3 + b"\x3e" + b"b" * 62 + b"\x00" + A_IN,
        "a name of 256 bytes, root byte included",
    ),
    "name-over-255-bytes": (ONE_QUESTION + (b"\x3f" + b"a" * 63) * 4 + b"\x00" + A_IN, "a name over 255 bytes"),
    "name-over-255-bytes-through-pointers": (
        struct.pack("!6H", 0x6666, 0x8000, 1, 1, 0, 0)
        + (b"\x3f" + b"a" * 63) * 3  # a question name of 193 bytes
        + b"\x00"
        + A_IN
        + (b"\x3f" + b"b" * 63 + b"\xc0\x0c")  # 64 more bytes, then the question's name
        + _rr(1, 4)
        + b"\x01\x02\x03\x04",
        "a name over 255 bytes, assembled through a pointer",
    ),
    "question-cut-short": (ONE_QUESTION + b"\x00\x00\x01\x00", "a question one byte short of its QCLASS"),
    "record-cut-short": (
        ONE_ANSWER + b"\x00" + struct.pack("!HHIB", 1, 1, 60, 0),
        "a record one byte short of RDLENGTH",
    ),
    "qdcount-larger-than-present": (struct.pack("!6H", 1, 0x8000, 2, 0, 0, 0) + b"\x00" + A_IN, "QDCOUNT too large"),
    "arcount-larger-than-present": (struct.pack("!6H", 1, 0x8000, 0, 0, 0, 1), "ARCOUNT too large"),
    "txt-string-past-its-rdata": (
        ONE_ANSWER_THEN_A + b"\x00" + _rr(16, 7) + b"\x07hello!" + b"\x00" + _rr(1, 4) + b"\x01\x02\x03\x04",
        "a TXT character-string whose length byte runs past its RDATA (into the next record)",
    ),
    "txt-string-past-the-end": (ONE_ANSWER + b"\x00" + _rr(16, 3) + b"\x05ab", "a TXT character-string past the end"),
    "a-with-3-bytes": (
        ONE_ANSWER_THEN_A + b"\x00" + _rr(1, 3) + b"\x01\x02\x03" + b"\x00" + _rr(1, 4) + b"\x01\x02\x03\x04",
        "an A record whose RDLENGTH isn't 4",
    ),
    "aaaa-with-4-bytes": (
        ONE_ANSWER + b"\x00" + _rr(28, 4) + b"\x01\x02\x03\x04",
        "an AAAA record whose RDLENGTH isn't 16",
    ),
    "cname-past-its-rdata": (
        ONE_ANSWER_THEN_A + b"\x00" + _rr(5, 2) + b"\x01a\x00" + _rr(1, 4) + b"\x01\x02\x03\x04",
        "a CNAME target that runs past its RDLENGTH",
    ),
    "cname-shorter-than-its-rdata": (
        ONE_ANSWER + b"\x00" + _rr(5, 5) + b"\x01a\x00zz",
        "a CNAME target shorter than its RDLENGTH",
    ),
    "mx-past-its-rdata": (
        # the exchange's 1-byte label is the next record's root byte: that record parses on its own
        ONE_ANSWER_THEN_A + b"\x00" + _rr(15, 3) + b"\x00\x0a\x01" + b"\x00" + _rr(1, 4) + b"\x01\x02\x03\x04",
        "an MX exchange that runs past its RDLENGTH",
    ),
    "mx-without-exchange": (ONE_ANSWER + b"\x00" + _rr(15, 2) + b"\x00\x0a", "an MX record with only a preference"),
}


@pytest.mark.stage(3, "malicious packets")
@pytest.mark.parametrize("case", list(MALICIOUS))
def test_a_malicious_packet_raises_value_error_quickly(case: str) -> None:
    data, what = MALICIOUS[case]
    with pytest.raises(dns.exception.FormError):  # the oracle agrees the packet is malformed
        dns.message.from_wire(data)
    worker = Background(parse_message, data, name="parse_message")
    worker.thread.join(HANG_AFTER)
    if worker.thread.is_alive():
        _stop(worker.thread)
        pytest.fail(
            f"{what}: parse_message({data.hex(' ')}) was still running after {HANG_AFTER} s. "
            "Following compression pointers without remembering where you have been loops "
            "forever on a crafted packet (a remote denial of service): reject an offset reached "
            "twice, or require every pointer to point before the previous one"
        )
    try:
        got = worker.result()
    except ValueError:
        return
    except NotImplementedError:
        raise
    except Exception as exc:
        pytest.fail(
            f"{what}: expected ValueError, got {type(exc).__name__}: {exc}\n"
            f"packet: {data.hex(' ')}\ncheck every length and offset against len(data) before "
            "you use it (slices never raise, indexes raise IndexError), and track visited offsets"
        )
    pytest.fail(f"{what}: expected ValueError, parse_message returned {got}\npacket: {data.hex(' ')}")


@pytest.mark.stage(3, "malicious packets")
@NO_SHRINK
@given(generated=dnspython_messages(), data=st.data())
def test_a_message_cut_short_anywhere_raises_value_error(generated: Generated, data: st.DataObject) -> None:
    """Every strict prefix of a message lacks part of a counted item: dnspython rejects each one."""
    cut = data.draw(st.integers(0, len(generated.wire) - 1), label="cut at")
    short = generated.wire[:cut]
    with pytest.raises(dns.exception.FormError):
        dns.message.from_wire(short)
    try:
        got = parse_message(short)
    except ValueError:
        return
    pytest.fail(
        f"the first {cut} of {len(generated.wire)} bytes of a message parsed as {got}: every length "
        "and count must be checked against what is left (slices never raise: a short slice is a "
        f"cut-off label, RDATA or TXT string)\nbytes: {short.hex(' ')}"
    )


@pytest.mark.stage(3, "malicious packets")
@NO_SHRINK
@given(generated=dnspython_messages(), data=st.data())
def test_a_count_larger_than_the_records_present_raises_value_error(generated: Generated, data: st.DataObject) -> None:
    counts = list(struct.unpack_from("!4H", generated.wire, 4))
    # Count one more item in a section after which every section is empty: the missing item
    # starts exactly at the end of the message.
    last = max((i for i, n in enumerate(counts) if n), default=0)
    section = data.draw(st.integers(last, 3), label="section")
    counts[section] += 1
    wire = generated.wire[:4] + struct.pack("!4H", *counts) + generated.wire[12:]
    names = ["QDCOUNT", "ANCOUNT", "NSCOUNT", "ARCOUNT"]
    try:
        got = parse_message(wire)
    except ValueError:
        return
    pytest.fail(
        f"{names[section]} counts one more item than the message holds, and parse_message returned "
        f"{got}: read exactly the counted items and raise ValueError when the data ends first"
    )


# --- a real DNS server, and resolve() ---------------------------------------------------------

Zone = dict[tuple[str, str], list[str]]

ZONE: Zone = {
    ("example.test", "NS"): ["ns1.example.test."],
    ("ns1.example.test", "A"): ["192.0.2.53"],
    ("www.example.test", "A"): ["192.0.2.10", "192.0.2.11"],
    ("www.example.test", "AAAA"): ["2001:db8::10"],
    ("alias.example.test", "CNAME"): ["www.example.test."],
    ("dangling.example.test", "CNAME"): ["gone.example.test."],  # NXDOMAIN, with the CNAME
    ("example.test", "MX"): ["10 mail.example.test.", "20 backup.mail.example.test."],
    ("mail.example.test", "A"): ["192.0.2.25"],
    ("example.test", "TXT"): ['"v=spf1 -all"'],
    ("big.example.test", "A"): [f"198.51.100.{i}" for i in range(1, 61)],  # 60 * 16 bytes > 512
    ("servfail.example.test", "RCODE"): ["2"],
    ("refused.example.test", "RCODE"): ["5"],
}
FORGED = "203.0.113.66"
# What arrives before the real answer, each a kind of datagram that is not the answer to the query.
SPOOFS = {
    "wrong_id": "a forged answer with another ID, from the server's address and port",
    "other_port": "a forged answer with the right ID, from another port of the server's address",
    "other_address": "a forged answer with the right ID, from the server's port on another address (127.0.0.2)",
    "garbage": "a datagram that is not a DNS message, from the server",
    "echo": "the query itself sent back (QR=0, right ID, right question), from the server",
    "wrong_question": "an answer with the right ID for another question, from the server",
}


@dataclass
class SeenQuery:
    transport: str  # "udp" or "tcp"
    id: int
    port: int  # the client's source port
    name: str
    rd: bool


def _bind_udp_and_tcp() -> tuple[socket.socket, socket.socket]:
    """A UDP and a TCP socket on the same free port of 127.0.0.1, as a DNS server has."""
    for _ in range(50):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            tcp.bind(udp.getsockname())
        except OSError:
            udp.close()
            tcp.close()
            continue
        tcp.listen(8)
        return udp, tcp
    raise RuntimeError("found no port free for both UDP and TCP on 127.0.0.1")


class DnsServer:
    """An authoritative server for a zone dict on 127.0.0.1, UDP and TCP on one port.

    Answers are built by dnspython: the zone's NS in the authority section and the A records of
    MX exchanges in the additional one, as real servers add them. Over UDP an answer larger than
    512 bytes is replaced by one with TC set: empty, or with `truncate="partial"` the first 5
    records. `spoof` (a key of SPOOFS) first sends a datagram that is not the answer. Over TCP
    the answer goes out in three pieces, the first cutting the length prefix in two, as a byte
    stream may deliver it; with `tcp="hang"` the server accepts and says nothing until released,
    with `tcp="backlog_full"` it never accepts and its full queue leaves a connect() hanging.
    """

    def __init__(self, zone: Zone, spoof: str | None = None, truncate: str = "empty", tcp: str = "answer") -> None:
        self.zone = zone
        self.spoof = spoof
        self.truncate = truncate
        self.tcp_mode = tcp
        self.queries: list[SeenQuery] = []
        self.errors: list[str] = []
        self.held: list[socket.socket] = []  # TCP connections accepted and never answered
        self.released = threading.Event()  # set when the held connections are closed
        self.dripped_out = threading.Event()  # set when a "drip" answer ran its DRIP_FOR
        self.udp, self.tcp = _bind_udp_and_tcp()
        self.address: tuple[str, int] = self.udp.getsockname()
        if tcp == "backlog_full":  # one connection waits in a queue of one: the next SYN is dropped
            self.tcp.listen(0)
            self.held.append(socket.create_connection(self.address))
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(target=self._serve, name="dns-server", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.release()  # first: a dripping answer stops at once
        self._wake_w.send(b"x")
        self._thread.join(5)
        for sock in (self.udp, self.tcp, self._wake_r, self._wake_w):
            sock.close()

    def release(self) -> None:
        """Close the TCP connections held open without an answer."""
        self.released.set()
        for conn in self.held:
            conn.close()

    def _serve(self) -> None:
        with selectors.DefaultSelector() as sel:
            for sock in (self.udp, self.tcp, self._wake_r):
                if sock is not self.tcp or self.tcp_mode != "backlog_full":  # never accepts
                    sel.register(sock, selectors.EVENT_READ)
            while True:
                for key, _ in sel.select():
                    if key.fileobj is self._wake_r:
                        return
                    try:
                        if key.fileobj is self.udp:
                            self._on_udp()
                        else:
                            self._on_tcp()
                    except Exception as exc:  # reported to the test, the server keeps serving
                        self.errors.append(f"{type(exc).__name__}: {exc}")

    def _read_query(self, data: bytes, transport: str, port: int) -> dns.message.Message | None:
        try:
            query = dns.message.from_wire(data)
        except Exception as exc:
            self.errors.append(f"dnspython could not read your {transport} query {data.hex(' ')}: {exc!r}")
            return None
        name = query.question[0].name.to_text(omit_final_dot=True) if query.question else ""
        self.queries.append(SeenQuery(transport, query.id, port, name, bool(query.flags & dns.flags.RD)))
        return query

    def _rrset(self, name: dns.name.Name, rdtype: str) -> dns.rrset.RRset | None:
        texts = self.zone.get((name.to_text(omit_final_dot=True).lower(), rdtype))
        return dns.rrset.from_text_list(name, 300, "IN", rdtype, texts) if texts else None

    def _answer(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if not query.question:
            response.set_rcode(dns.rcode.FORMERR)
            return response
        name, rdtype = query.question[0].name, query.question[0].rdtype
        rcode = self.zone.get((name.to_text(omit_final_dot=True).lower(), "RCODE"))
        if rcode:
            response.set_rcode(int(rcode[0]))
            return response
        for _ in range(8):  # follow CNAMEs inside the zone, as a real server does
            key = name.to_text(omit_final_dot=True).lower()
            found = self._rrset(name, dns.rdatatype.to_text(rdtype))
            cname = self.zone.get((key, "CNAME"))
            if found:
                response.answer.append(found)
            elif cname and rdtype != dns.rdatatype.CNAME:
                response.answer.append(dns.rrset.from_text_list(name, 300, "IN", "CNAME", cname))
                name = dns.name.from_text(cname[0])
                continue
            elif not any(owner == key for owner, _ in self.zone):
                response.set_rcode(dns.rcode.NXDOMAIN)
            break
        if response.answer and rdtype != dns.rdatatype.NS:  # context a real server adds
            if ns := self._rrset(dns.name.from_text("example.test"), "NS"):
                response.authority.append(ns)
            for rrset in response.answer:
                for rdata in rrset if rrset.rdtype == dns.rdatatype.MX else ():
                    if glue := self._rrset(rdata.exchange, "A"):
                        response.additional.append(glue)
        return response

    def _forged(self, query: dns.message.Message, qid: int) -> bytes:
        forged = dns.message.make_response(query)
        forged.id = qid
        forged.answer.append(dns.rrset.from_text(query.question[0].name, 86400, "IN", "A", FORGED))
        return forged.to_wire()

    def _send_spoof(self, query: dns.message.Message, data: bytes, client: tuple[str, int]) -> None:
        if self.spoof == "wrong_id":
            self.udp.sendto(self._forged(query, query.id ^ 0x5A5A), client)
        elif self.spoof in ("other_port", "other_address"):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
                if self.spoof == "other_port":
                    other.bind(("127.0.0.1", 0))
                else:
                    other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    other.bind(("127.0.0.2", self.address[1]))
                other.sendto(self._forged(query, query.id), client)
        elif self.spoof == "garbage":
            self.udp.sendto(b"\x00" * 5 + b"not DNS", client)
        elif self.spoof == "echo":
            self.udp.sendto(data, client)
        elif self.spoof == "wrong_question":
            other = dns.message.make_query("forged.example.test", "A", id=query.id)
            self.udp.sendto(self._forged(other, query.id), client)

    def _on_udp(self) -> None:
        data, client = self.udp.recvfrom(65535)
        query = self._read_query(data, "udp", client[1])
        if query is None:
            return
        self._send_spoof(query, data, client)
        response = self._answer(query)
        wire = response.to_wire()
        if len(wire) > 512:  # what fits in a classic datagram, and TC says there was more
            answer = response.answer
            response.answer, response.authority, response.additional = [], [], []
            if self.truncate == "partial":
                response.answer.append(dns.rrset.RRset(answer[0].name, answer[0].rdclass, answer[0].rdtype))
                for rdata in list(answer[0])[:5]:
                    response.answer[0].add(rdata, answer[0].ttl)
            response.flags |= dns.flags.TC
            wire = response.to_wire()
        self.udp.sendto(wire, client)

    def _on_tcp(self) -> None:
        conn, client = self.tcp.accept()
        if self.tcp_mode == "hang":
            self.held.append(conn)  # accepted, and never a word
            return
        with conn:
            conn.settimeout(2)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            (length,) = struct.unpack("!H", _recv_exactly(conn, 2))
            try:
                data = _recv_exactly(conn, length)
            except ConnectionError as exc:
                raise ConnectionError(
                    f"your TCP query's 2-byte prefix announced {length} bytes, then {exc}: the prefix "
                    "is the length of the message alone, big-endian (struct '!H')"
                ) from None
            query = self._read_query(data, "tcp", client[1])
            if query is None:
                return
            wire = self._answer(query).to_wire()
            framed = struct.pack("!H", len(wire)) + wire
            if self.tcp_mode == "drip":  # a byte every 20 ms (a slowloris), for DRIP_FOR seconds
                until = time.monotonic() + DRIP_FOR
                while framed and not self.released.wait(0.02):
                    if time.monotonic() > until:
                        self.dripped_out.set()
                        break
                    with contextlib.suppress(OSError):  # the client may have given up
                        conn.sendall(framed[:1])
                    framed = framed[1:]
            for piece in (framed[:1], framed[1:100], framed[100:]):  # a stream has no boundaries
                conn.sendall(piece)
                time.sleep(0.01)


def _recv_exactly(conn: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        try:
            chunk = conn.recv(n - len(buf))
        except TimeoutError:
            chunk = b""
        if not chunk:
            raise ConnectionError(f"only {len(buf)} of {n} bytes arrived")
        buf += chunk
    return buf


def _can_bind(host: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((host, 0))
        except OSError:
            return False
    return True


class JunkServer:
    """A UDP server that never answers: once a query arrives, it sends datagrams that are not the
    answer (another ID, garbage, the query echoed, an answer to another question) every 20 ms,
    until `stop()` or until it has sent for JUNK_FOR seconds (then `ran_out` is set)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.address: tuple[str, int] = self.sock.getsockname()
        self.sent = 0
        self.ran_out = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="junk-server", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()

    def _run(self) -> None:
        self.sock.settimeout(5)
        try:
            data, client = self.sock.recvfrom(65535)
        except OSError:
            return
        query = dns.message.from_wire(data)
        wrong_id = dns.message.make_response(query)
        wrong_id.id ^= 0x5A5A
        other = dns.message.make_response(dns.message.make_query("forged.example.test", "A", id=query.id))
        junk = [wrong_id.to_wire(), b"\x00" * 5 + b"not DNS", data, other.to_wire()]
        until = time.monotonic() + JUNK_FOR
        while not self._stop.wait(0.02):
            if time.monotonic() > until:
                self.ran_out.set()
                return
            self.sock.sendto(junk[self.sent % len(junk)], client)
            self.sent += 1


JUNK_FOR = 3.0  # seconds of junk; resolve(timeout=0.3) must give up long before it ends
DRIP_FOR = 3.0  # seconds of an answer dripping over TCP; resolve(timeout=0.5) gives up first


@pytest.fixture
def dns_server() -> Iterator[Callable[..., DnsServer]]:
    started: list[DnsServer] = []

    def start(zone: Zone = ZONE, **options: str) -> DnsServer:
        server = DnsServer(zone, **options)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


def ask(server: DnsServer, name: str, qtype: str | int, timeout: float | None = 3.0) -> list[Record]:
    """resolve() against the test server; what the server saw wrong is part of any failure."""
    try:
        return resolve(name, qtype, server.address, timeout)
    except (NotImplementedError, DNSError):
        raise
    except Exception as exc:
        if server.errors:
            raise AssertionError(f"resolve failed ({exc!r}); the DNS server said: {server.errors}") from exc
        raise
    finally:
        assert not server.errors, f"the DNS server said: {server.errors}"


@pytest.mark.stage(4, "resolving over udp and tcp")
def test_resolve_asks_over_udp_and_returns_the_answer_records(dns_server: Callable[..., DnsServer]) -> None:
    server = dns_server()
    records = ask(server, "www.example.test", "A")
    assert sorted(records, key=lambda r: str(r.data)) == [
        Record("www.example.test", 1, 1, 300, "192.0.2.10"),
        Record("www.example.test", 1, 1, 300, "192.0.2.11"),
    ], "resolve returns only the answer section: the server's NS in authority is context, not the answer"
    assert [(q.transport, q.name, q.rd) for q in server.queries] == [("udp", "www.example.test", True)], (
        "one UDP query with RD set is enough for a small answer: TCP only after a truncated one"
    )


@pytest.mark.stage(4, "resolving over udp and tcp")
def test_resolve_decodes_the_compressed_names_of_a_real_server(dns_server: Callable[..., DnsServer]) -> None:
    server = dns_server()
    chain = ask(server, "alias.example.test", "A")
    assert chain[0] == Record("alias.example.test", 5, 1, 300, "www.example.test"), (
        "the CNAME's target is a compressed name in RDATA: its pointer counts from the message start"
    )
    assert sorted(str(r.data) for r in chain[1:]) == ["192.0.2.10", "192.0.2.11"]
    mx = ask(server, "example.test", "MX")
    assert sorted(r.data for r in mx if isinstance(r.data, tuple)) == [
        (10, "mail.example.test"),
        (20, "backup.mail.example.test"),
    ]
    assert [r.rtype for r in mx] == [15, 15], (
        f"resolve returned {[r.rtype for r in mx]}: only the answer section, not the NS (authority) "
        "and the exchange's A record (additional) the server added as context"
    )
    assert [r.data for r in ask(server, "example.test", "TXT")] == [[b"v=spf1 -all"]]
    assert [r.data for r in ask(server, "www.example.test", 28, timeout=1.0)] == ["2001:db8::10"], (
        "a local server answers within 1 s: resolve must not give up while time is left"
    )
    assert ask(server, "www.example.test", "MX") == [], "NOERROR with no records (NODATA) is an empty list"


@pytest.mark.stage(4, "resolving over udp and tcp")
@pytest.mark.parametrize("truncate", ["empty", "partial"])
def test_a_truncated_answer_is_asked_again_over_tcp(dns_server: Callable[..., DnsServer], truncate: str) -> None:
    """60 A records don't fit in 512 bytes: the UDP answer has TC=1 (and no or some records)."""
    server = dns_server(truncate=truncate)
    try:
        records = ask(server, "big.example.test", "A")
    except (ValueError, struct.error) as exc:
        pytest.fail(
            f"resolve failed with {exc!r} over TCP. The server sent one byte of the length, then "
            "the rest in two pieces: TCP is a byte stream, so read exactly 2 bytes, then exactly "
            "that many, looping over recv()"
        )
    transports = [q.transport for q in server.queries]
    assert transports == ["udp", "tcp"], (
        f"the server saw queries over {transports}: expected UDP first, then, because the UDP "
        "answer had TC (truncated) set, the same question over TCP with a 2-byte length prefix "
        "(RFC 1035 §4.2.2). TC means the answer is incomplete even when it holds some records"
    )
    assert sorted(int(ipaddress.ip_address(r.data).packed[3]) for r in records) == list(range(1, 61)), (
        f"expected the 60 A records of the TCP answer, got {len(records)}"
    )


@pytest.mark.stage(4, "resolving over udp and tcp")
@pytest.mark.parametrize("spoof", list(SPOOFS))
def test_a_datagram_that_is_not_the_answer_is_skipped(dns_server: Callable[..., DnsServer], spoof: str) -> None:
    if spoof == "other_address" and not _can_bind("127.0.0.2"):
        pytest.skip("127.0.0.2 is not configured on this host's loopback (macOS has only 127.0.0.1)")
    server = dns_server(spoof=spoof)
    what = SPOOFS[spoof]
    try:
        records = ask(server, "www.example.test", "A")
    except (ValueError, ConnectionError, struct.error) as exc:
        pytest.fail(
            f"resolve gave up ({exc!r}) on {what}: skip it and keep waiting for the real answer "
            "(anyone can send you a datagram; dropping the query on junk is a denial of service)"
        )
    except TimeoutError:
        pytest.fail(
            f"resolve timed out, though the real answer came right after {what} "
            f"({len(server.queries)} queries reached the server): skip the datagram and keep "
            "listening on the same socket for the answer to the same query"
        )
    addresses = sorted(str(r.data) for r in records)
    qid = server.queries[0].id
    why = {
        "wrong_id": f"its ID {qid ^ 0x5A5A:#06x} isn't the query's {qid:#06x}. Checking the ID is what "
        "stops an off-path attacker from poisoning the cache (Kaminsky, 2008)",
        "other_port": "connect() the UDP socket to the server (the kernel then drops other senders) "
        "or compare recvfrom's whole address with the server's",
        "other_address": "the sender's address isn't the server's: compare the whole (host, port), "
        "or connect() the socket",
        "wrong_question": "a response must echo the question it answers (RFC 5452 §9.1): compare the "
        "question section with the one you asked",
    }.get(spoof, "")
    assert FORGED not in addresses, f"resolve accepted {what}: {why}"
    assert addresses == ["192.0.2.10", "192.0.2.11"], f"resolve returned {addresses} after {what}: " + (
        "a query sent back has QR=0: it is not a response" if spoof == "echo" else why
    )


@pytest.mark.stage(4, "resolving over udp and tcp")
def test_each_query_has_a_fresh_random_id_and_source_port(dns_server: Callable[..., DnsServer]) -> None:
    server = dns_server()
    for _ in range(6):
        ask(server, "www.example.test", "A")
    ids = {q.id for q in server.queries}
    ports = {q.port for q in server.queries}
    assert len(ids) > 1, f"6 queries, all with ID {ids}: a guessable ID lets anyone forge answers"
    assert len(ports) > 1, (
        f"6 queries, all from source port {ports}: a fixed port leaves an attacker only 16 bits "
        "of ID to guess (Kaminsky): a new socket per query gets a random ephemeral port"
    )


@pytest.mark.stage(4, "resolving over udp and tcp")
@pytest.mark.parametrize(
    ("name", "rcode"),
    [("nope.example.test", 3), ("dangling.example.test", 3), ("servfail.example.test", 2), ("refused.example.test", 5)],
)
def test_an_error_rcode_raises_dns_error_with_it(dns_server: Callable[..., DnsServer], name: str, rcode: int) -> None:
    server = dns_server()
    try:
        got = ask(server, name, "A")
    except DNSError as exc:
        assert exc.rcode == rcode, f"the server answered RCODE {rcode}, the error said {exc.rcode}"
        return
    pytest.fail(
        f"RCODE {rcode} returned {got}: any RCODE other than 0 (NOERROR) is DNSError(rcode), even "
        "with records in the answer (a CNAME to a name that doesn't exist comes back NXDOMAIN "
        "with the CNAME, RFC 6604)"
    )


@pytest.mark.stage(5, "timeouts")
def test_a_silent_server_raises_timeout_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))  # bound, so no ICMP "port unreachable"; it never answers
        with pytest.raises(TimeoutError):
            resolve("www.example.test", "A", silent.getsockname(), timeout=0.3)


@pytest.mark.stage(5, "timeouts")
def test_timeout_zero_is_a_deadline_already_passed() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        try:
            resolve("www.example.test", "A", silent.getsockname(), timeout=0)
        except TimeoutError:
            return
        except OSError as exc:
            pytest.fail(
                f"timeout=0 raised {type(exc).__name__}: settimeout(0) makes the socket non-blocking "
                "(recv raises BlockingIOError): when nothing is left of the deadline, raise TimeoutError"
            )
    pytest.fail("timeout=0 returned: no answer can arrive in no time")


@pytest.mark.stage(5, "timeouts")
def test_timeout_none_waits_as_long_as_it_takes(dns_server: Callable[..., DnsServer]) -> None:
    server = dns_server(spoof="garbage")
    records = ask(server, "www.example.test", "A", timeout=None)
    assert sorted(str(r.data) for r in records) == ["192.0.2.10", "192.0.2.11"]


@pytest.mark.stage(5, "timeouts")
def test_the_timeout_is_one_deadline_however_much_junk_arrives() -> None:
    """Junk every 20 ms for 3 s must not keep resolve(timeout=0.3) waiting: it is one deadline."""
    junk = JunkServer()
    try:
        worker = Background(resolve, "www.example.test", "A", junk.address, 0.3, name="resolve")
        worker.thread.join(JUNK_FOR + 3)
        if worker.thread.is_alive():
            pytest.fail(f"resolve(timeout=0.3) was still waiting {JUNK_FOR + 3} s later, after the junk stopped")
        with pytest.raises(TimeoutError):
            worker.result()
        assert not junk.ran_out.is_set(), (
            f"resolve(timeout=0.3) gave up only after the junk stopped ({junk.sent} datagrams): a fresh "
            "timeout for every recv() lets anyone keep a query alive forever with one datagram "
            "at a time. Compute one deadline (time.monotonic() + timeout) and give every wait "
            "what is left of it"
        )
    finally:
        junk.stop()


@pytest.mark.stage(5, "timeouts")
@pytest.mark.parametrize("tcp", ["hang", "backlog_full", "drip"])
def test_the_deadline_covers_the_tcp_retry(dns_server: Callable[..., DnsServer], tcp: str) -> None:
    """The UDP answer is truncated, and over TCP the server accepts and says nothing ("hang"),
    never completes the handshake (its accept queue is full: the kernel drops the SYN), or
    sends its answer one byte every 20 ms ("drip")."""
    server = dns_server(tcp=tcp)
    worker = Background(resolve, "big.example.test", "A", server.address, 0.5, name="resolve")
    worker.thread.join(DRIP_FOR + 2)
    stage = {"hang": "the TCP answer", "backlog_full": "the TCP handshake", "drip": "the dripping answer"}[tcp]
    if worker.thread.is_alive():
        server.release()
        worker.thread.join(3)
        pytest.fail(
            f"resolve(timeout=0.5) still waited for {stage} {DRIP_FOR + 2} s later: the timeout "
            "covers the whole resolve, the TCP connection and every recv() on it included "
            "(connect too: socket.create_connection(server, timeout=...))"
        )
    try:
        got = worker.result()
    except TimeoutError:
        assert not server.dripped_out.is_set(), (
            f"resolve(timeout=0.5) gave up only after the drip ended ({DRIP_FOR} s): set the "
            "socket's timeout before every recv() to what is left of the one deadline, not once"
        )
        return
    pytest.fail(
        f"resolve(timeout=0.5) returned {len(got)} records after {stage} took {DRIP_FOR} s: every "
        "recv() must get what is left of the one deadline (settimeout before each), not a "
        "timeout of its own"
    )

"""Tests for the stream worker: real Redis is the oracle (XPENDING, XINFO, XLEN and the keys are read back).

Dead consumers are real: the test reads entries as another consumer (XREADGROUP) and never acks them,
or a handler raises after its effect. Idleness is set, not waited for: XCLAIM ... IDLE ms JUSTID
hands an entry back to its own consumer with the idle time the test chooses (and, JUSTID, without
counting a delivery), so a worker with min_idle_ms = 60 s sees it as idle at once.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import signal
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dojo.testing import Background, wait_until

from .redis_streams import APPLIED, BALANCES, Worker, credit_once, publish

STREAM, GROUP, DEAD = "payments", "ledger", "payments:dead"
MINUTE = 60_000  # min_idle_ms in these tests: nothing becomes idle by itself during a test


class Crash(BaseException):
    """The process dies inside the handler: not an Exception, so the worker does not catch it."""


@dataclass
class Recorder:
    """A handler that records every call (who, which id), fails on demand, and credits the amount."""

    r: redis.Redis
    fail: Callable[[str, int], bool] = lambda entry_id, attempt: False
    calls: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def attempts(self, entry_id: str) -> int:
        with self.lock:
            return sum(1 for _, seen in self.calls if seen == entry_id)

    def handler(self, consumer: str) -> Callable[[str, dict[str, str]], None]:
        def handle(entry_id: str, fields: dict[str, str]) -> None:
            with self.lock:
                self.calls.append((consumer, entry_id))
                attempt = sum(1 for _, seen in self.calls if seen == entry_id)
            if self.fail(entry_id, attempt):
                raise RuntimeError(f"handler failed on {entry_id} (attempt {attempt})")
            credit_once(self.r, entry_id, fields["account"], int(fields["amount"]))

        return handle


def worker(r: redis.Redis, rec: Recorder, consumer: str, **kwargs: object) -> Worker:
    kwargs.setdefault("min_idle_ms", MINUTE)
    return Worker(r, STREAM, GROUP, consumer, rec.handler(consumer), **kwargs)  # type: ignore[arg-type]


def publish_payments(r: redis.Redis, n: int, account: str = "alice", stream: str = STREAM) -> list[str]:
    return [publish(r, stream, {"account": account, "amount": str(i + 1)}) for i in range(n)]


def pending(r: redis.Redis, stream: str = STREAM) -> dict[str, tuple[str, int]]:
    """The group's pending entries list as the server holds it: id -> (consumer, delivery count)."""
    rows = r.xpending_range(stream, GROUP, "-", "+", 10_000)
    return {row["message_id"]: (row["consumer"], row["times_delivered"]) for row in rows}


def age(r: redis.Redis, idle_ms: int = 10 * MINUTE, stream: str = STREAM) -> None:
    """Make every pending entry look idle for idle_ms, keeping its owner and its delivery count."""
    for entry_id, (consumer, _) in pending(r, stream).items():
        r.xclaim(stream, GROUP, consumer, 0, [entry_id], idle=idle_ms, justid=True)


def read_and_die(r: redis.Redis, consumer: str, count: int) -> list[str]:
    """A consumer that reads entries (XREADGROUP '>') and dies before acking any of them."""
    if not any(g["name"] == GROUP for g in r.xinfo_groups(STREAM)):
        r.xgroup_create(STREAM, GROUP, id="0")
    reply = r.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=count)
    return [entry_id for entry_id, _ in reply[0][1]]


def consumers(r: redis.Redis) -> dict[str, int]:
    return {c["name"]: c["pending"] for c in r.xinfo_consumers(STREAM, GROUP)}


def balance(r: redis.Redis, account: str = "alice") -> int:
    return int(r.hget(BALANCES, account) or 0)


def amounts(r: redis.Redis, ids: list[str]) -> int:
    return sum(int(fields["amount"]) for entry_id, fields in r.xrange(STREAM) if entry_id in ids)


# -- stage 1: publish, read new entries with '>', handle, then XACK -------------------------------


@pytest.mark.stage(1, "read, handle, ack")
def test_publish_returns_the_id_the_server_gave_the_entry(redis_client: redis.Redis) -> None:
    first = publish(redis_client, STREAM, {"account": "alice", "amount": "5"})
    second = publish(redis_client, STREAM, {"account": "bob", "amount": "7"})
    assert redis_client.xrange(STREAM) == [(first, {"account": "alice", "amount": "5"}),
                                           (second, {"account": "bob", "amount": "7"})], (
        "publish must XADD the fields as they are (id '*': the server picks it) and return that id"
    )


@pytest.mark.stage(1, "read, handle, ack")
def test_each_entry_is_handled_in_id_order_and_acked(redis_client: redis.Redis) -> None:
    ids = publish_payments(redis_client, 12)
    rec = Recorder(redis_client)
    done = worker(redis_client, rec, "w1").run_once(count=100)
    assert [seen for _, seen in rec.calls] == ids, "one consumer must handle its entries in id order, each once"
    assert done == ids, f"run_once returns the ids it handled and acked, in order: expected {ids}, got {done}"
    assert pending(redis_client) == {}, (
        f"entries still pending after a successful handler: {pending(redis_client)}. XACK each one after "
        "its handler returned, or the group redelivers it as if this consumer had died"
    )
    assert balance(redis_client) == sum(range(1, 13))
    assert worker(redis_client, rec, "w1").run_once() == [], (
        "a second run found entries again: read new entries with '>' (never delivered to the group), "
        "not with '0' (this consumer's own history)"
    )


@pytest.mark.stage(1, "read, handle, ack")
def test_run_once_reads_at_most_count_new_entries(redis_client: redis.Redis) -> None:
    ids = publish_payments(redis_client, 5)
    w = worker(redis_client, Recorder(redis_client), "w1")
    assert w.run_once(count=2) == ids[:2], "count=2: the first two entries, and no more"
    assert w.run_once(count=1) == ids[2:3]
    assert w.run_once(count=10) == ids[3:]


@pytest.mark.stage(1, "read, handle, ack")
def test_a_round_reads_ten_entries_by_default(redis_client: redis.Redis) -> None:
    ids = publish_payments(redis_client, 12)
    w = Worker(redis_client, STREAM, GROUP, "w1", Recorder(redis_client).handler("w1"))
    assert w.run_once() == ids[:10], "run_once() reads count=10 entries by default"


@pytest.mark.stage(1, "read, handle, ack")
def test_the_group_and_the_stream_are_created_on_first_use(redis_client: redis.Redis) -> None:
    assert worker(redis_client, Recorder(redis_client), "w1").run_once() == []
    groups = [g["name"] for g in redis_client.xinfo_groups(STREAM)] if redis_client.exists(STREAM) else []
    assert groups == [GROUP], (
        f"after run_once on a stream that did not exist, the groups are {groups}: XGROUP CREATE ... MKSTREAM "
        "creates the group and an empty stream"
    )
    entry = publish(redis_client, STREAM, {"account": "alice", "amount": "1"})
    assert worker(redis_client, Recorder(redis_client), "w1").run_once() == [entry]


@pytest.mark.stage(1, "read, handle, ack")
def test_a_second_worker_joins_the_existing_group_without_resetting_it(redis_client: redis.Redis) -> None:
    ids = publish_payments(redis_client, 3)
    rec = Recorder(redis_client)
    assert worker(redis_client, rec, "w1").run_once() == ids
    try:
        again = worker(redis_client, rec, "w2").run_once()
    except redis.ResponseError as exc:
        pytest.fail(f"the second worker of the group got {exc!r}: BUSYGROUP means the group exists already; "
                    "catch it and use the group as it is")
    assert again == [] and len(rec.calls) == 3, (
        f"a worker joining the group re-handled {again}: the existing group's position must be kept "
        "(no XGROUP DESTROY, SETID or a second group)"
    )
    assert [g["name"] for g in redis_client.xinfo_groups(STREAM)] == [GROUP]


@pytest.mark.stage(1, "read, handle, ack")
def test_start_dollar_skips_the_history_and_zero_reads_it(redis_client: redis.Redis) -> None:
    old = publish_payments(redis_client, 3)
    rec = Recorder(redis_client)
    tail = Worker(redis_client, STREAM, "tail", "t1", rec.handler("t1"), start="$")
    assert tail.run_once() == [], "a group created at '$' starts after the last entry: the history is skipped"
    new = publish(redis_client, STREAM, {"account": "alice", "amount": "9"})
    assert tail.run_once() == [new], "a group created at '$' handles what is published after it"
    full = Worker(redis_client, STREAM, "audit", "a1", rec.handler("a1"))
    assert full.run_once() == [*old, new], "the default start '0' makes a new group read the whole stream"


@pytest.mark.stage(1, "read, handle, ack")
def test_block_ms_waits_for_the_next_entry_and_none_does_not_wait(redis_client: redis.Redis) -> None:
    w = worker(redis_client, Recorder(redis_client), "w1")
    quick = Background(w.run_once, name="run_once() on an empty stream")
    assert quick.result(timeout=5) == [], "block_ms=None must not block: XREADGROUP without BLOCK"
    waiting = Background(lambda: w.run_once(block_ms=30_000), name="run_once(block_ms=30000)")
    wait_until(lambda: int(redis_client.info("clients")["blocked_clients"]) == 1 or waiting.done, timeout=5,
               what="run_once(block_ms=30000) to block in XREADGROUP")
    assert not waiting.done, f"run_once(block_ms=30000) returned {waiting.result(0)} without blocking"
    entry = publish(redis_client, STREAM, {"account": "alice", "amount": "1"})
    assert waiting.result(timeout=5) == [entry], "the blocked read must wake up with the new entry"


@pytest.mark.stage(1, "read, handle, ack")
@pytest.mark.parametrize("kwargs", [{"min_idle_ms": -1}, {"max_deliveries": 0}, {"max_deliveries": -3}])
def test_bad_settings_are_refused(redis_client: redis.Redis, kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        worker(redis_client, Recorder(redis_client), "w1", **kwargs)


@pytest.mark.stage(1, "read, handle, ack")
@pytest.mark.parametrize("count", [0, -1])
def test_a_count_below_one_is_refused(redis_client: redis.Redis, count: int) -> None:
    with pytest.raises(ValueError):
        worker(redis_client, Recorder(redis_client), "w1").run_once(count=count)


@pytest.mark.stage(1, "read, handle, ack")
def test_the_limits_are_inclusive(redis_client: redis.Redis) -> None:
    """min_idle_ms = 0 is a valid setting: reclaim anything pending at once."""
    entry = publish(redis_client, STREAM, {"account": "alice", "amount": "4"})
    read_and_die(redis_client, "dead", 1)
    w = worker(redis_client, Recorder(redis_client), "w1", min_idle_ms=0, max_deliveries=2)
    assert w.run_once(count=1) == [entry], "min_idle_ms=0 reclaims a pending entry at once"


# -- stage 2: the effect, applied once per entry id ----------------------------------------------


@pytest.mark.stage(2, "the effect applied once")
def test_credit_once_applies_an_entry_once(redis_client: redis.Redis) -> None:
    assert credit_once(redis_client, "1-1", "alice", 5) is True, "the first credit of an entry returns True"
    assert credit_once(redis_client, "1-1", "alice", 5) is False, (
        "the same entry id again (a redelivery) must return False and change nothing"
    )
    assert credit_once(redis_client, "1-2", "alice", -2) is True
    assert credit_once(redis_client, "1-3", "bob", 7) is True
    assert redis_client.hgetall(BALANCES) == {"alice": "3", "bob": "7"}, (
        "each entry id's amount is added (HINCRBY) once to its account in the BALANCES hash"
    )
    assert redis_client.smembers(APPLIED) == {"1-1", "1-2", "1-3"}, (
        "the dedup record: the ids of the applied entries, in the APPLIED set"
    )


@pytest.mark.stage(2, "the effect applied once")
def test_credit_once_checks_and_writes_in_one_atomic_step(redis_client: redis.Redis) -> None:
    """MONITOR shows every command and its sender: a check in Python and a write after it is a race."""
    kwargs = redis_client.connection_pool.connection_kwargs
    watcher = redis.Redis(host=kwargs["host"], port=kwargs["port"], decode_responses=True)
    seen: list[tuple[str, str, str]] = []
    with watcher.monitor() as monitor:
        def record() -> None:
            for entry in monitor.listen():
                seen.append((entry["client_type"], str(entry.get("client_port")), entry["command"]))
                if "end-of-test" in entry["command"]:
                    return

        reader = Background(record, name="monitor")
        credit_once(redis_client, "1-1", "alice", 5)
        credit_once(redis_client, "1-1", "alice", 5)
        credit_once(redis_client, "1-2", "alice", 1)
        redis_client.echo("end-of-test")
        reader.result(timeout=5)
    watcher.close()
    unsafe = unguarded_commands(seen)
    assert not unsafe, (
        f"the client sent {unsafe} outside a transaction: the dedup record and the effect must change in one "
        "atomic step. Two consumers that both check SISMEMBER before either writes both apply the entry; a "
        "crash between SADD and HINCRBY loses the effect. Use one Lua script, or WATCH applied, check, "
        "then MULTI/EXEC (and retry when EXEC is refused)"
    )
    assert balance(redis_client) == 6


SCRIPTS = {"EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL"}
WRITES = {"SADD", "SREM", "HINCRBY", "HSET", "HSETNX", "HDEL", "SET", "SETNX", "DEL", "INCRBY", "EXPIRE"}


def unguarded_commands(seen: list[tuple[str, str, str]]) -> list[str]:
    """Commands on APPLIED or BALANCES sent outside a script or MULTI/EXEC: a write, or a read not under WATCH."""
    in_multi: dict[str, bool] = {}
    watching: dict[str, bool] = {}
    unsafe = []
    for who, port, command in seen:
        words = command.split()
        name = words[0].upper()
        if who == "lua" or name in SCRIPTS:
            continue
        if name == "MULTI":
            in_multi[port] = True
        elif name in ("EXEC", "DISCARD"):
            in_multi[port] = watching[port] = False
        elif name == "WATCH":
            watching[port] = APPLIED in words[1:] or BALANCES in words[1:]
        elif name == "UNWATCH":
            watching[port] = False
        elif (not in_multi.get(port) and (APPLIED in words[1:] or BALANCES in words[1:])
              and (name in WRITES or not watching.get(port))):
            unsafe.append(command)
    return unsafe


@pytest.mark.stage(2, "the effect applied once")
def test_concurrent_credits_of_one_entry_apply_it_once(redis_client: redis.Redis) -> None:
    kwargs = redis_client.connection_pool.connection_kwargs
    clients = [redis.Redis(host=kwargs["host"], port=kwargs["port"], decode_responses=True) for _ in range(6)]
    barrier = threading.Barrier(len(clients))

    def credit_all(client: redis.Redis) -> int:
        barrier.wait()
        return sum(credit_once(client, f"9-{i}", "alice", 1) for i in range(30))

    threads = [Background(credit_all, c, name=f"client-{i}") for i, c in enumerate(clients)]
    applied = sum(t.result(timeout=10) for t in threads)
    for client in clients:
        client.close()
    assert (applied, balance(redis_client)) == (30, 30), (
        f"6 clients credited the same 30 entry ids at once: {applied} calls returned True and the balance is "
        f"{balance(redis_client)}, both should be 30. The check and the write are not one atomic step"
    )


# -- stage 3: failures stay pending; the dead consumer's entries are reclaimed ------------------


@pytest.mark.stage(3, "failures and dead consumers")
def test_a_failed_handler_leaves_the_entry_pending_until_it_is_idle(redis_client: redis.Redis) -> None:
    ids = publish_payments(redis_client, 3)
    rec = Recorder(redis_client, fail=lambda entry_id, attempt: entry_id == ids[1] and attempt == 1)
    w = worker(redis_client, rec, "w1")
    assert w.run_once() == [ids[0], ids[2]], (
        "the handler raised on the second entry: the others are still handled and acked, the run goes on"
    )
    assert pending(redis_client) == {ids[1]: ("w1", 1)}, (
        f"pending entries after the handler raised on {ids[1]}: {pending(redis_client)}. The entry whose "
        "handler failed must stay pending (no XACK, and no NOACK on XREADGROUP): ack after handling, never "
        "before (a crash would lose it)"
    )
    assert w.run_once() == [] and rec.attempts(ids[1]) == 1, (
        "the failed entry was retried at once, before it was idle for min_idle_ms: don't re-read the "
        "consumer's own pending entries with '0'; they come back through XAUTOCLAIM once idle"
    )
    age(redis_client)
    assert w.run_once() == [ids[1]], "once idle for min_idle_ms, the failed entry is reclaimed and handled again"
    assert pending(redis_client) == {} and balance(redis_client) == 6


@pytest.mark.stage(3, "failures and dead consumers")
def test_a_dead_consumers_entries_are_reclaimed_only_once_idle(redis_client: redis.Redis) -> None:
    ids = publish_payments(redis_client, 4)
    read_and_die(redis_client, "dead", 4)
    rec = Recorder(redis_client)
    w = Worker(redis_client, STREAM, GROUP, "alive", rec.handler("alive"))  # min_idle_ms 60 s by default
    assert w.run_once() == [], (
        "entries the dead consumer read a moment ago were taken: reclaim only those idle for at least "
        "min_idle_ms (a slow consumer is not a dead one)"
    )
    age(redis_client, MINUTE - 5_000)
    assert w.run_once() == [], "entries idle for 55 s were taken with min_idle_ms = 60 s"
    age(redis_client)
    done = w.run_once()
    assert done == ids, (
        f"the dead consumer's entries, idle for 10 minutes, were not reclaimed (got {done}): XAUTOCLAIM "
        "with min_idle_ms hands them to this consumer"
    )
    assert pending(redis_client) == {} and consumers(redis_client).get("dead") == 0, (
        f"after the reclaim, XPENDING holds {pending(redis_client)}: handle and XACK the reclaimed entries"
    )
    assert balance(redis_client) == 10


@pytest.mark.stage(3, "failures and dead consumers")
def test_a_consumer_killed_between_its_effect_and_its_ack(redis_client: redis.Redis) -> None:
    ids = publish_payments(redis_client, 3)

    def die_after_the_effect(entry_id: str, fields: dict[str, str]) -> None:
        credit_once(redis_client, entry_id, fields["account"], int(fields["amount"]))
        if entry_id == ids[1]:
            raise Crash("the process was killed before XACK")

    doomed = Worker(redis_client, STREAM, GROUP, "doomed", die_after_the_effect, min_idle_ms=MINUTE)
    with pytest.raises(Crash):
        doomed.run_once()
    assert pending(redis_client) == {ids[1]: ("doomed", 1), ids[2]: ("doomed", 1)}, (
        f"after a crash inside the handler of {ids[1]}: pending {pending(redis_client)}. The crashed entry and "
        "the one read after it must stay pending; the one before it was acked. Ack after each handler, not "
        "before it and not all at the start"
    )
    rec = Recorder(redis_client)
    heir = worker(redis_client, rec, "heir")
    age(redis_client)
    assert heir.run_once() == ids[1:]
    assert balance(redis_client) == 6, (
        f"the balance is {balance(redis_client)}, not 6: the redelivered entry applied its effect twice. "
        "credit_once must skip an entry id already in APPLIED"
    )
    assert pending(redis_client) == {}


def serve_until_killed(url: str) -> None:
    """A worker process whose first handler applies the effect, says so, and hangs until it is killed."""
    r = redis.Redis.from_url(url, decode_responses=True)

    def handle(entry_id: str, fields: dict[str, str]) -> None:
        credit_once(r, entry_id, fields["account"], int(fields["amount"]))
        r.rpush("inside-the-handler", entry_id)
        r.blpop(["never"], 0)  # SIGKILL lands here: after the effect, before any XACK

    Worker(r, STREAM, GROUP, "doomed-process", handle, min_idle_ms=MINUTE).run_once()


@pytest.mark.stage(3, "failures and dead consumers")
def test_a_worker_process_killed_with_sigkill_inside_its_handler(redis_client: redis.Redis, redis_url: str) -> None:
    """No finally block, no exception handler runs in a process killed with SIGKILL: only the PEL remembers."""
    ids = publish_payments(redis_client, 3)
    process = multiprocessing.get_context("fork").Process(target=serve_until_killed, args=(redis_url,))
    process.start()
    try:
        wait_until(lambda: bool(redis_client.llen("inside-the-handler")) or not process.is_alive(), timeout=10,
                   what="the worker process to enter its handler")
        assert redis_client.lrange("inside-the-handler", 0, -1) == ids[:1], (
            f"the worker process ended (exit code {process.exitcode}) before its handler ran on {ids[0]}"
        )
        assert pending(redis_client) == dict.fromkeys(ids, ("doomed-process", 1)), (
            f"while the worker process is inside the handler of {ids[0]}, the pending list is "
            f"{pending(redis_client)}: every entry it read must be pending, none acked before its handler returned"
        )
    finally:
        os.kill(process.pid, signal.SIGKILL)  # type: ignore[arg-type]
        process.join(timeout=10)
    age(redis_client)
    assert worker(redis_client, Recorder(redis_client), "heir").run_once() == ids, (
        "the killed process's entries, idle for 10 minutes, must be reclaimed and handled by another worker"
    )
    assert balance(redis_client) == 6 and pending(redis_client) == {}, (
        f"balance {balance(redis_client)} (expected 6: the killed handler had already credited {ids[0]}, and a "
        f"redelivery must not credit it again), pending {pending(redis_client)}"
    )
    assert consumers(redis_client)["doomed-process"] == 0


@pytest.mark.stage(3, "failures and dead consumers")
def test_an_entry_deleted_while_pending_is_skipped(redis_client: redis.Redis) -> None:
    """Someone XDELs an entry a dead consumer held: 7.x drops it from the PEL, 6.2 claims it as nil."""
    ids = publish_payments(redis_client, 3)
    read_and_die(redis_client, "dead", 3)
    redis_client.xdel(STREAM, ids[1])
    age(redis_client)
    rec = Recorder(redis_client)
    try:
        done = worker(redis_client, rec, "w1").run_once()
    except (redis.RedisError, TypeError, KeyError, ValueError) as exc:
        pytest.fail(f"run_once raised {exc!r} on a pending entry that was deleted from the stream: XAUTOCLAIM "
                    "(Redis 6.2) returns it as a nil entry, which redis-py gives as (None, None). Skip it")
    assert done == [ids[0], ids[2]] and [seen for _, seen in rec.calls] == done, (
        f"with {ids[1]} deleted while pending, the round handled {done}: skip the deleted entry, handle the rest"
    )


@pytest.mark.stage(3, "failures and dead consumers")
def test_reclaimed_entries_come_first_and_new_ones_after(redis_client: redis.Redis) -> None:
    old = publish_payments(redis_client, 2)
    read_and_die(redis_client, "dead", 2)
    age(redis_client)
    new = publish_payments(redis_client, 2)
    rec = Recorder(redis_client)
    assert worker(redis_client, rec, "w1").run_once(count=5) == old + new, (
        "one run reclaims the idle entries (XAUTOCLAIM), handles them, then reads new ones with '>'"
    )


@pytest.mark.stage(3, "failures and dead consumers")
def test_the_reclaim_follows_the_cursor_past_busy_entries(redis_client: redis.Redis) -> None:
    """XAUTOCLAIM looks at a bounded slice of the pending list per call; the rest is behind its cursor."""
    publish_payments(redis_client, 300)
    read_and_die(redis_client, "busy", 300)  # a live consumer's fresh entries, first in the list
    stuck = publish_payments(redis_client, 5, account="bob")
    read_and_die(redis_client, "dead", 5)
    for entry_id in stuck:
        redis_client.xclaim(STREAM, GROUP, "dead", 0, [entry_id], idle=10 * MINUTE, justid=True)
    rec = Recorder(redis_client)
    done = worker(redis_client, rec, "w1").run_once(count=10)
    assert done == stuck, (
        f"5 idle entries behind 300 fresh ones: run_once(count=10) reclaimed {done}. XAUTOCLAIM returns a "
        "cursor: call it again from that cursor until it is 0-0 (or count entries are claimed)"
    )


@pytest.mark.stage(3, "failures and dead consumers")
def test_at_most_count_entries_are_reclaimed_per_run(redis_client: redis.Redis) -> None:
    ids = publish_payments(redis_client, 7)
    read_and_die(redis_client, "dead", 7)
    age(redis_client)
    w = worker(redis_client, Recorder(redis_client), "w1")
    assert [w.run_once(count=3), w.run_once(count=3), w.run_once(count=3)] == [ids[:3], ids[3:6], ids[6:]], (
        "run_once(count=3) reclaims at most 3 idle entries, the oldest first"
    )


@pytest.mark.stage(3, "failures and dead consumers")
def test_at_most_count_entries_are_reclaimed_across_cursor_pages(redis_client: redis.Redis) -> None:
    """Idle, busy, idle: the second XAUTOCLAIM call may claim only what the first one left of count."""
    first = publish_payments(redis_client, 5)
    read_and_die(redis_client, "dead", 5)
    age(redis_client)
    publish_payments(redis_client, 150)
    read_and_die(redis_client, "busy", 150)
    last = publish_payments(redis_client, 20, account="bob")
    read_and_die(redis_client, "dead", 20)
    for entry_id in last:
        redis_client.xclaim(STREAM, GROUP, "dead", 0, [entry_id], idle=10 * MINUTE, justid=True)
    done = worker(redis_client, Recorder(redis_client), "w1").run_once(count=10)
    assert done == first + last[:5], (
        f"run_once(count=10) with 5 idle entries, 150 busy ones, then 20 idle ones handled {len(done)} entries: "
        "it must claim at most count in all, so each further XAUTOCLAIM call asks for count minus what "
        "is already claimed"
    )


# -- stage 4: poison messages ----------------------------------------------------------------------


def always_fails(entry_id: str, attempt: int) -> bool:
    return True


@pytest.mark.stage(4, "poison messages")
@pytest.mark.parametrize("max_deliveries", [1, 3])
def test_a_poison_entry_is_moved_aside_after_exactly_max_deliveries(
    redis_client: redis.Redis, max_deliveries: int
) -> None:
    poison = publish(redis_client, STREAM, {"account": "mallory", "amount": "x", "note": "ünïcode ✓"})
    rec = Recorder(redis_client, fail=always_fails)
    w = worker(redis_client, rec, "w1", max_deliveries=max_deliveries)
    for _ in range(max_deliveries):
        w.run_once()
        age(redis_client)
    assert (redis_client.xlen(DEAD), pending(redis_client)) == (0, {poison: ("w1", max_deliveries)}), (
        f"after {max_deliveries} failed deliveries the entry must still be pending, with delivery count "
        f"{max_deliveries}: it is moved aside on its next delivery, when the count exceeds max_deliveries "
        f"(dead letters: {redis_client.xrange(DEAD)}, pending: {pending(redis_client)})"
    )
    for _ in range(2):
        w.run_once()
        age(redis_client)
    assert rec.attempts(poison) == max_deliveries, (
        f"a handler that always fails was called {rec.attempts(poison)} times with max_deliveries="
        f"{max_deliveries}: call it while the server's delivery count (XPENDING) is <= max_deliveries, "
        "and move the entry aside when the count exceeds it"
    )
    assert redis_client.xrange(DEAD)[0][1] == {"account": "mallory", "amount": "x", "note": "ünïcode ✓",
                                               "source_id": poison}, (
        f"the dead-letter stream holds {redis_client.xrange(DEAD)}: the entry's fields, intact, plus "
        "source_id = its original id"
    )
    assert redis_client.xlen(DEAD) == 1, (
        f"{redis_client.xlen(DEAD)} copies in the dead-letter stream: XACK the poison entry after moving it, "
        "or it is redelivered and moved again"
    )
    assert pending(redis_client) == {}, "the poison entry must be acked once it is in the dead-letter stream"
    assert redis_client.xlen(STREAM) == 1, "the original stream is left as it was (no XDEL)"


@pytest.mark.stage(4, "poison messages")
def test_the_delivery_count_is_the_servers_not_one_workers(redis_client: redis.Redis) -> None:
    """Each delivery goes to a fresh worker (a restarted process): only XPENDING knows the count."""
    poison = publish(redis_client, STREAM, {"account": "mallory", "amount": "1"})
    rec = Recorder(redis_client, fail=always_fails)
    for n in itertools.count():
        Worker(redis_client, STREAM, GROUP, f"w{n % 3}", rec.handler(f"w{n % 3}")).run_once()  # defaults
        age(redis_client)
        if redis_client.xlen(DEAD) or n == 6:
            break
    assert rec.attempts(poison) == 3 and redis_client.xlen(DEAD) == 1, (
        f"three workers in turn (each a new process, max_deliveries 3 by default) saw the poison entry "
        f"{rec.attempts(poison)} times and moved it aside {redis_client.xlen(DEAD)} times: count "
        "deliveries with the server's XPENDING times_delivered (XAUTOCLAIM increments it), not in the "
        "worker's memory"
    )


@pytest.mark.stage(4, "poison messages")
def test_the_delivery_count_of_an_entry_deep_in_the_pending_list(redis_client: redis.Redis) -> None:
    """Other consumers hold many pending entries before the poison one: look up that entry's own row."""
    publish_payments(redis_client, 40)
    read_and_die(redis_client, "busy", 40)
    poison = publish(redis_client, STREAM, {"account": "mallory", "amount": "1"})
    rec = Recorder(redis_client, fail=always_fails)
    w = worker(redis_client, rec, "w1", max_deliveries=2)
    for _ in range(4):
        w.run_once(count=3)
        for entry_id, (consumer, _) in pending(redis_client).items():
            if consumer == "w1":
                redis_client.xclaim(STREAM, GROUP, consumer, 0, [entry_id], idle=10 * MINUTE, justid=True)
    assert (rec.attempts(poison), [f["source_id"] for _, f in redis_client.xrange(DEAD)]) == (2, [poison]), (
        f"behind 40 entries pending for another consumer, the poison entry was handled {rec.attempts(poison)} "
        f"times with max_deliveries=2 and the dead letters are {redis_client.xrange(DEAD)}: ask XPENDING for "
        "that entry's own row (start = end = its id), not for the first rows of the whole pending list"
    )


@pytest.mark.stage(4, "poison messages")
def test_a_poison_entry_does_not_hold_up_the_others(redis_client: redis.Redis) -> None:
    ids = publish_payments(redis_client, 3)
    rec = Recorder(redis_client, fail=lambda entry_id, attempt: entry_id == ids[0])
    w = worker(redis_client, rec, "w1", max_deliveries=2, dead_letter_stream="parked")
    assert w.run_once() == ids[1:]
    for _ in range(2):
        age(redis_client)
        assert w.run_once() == []
    assert [fields["source_id"] for _, fields in redis_client.xrange("parked")] == [ids[0]], (
        "the poison entry goes to the dead_letter_stream given to the Worker"
    )
    assert not redis_client.exists(DEAD)
    assert pending(redis_client) == {} and balance(redis_client) == 5


# -- stage 5: several consumers, and a random failure schedule against a model --------------------


@pytest.mark.stage(5, "many consumers, any schedule")
def test_several_consumers_share_the_stream_each_entry_once(redis_client: redis.Redis) -> None:
    ids = publish_payments(redis_client, 120)
    kwargs = redis_client.connection_pool.connection_kwargs
    clients = [redis.Redis(host=kwargs["host"], port=kwargs["port"], decode_responses=True) for _ in range(4)]
    rec = Recorder(redis_client)
    barrier = threading.Barrier(len(clients))

    def consume(i: int) -> int:
        w = Worker(clients[i], STREAM, GROUP, f"c{i}", rec.handler(f"c{i}"), min_idle_ms=MINUTE)
        barrier.wait()
        handled = 0
        for _ in range(200):
            handled += len(w.run_once(count=5))
            if len(rec.calls) >= len(ids):
                break
        return handled

    threads = [Background(consume, i, name=f"consumer-{i}") for i in range(len(clients))]
    handled = [t.result(timeout=15) for t in threads]
    for client in clients:
        client.close()
    twice = [entry_id for entry_id, n in Counter(seen for _, seen in rec.calls).items() if n > 1]
    assert not twice, f"entries handled more than once by the group's consumers: {twice[:5]}"
    assert {seen for _, seen in rec.calls} == set(ids) and sum(handled) == len(ids), (
        "every entry must be handled by exactly one consumer of the group, and acked"
    )
    assert pending(redis_client) == {} and balance(redis_client) == sum(range(1, 121))
    assert set(consumers(redis_client)) == {f"c{i}" for i in range(4)}, (
        "each worker reads under its own consumer name"
    )


@dataclass
class Plan:
    fails: int  # the handler raises on its first `fails` calls for this entry
    dies_after_effect: bool  # then, once, applies the effect and raises before the ack


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    plans=st.lists(st.builds(Plan, st.integers(0, 4), st.booleans()), min_size=1, max_size=8),
    max_deliveries=st.integers(1, 3),
    schedule=st.lists(st.tuples(st.integers(0, 2), st.integers(1, 4)), min_size=1, max_size=12),
)
@pytest.mark.stage(5, "many consumers, any schedule")
def test_any_failure_schedule_ends_applied_once_or_dead_lettered(
    redis_client: redis.Redis, plans: list[Plan], max_deliveries: int, schedule: list[tuple[int, int]]
) -> None:
    redis_client.flushdb()
    ids = [publish(redis_client, STREAM, {"account": "alice", "amount": str(10 ** i)}) for i in range(len(plans))]
    plan = dict(zip(ids, plans, strict=True))
    calls: Counter[str] = Counter()

    def handle(entry_id: str, fields: dict[str, str]) -> None:
        calls[entry_id] += 1
        if calls[entry_id] <= plan[entry_id].fails:
            raise RuntimeError("handler failed")
        credit_once(redis_client, entry_id, fields["account"], int(fields["amount"]))
        if plan[entry_id].dies_after_effect and calls[entry_id] == plan[entry_id].fails + 1:
            raise RuntimeError("died after the effect, before the ack")

    workers = [Worker(redis_client, STREAM, GROUP, f"w{i}", handle, min_idle_ms=MINUTE,
                      max_deliveries=max_deliveries) for i in range(3)]
    rounds = itertools.chain(schedule, itertools.cycle([(0, 4), (1, 4), (2, 4)]))
    for _, (who, count) in zip(range(len(schedule) + 40), rounds, strict=False):
        workers[who].run_once(count=count)
        age(redis_client)
    needed = {i: p.fails + 1 + p.dies_after_effect for i, p in plan.items()}
    dead = {i for i in ids if needed[i] > max_deliveries}
    applied = {i for i in ids if plan[i].fails < max_deliveries}
    got_dead = [fields["source_id"] for _, fields in redis_client.xrange(DEAD)]
    story = (f"max_deliveries={max_deliveries}; per entry (handler failures, dies after the effect): "
             f"{[(p.fails, p.dies_after_effect) for p in plans]}")
    assert sorted(got_dead) == sorted(dead), (
        f"{story}: expected {sorted(dead)} in the dead-letter stream (more failures than max_deliveries), "
        f"got {got_dead}"
    )
    assert {i: calls[i] for i in ids} == {i: min(needed[i], max_deliveries) for i in ids}, (
        f"{story}: the handler calls per entry should be min(failures + 1, max_deliveries)"
    )
    assert balance(redis_client) == sum(10 ** n for n, i in enumerate(ids) if i in applied), (
        f"{story}: the balance must hold each applied entry's amount exactly once"
    )
    assert pending(redis_client) == {}, f"{story}: entries left pending: {pending(redis_client)}"

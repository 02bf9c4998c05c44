"""Tests for the transactional outbox: real Postgres is the oracle (the tests read the tables).

Races are forced, not hoped for: the test holds a transaction open (an order not yet committed, a
consumer's row locked), waits until pg_stat_activity shows the other side waiting on a lock or
the call returned, and only then lets go. A relay is killed with SIGKILL in the middle of a batch
in a real subprocess. Notifications are observed on the test's own LISTENing connection, ordered
against a marker NOTIFY, never against a clock.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from psycopg.types.json import Jsonb

from dojo.testing import Background, wait_until

from .pg_outbox import Event, Relay, apply_event, place_order

Conn = psycopg.Connection[Any]
CHANNEL = "outbox"  # the README fixes the channel and the payload (the event's id)


class BrokerDown(Exception):
    """What a test's publish raises: the broker refused the event."""


@pytest.fixture
def postgres_schema(kata_file: Callable[[str], Path]) -> Sequence[Path]:
    """Every test database is a fresh copy of schema.sql."""
    return [kata_file("schema.sql")]


@pytest.fixture
def connect(postgres_dsn: str) -> Iterator[Callable[..., Conn]]:
    """Opens autocommit connections (optionally named for pg_stat_activity); closes them after."""
    opened: list[Conn] = []

    def open_one(name: str = "test") -> Conn:
        conn = psycopg.connect(named(postgres_dsn, name), autocommit=True)
        opened.append(conn)
        return conn

    yield open_one
    for conn in opened:
        conn.close()


Connect = Callable[..., Conn]


def named(dsn: str, name: str) -> str:
    """The test's DSN with an application_name, so pg_stat_activity shows which call is which."""
    return make_conninfo(dsn, application_name=name)


class Broker:
    """Records what relays publish, in the order publish was called, from any thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.log: list[tuple[str, Event]] = []

    def publisher(self, relay: str = "relay") -> Callable[[Event], None]:
        def publish(event: Event) -> None:
            with self.lock:
                self.log.append((relay, event))

        return publish

    def ids(self, relay: str | None = None) -> list[int]:
        with self.lock:
            return [event.id for who, event in self.log if relay is None or who == relay]


def outbox(conn: Conn) -> list[tuple[int, bool]]:
    """(id, published) of every outbox row, in id order."""
    return [(r[0], r[1]) for r in conn.execute("SELECT id, published_at IS NOT NULL FROM outbox ORDER BY id")]


def event_ids(conn: Conn) -> list[int]:
    return [row[0] for row in outbox(conn)]


def unpublished(conn: Conn) -> list[int]:
    return [event_id for event_id, published in outbox(conn) if not published]


def drain(relay: Relay) -> None:
    """run_once until it publishes nothing."""
    for _ in range(100):
        if relay.run_once() == 0:
            return
    raise AssertionError("run_once kept publishing after 100 calls on a handful of events: does it mark them?")


def notifications(listener: Conn, until: str) -> list[str]:
    """The payloads on `outbox`, in arrival order, up to and including `until` (a marker or an id)."""
    got: list[str] = []
    for note in listener.notifies(timeout=10):
        if note.channel == CHANNEL:
            got.append(note.payload)
        if note.payload == until:
            return got
    raise AssertionError(f"no notification {until!r} on channel {CHANNEL!r} within 10 s; got {got}")


def raw_events(conn: Conn, ids: Sequence[int]) -> None:
    """Outbox rows written straight into the table, in this physical order, without a NOTIFY."""
    for event_id in ids:
        payload = {"type": "order_placed", "order_id": event_id, "customer": "raw", "amount": 1}
        conn.execute("INSERT INTO outbox (id, payload) VALUES (%s, %s)", [event_id, Jsonb(payload)])


def settle(watcher: Conn, workers: dict[str, Background[Any]], what: str) -> None:
    """Return once every worker has returned or its backend (application_name = key) waits on a lock."""

    def settled() -> bool:
        rows = watcher.execute(
            "SELECT application_name FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND application_name = ANY(%s)",
            [list(workers)],
        ).fetchall()
        waiting = {row[0] for row in rows}
        return all(worker.done or name in waiting for name, worker in workers.items())

    wait_until(settled, timeout=10, what=what)


FAIL_ONCE = """
CREATE SEQUENCE fault_hits;
CREATE FUNCTION fail_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- nextval survives the rollback: only the first write to the table fails
    IF nextval('fault_hits') = 1 THEN
        RAISE EXCEPTION 'injected by the test: the write to % failed', TG_TABLE_NAME;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER fail_once BEFORE INSERT OR UPDATE ON {table} FOR EACH ROW EXECUTE FUNCTION fail_once();
"""


# -- stage 1: the outbox write ---------------------------------------------------------------------


@pytest.mark.stage(1, "the outbox write")
def test_place_order_writes_the_order_and_its_event(connect: Connect) -> None:
    conn = connect()
    first = place_order(conn, "ada", 1250)
    second = place_order(conn, "bob", 1)
    orders = conn.execute("SELECT id, customer, amount FROM orders ORDER BY id").fetchall()
    assert orders == [(first, "ada", 1250), (second, "bob", 1)], (
        f"orders table: {orders}; place_order returned {first}, {second}"
    )
    events = conn.execute("SELECT payload, published_at FROM outbox ORDER BY id").fetchall()
    assert events == [
        ({"type": "order_placed", "order_id": first, "customer": "ada", "amount": 1250}, None),
        ({"type": "order_placed", "order_id": second, "customer": "bob", "amount": 1}, None),
    ], f"outbox rows (payload, published_at): {events}; each order writes one event, unpublished"


FAILURES = ["amount_refused", "event_write_fails", "caller_rolls_back"]


@pytest.mark.stage(1, "the outbox write")
@pytest.mark.parametrize("failure", FAILURES)
def test_a_failed_order_leaves_no_event_and_no_notification(connect: Connect, failure: str) -> None:
    conn, listener = connect(), connect()
    listener.execute(f"LISTEN {CHANNEL}")
    if failure == "amount_refused":  # the orders table's CHECK (amount > 0) refuses it
        with pytest.raises(psycopg.Error):
            place_order(conn, "eve", 0)
    elif failure == "event_write_fails":  # the order row is written, then the event's INSERT fails
        conn.execute(FAIL_ONCE.format(table="outbox"))
        with pytest.raises(psycopg.Error):
            place_order(conn, "eve", 10)
    else:  # place_order succeeds inside the caller's transaction, which then rolls back
        with conn.transaction():
            place_order(conn, "eve", 10)
            raise psycopg.Rollback()
    left = (
        conn.execute("SELECT count(*) FROM orders").fetchone(),
        conn.execute("SELECT count(*) FROM outbox").fetchone(),
    )
    assert left == ((0,), (0,)), (
        f"after a failed order ({failure}) the tables hold (orders, events) = {left}: the order and its event "
        "must be written in ONE transaction (the caller's, if it has one: conn.transaction() nests as a "
        "savepoint), so both or neither commit"
    )
    place_order(conn, "zoe", 5)
    [(good,)] = conn.execute("SELECT id FROM outbox").fetchall()
    got = notifications(listener, until=str(good))
    assert got == [str(good)], (
        f"notifications on {CHANNEL!r}: {got}; only the committed order's event {good} may be announced. "
        "NOTIFY inside the order's transaction: Postgres delivers it on commit and drops it on rollback"
    )


@pytest.mark.stage(1, "the outbox write")
def test_the_notification_is_sent_on_commit_with_the_event_id(connect: Connect) -> None:
    conn, listener, other = connect(), connect(), connect()
    listener.execute(f"LISTEN {CHANNEL}")
    with conn.transaction():
        place_order(conn, "ada", 100)
        [(event_id,)] = conn.execute("SELECT id FROM outbox").fetchall()
        other.execute(f"NOTIFY {CHANNEL}, 'marker'")  # committed while the order is still open
    got = notifications(listener, until=str(event_id))
    assert got == ["marker", str(event_id)], (
        f"notifications in arrival order: {got}. The order's notification must come after the marker, sent "
        "while the order was uncommitted (NOTIFY is delivered at commit), and carry the event's id as payload"
    )


@pytest.mark.stage(1, "the outbox write")
def test_an_order_too_big_for_a_notification_is_still_placed_and_announced(connect: Connect) -> None:
    conn, listener = connect(), connect()
    listener.execute(f"LISTEN {CHANNEL}")
    customer = "x" * 9000  # a NOTIFY payload must be shorter than 8000 bytes
    try:
        place_order(conn, customer, 100)
    except psycopg.Error as exc:
        pytest.fail(
            f"place_order raised {exc!r} for a 9000-character customer: the NOTIFY payload is limited to 8000 "
            "bytes, so send the event's id, never the event itself (the relay reads the row)"
        )
    [(event_id,)] = conn.execute("SELECT id FROM outbox").fetchall()
    assert notifications(listener, until=str(event_id)) == [str(event_id)]


# -- stage 2: the relay, one batch at a time ---------------------------------------------------------


@pytest.mark.stage(2, "the relay")
def test_run_once_publishes_a_batch_in_id_order_and_marks_it(connect: Connect, postgres_dsn: str) -> None:
    conn = connect()
    for n in range(1, 6):
        place_order(conn, f"c{n}", n)
    ids = event_ids(conn)
    payloads = dict(conn.execute("SELECT id, payload FROM outbox").fetchall())
    broker = Broker()
    relay = Relay(postgres_dsn, broker.publisher(), batch_size=3)
    assert relay.run_once() == 3, "run_once returns how many events it published: at most batch_size"
    assert broker.ids() == ids[:3], f"published {broker.ids()}; expected the 3 oldest events {ids[:3]}, in id order"
    assert unpublished(conn) == ids[3:], (
        f"unpublished after one batch: {unpublished(conn)}, expected {ids[3:]}: set published_at on the events "
        "that were published, and only on those"
    )
    assert relay.run_once() == 2 and relay.run_once() == 0, "then the last 2, then nothing"
    assert broker.ids() == ids, f"published {broker.ids()}: each event once, in id order, nothing republished"
    assert all(event.payload == payloads[event.id] for _, event in broker.log), "publish(Event(id, payload of the row))"
    assert unpublished(conn) == []


@pytest.mark.stage(2, "the relay")
@pytest.mark.parametrize("size", [0, -1])
def test_a_batch_size_below_one_is_refused(postgres_dsn: str, size: int) -> None:
    with pytest.raises(ValueError):
        Relay(postgres_dsn, Broker().publisher(), batch_size=size)
    Relay(postgres_dsn, Broker().publisher(), batch_size=1)  # one is the smallest batch, and fine


@pytest.mark.stage(2, "the relay")
def test_the_default_batch_is_100_events(connect: Connect, postgres_dsn: str) -> None:
    conn = connect()
    with conn.transaction():
        raw_events(conn, range(1, 102))
    broker = Broker()
    relay = Relay(postgres_dsn, broker.publisher())
    assert (relay.run_once(), relay.run_once()) == (100, 1), "the README fixes batch_size's default at 100"
    assert broker.ids() == list(range(1, 102))


@pytest.mark.stage(2, "the relay")
def test_events_leave_in_id_order_not_in_the_tables_order(connect: Connect, postgres_dsn: str) -> None:
    conn = connect()
    raw_events(conn, [103, 101, 104, 102])  # stored in this order: a scan without ORDER BY returns it
    broker = Broker()
    relay = Relay(postgres_dsn, broker.publisher(), batch_size=2)
    drain(relay)
    assert broker.ids() == [101, 102, 103, 104], (
        f"published {broker.ids()}: without ORDER BY id Postgres returns rows in whatever order it finds them "
        "(here, the order they were stored); the oldest batch is ORDER BY id LIMIT batch_size"
    )


@pytest.mark.stage(2, "the relay")
def test_a_failing_publish_loses_nothing(connect: Connect, postgres_dsn: str) -> None:
    conn = connect()
    for n in range(1, 6):
        place_order(conn, "ada", n)
    ids = event_ids(conn)
    broker = Broker()
    record = broker.publisher()
    refused: list[int] = []

    def flaky(event: Event) -> None:
        if event.id == ids[2] and not refused:  # the broker refuses the third event, once
            refused.append(event.id)
            raise BrokerDown(f"broker refused event {event.id}")
        record(event)

    relay = Relay(postgres_dsn, flaky, batch_size=5)
    raised: BaseException | None = None
    try:
        relay.run_once()
    except BrokerDown as exc:
        raised = exc
    assert set(ids[2:]) <= set(unpublished(conn)), (
        f"after publish raised on event {ids[2]}, the unpublished events are {unpublished(conn)}: the event "
        f"whose publish raised, and every later one ({ids[2:]}), must stay unpublished, or they are lost"
    )
    assert raised is not None, "publish raised BrokerDown: run_once must let that error out, not swallow it"
    drain(relay)
    assert unpublished(conn) == [], f"still unpublished: {unpublished(conn)}"
    first_seen = list(dict.fromkeys(broker.ids()))
    assert first_seen == ids, (
        f"published {broker.ids()}: every event at least once, first published in id order (a redelivery of "
        "the events before the failure is fine: at-least-once)"
    )
    assert broker.ids()[-3:] == ids[2:], "after the failure, the relay resumes at the event that failed"


@pytest.mark.stage(2, "the relay")
def test_an_event_committed_during_a_batch_is_left_for_the_next_one(connect: Connect, postgres_dsn: str) -> None:
    conn, shop = connect(), connect()
    place_order(conn, "ada", 1)
    broker = Broker()
    record = broker.publisher()

    def publish(event: Event) -> None:
        record(event)
        if len(broker.ids()) == 1:
            place_order(shop, "bob", 2)  # a new order commits while the batch is being published

    relay = Relay(postgres_dsn, publish, batch_size=10)
    relay.run_once()
    [first, late] = event_ids(conn)
    marked = [event_id for event_id, published in outbox(conn) if published]
    assert set(marked) <= set(broker.ids()), (
        f"event {late}, committed while the batch was being published, was marked published without being "
        f"published (published: {broker.ids()}): mark the ids you published (WHERE id = ANY(...)), not "
        "'everything unpublished'"
    )
    drain(relay)
    assert broker.ids() == [first, late]


# -- stage 3: the idempotent consumer --------------------------------------------------------------


def order_event(event_id: int, customer: str, amount: int) -> Event:
    return Event(event_id, {"type": "order_placed", "order_id": event_id, "customer": customer, "amount": amount})


def totals(conn: Conn) -> dict[str, int]:
    return dict(conn.execute("SELECT customer, total FROM customer_totals").fetchall())


def processed(conn: Conn) -> list[int]:
    return [row[0] for row in conn.execute("SELECT event_id FROM processed_events ORDER BY event_id")]


@pytest.mark.stage(3, "the idempotent consumer")
def test_the_consumer_applies_each_event_once(connect: Connect) -> None:
    conn = connect()
    outcomes = [
        apply_event(conn, order_event(1, "ada", 100)),
        apply_event(conn, order_event(1, "ada", 100)),  # redelivered
        apply_event(conn, order_event(2, "ada", 50)),
        apply_event(conn, order_event(3, "bob", 7)),
        apply_event(conn, order_event(2, "ada", 50)),
    ]
    assert outcomes == [True, False, True, True, False], (
        f"apply_event returned {outcomes}: True when it applied the event, False for a duplicate delivery"
    )
    assert totals(conn) == {"ada": 150, "bob": 7}, f"totals {totals(conn)}: each event's amount added once"
    assert processed(conn) == [1, 2, 3]


@pytest.mark.stage(3, "the idempotent consumer")
def test_two_deliveries_of_one_event_at_once_apply_it_once(connect: Connect) -> None:
    """Both deliveries check 'seen before?' while neither has committed: the test holds ada's total."""
    watcher, holder = connect(), connect()
    watcher.execute("INSERT INTO customer_totals VALUES ('ada', 0)")
    event = order_event(7, "ada", 100)
    with holder.transaction():
        holder.execute("SELECT total FROM customer_totals WHERE customer = 'ada' FOR UPDATE")
        workers = {name: Background(apply_event, connect(name), event, name=name) for name in ("first", "second")}
        settle(watcher, workers, "both deliveries to wait on a lock (ada's total, or each other)")
    outcomes = []
    for name, worker in workers.items():
        try:
            outcomes.append(worker.result(10))
        except psycopg.errors.UniqueViolation as exc:
            pytest.fail(
                f"the {name} delivery raised {exc!r}: check-then-insert lets both deliveries see 'not seen yet'; "
                "let the primary key decide: INSERT ... ON CONFLICT DO NOTHING RETURNING, first thing in the "
                "transaction (a duplicate waits for the first delivery to commit, then finds the row)"
            )
    assert totals(watcher) == {"ada": 100}, (
        f"totals {totals(watcher)}: one event delivered twice at once was applied twice: the check and the "
        "effect must be one transaction guarded by processed_events' primary key"
    )
    assert sorted(outcomes) == [False, True], f"outcomes {outcomes}: one delivery applies it, the other reports False"


@pytest.mark.stage(3, "the idempotent consumer")
def test_a_consumer_that_fails_midway_applies_the_redelivery(connect: Connect) -> None:
    conn = connect()
    conn.execute(FAIL_ONCE.format(table="customer_totals"))  # the first write of the effect fails
    event = order_event(4, "ada", 100)
    with pytest.raises(psycopg.Error):
        apply_event(conn, event)
    assert processed(conn) == [], (
        f"the effect failed, but processed_events says {processed(conn)}: recorded as done without its effect, "
        "the redelivery will be skipped and the order lost. Record and effect commit together, in one transaction"
    )
    assert apply_event(conn, event) is True and totals(conn) == {"ada": 100}


# -- stage 4: crashes and rivals -------------------------------------------------------------------

KILLED_RELAY = """
import importlib.util, os, signal, sys
import psycopg
spec = importlib.util.spec_from_file_location("pg_outbox", sys.argv[1])
outbox = importlib.util.module_from_spec(spec)
sys.modules["pg_outbox"] = outbox  # dataclasses look their module up
spec.loader.exec_module(outbox)
consumer = psycopg.connect(sys.argv[2], autocommit=True)
published = 0

def publish(event):
    global published
    outbox.apply_event(consumer, event)
    print("published", event.id, flush=True)
    published += 1
    if published == 3:
        os.kill(os.getpid(), signal.SIGKILL)  # the relay dies in the middle of its batch

outbox.Relay(sys.argv[3], publish, batch_size=5).run_once()
"""


@pytest.mark.stage(4, "crashes and rivals")
def test_a_relay_killed_mid_batch_loses_nothing_and_each_effect_is_applied_once(
    connect: Connect, postgres_dsn: str, kata_file: Callable[[str], Path]
) -> None:
    conn = connect()
    amounts = {f"c{n}": n for n in range(1, 9)}
    for customer, amount in amounts.items():
        place_order(conn, customer, amount)
    ids = event_ids(conn)
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            KILLED_RELAY,
            str(kata_file("pg_outbox.py")),
            postgres_dsn,
            named(postgres_dsn, "killed"),
        ],
        capture_output=True,
        text=True,
        timeout=20,
    )
    before = [int(line.split()[1]) for line in killed.stdout.splitlines() if line.startswith("published")]
    assert before == ids[:3], f"the relay to kill published {before} (exit {killed.returncode}): {killed.stderr[-800:]}"
    # Postgres notices the dead client and rolls its transaction back, releasing its locks.
    wait_until(
        lambda: (
            conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'killed'").fetchone() == (0,)
        ),
        10,
        "Postgres to end the killed relay's session",
    )
    broker = Broker()
    record = broker.publisher()
    consumer = connect()

    def publish(event: Event) -> None:
        apply_event(consumer, event)
        record(event)

    drain(Relay(postgres_dsn, publish, batch_size=5))
    lost = sorted(set(ids) - set(before) - set(broker.ids()))
    assert not lost, (
        f"events {lost} were never published: the killed relay marked them published before publishing them "
        "(or committed the mark before the publish). Mark after publish, in the transaction that a crash rolls back"
    )
    assert broker.ids() == sorted(broker.ids()), f"the next relay published {broker.ids()}: in id order"
    assert totals(consumer) == amounts, (
        f"consumer totals {totals(consumer)}, expected {amounts}: the events redelivered after the crash must be "
        "applied once (the consumer dedupes by event id)"
    )


@pytest.mark.stage(4, "crashes and rivals")
def test_two_relays_never_publish_out_of_order(connect: Connect, postgres_dsn: str) -> None:
    watcher = connect()
    for n in range(1, 13):
        place_order(watcher, "ada", n)
    ids = event_ids(watcher)
    broker = Broker()
    record_a = broker.publisher("A")
    entered, release = threading.Event(), threading.Event()

    def slow_publish(event: Event) -> None:
        record_a(event)
        entered.set()
        release.wait(10)  # relay A's batch stays in flight until the test lets go

    relay_a = Background(Relay(named(postgres_dsn, "A"), slow_publish, batch_size=5).run_once, name="relay A")
    wait_until(entered.is_set, 10, "relay A to publish its first event")
    relay_b = Background(Relay(named(postgres_dsn, "B"), broker.publisher("B"), batch_size=5).run_once, name="relay B")
    settle(watcher, {"B": relay_b}, "relay B to return or to wait on a lock")
    early = broker.ids("B")
    release.set()
    relay_a.result(10)
    returned_b = relay_b.result(10)
    assert returned_b == len(broker.ids("B")), (
        f"relay B's run_once returned {returned_b} but published {broker.ids('B')}: it returns how many it published"
    )
    assert not early, (
        f"relay B published {early} while relay A's batch (from event {ids[0]}) was still in flight: "
        "FOR UPDATE SKIP LOCKED spreads events over relays and breaks their order (and without any lock "
        "both publish the same events). One relay publishes at a time: a lock both relays take"
    )
    drain(Relay(postgres_dsn, broker.publisher("C"), batch_size=5))
    assert broker.ids() == ids, f"all relays together published {broker.ids()}: each event once, in id order"


@pytest.mark.stage(4, "crashes and rivals")
def test_an_event_that_commits_later_with_a_lower_id_is_not_overtaken(connect: Connect, postgres_dsn: str) -> None:
    watcher, holder = connect(), connect()
    broker = Broker()
    with holder.transaction():
        place_order(holder, "early", 1)  # takes the lower id, commits last
        [(early,)] = holder.execute("SELECT id FROM outbox").fetchall()
        late = Background(place_order, connect("late"), "late", 2, name="place_order(late)")
        settle(watcher, {"late": late}, "the later order to commit or to wait on a lock")
        relay = Background(Relay(named(postgres_dsn, "relay"), broker.publisher(), batch_size=10).run_once)
        settle(watcher, {"relay": relay}, "the relay to return or to wait on a lock")
        overtaking = broker.ids()
    late.result(10)
    relay.result(10)
    assert not overtaking, (
        f"the relay published {overtaking} while event {early} (a lower id) was not yet committed: it will be "
        "published after them, out of order. Ids are taken at INSERT, not at commit: make outbox writers "
        "commit in id order (a lock held until commit, e.g. pg_advisory_xact_lock, taken before the event's INSERT)"
    )
    drain(Relay(postgres_dsn, broker.publisher(), batch_size=10))
    assert broker.ids() == event_ids(watcher) and broker.ids()[0] == early, f"published {broker.ids()}"


STALL_EARLY = """
CREATE FUNCTION stall_early() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- the early order's event INSERT has taken its id and now waits for the test to let go
    IF NEW.payload->>'customer' = 'early' THEN PERFORM pg_advisory_lock_shared(4242, 1); END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER stall_early AFTER INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION stall_early();
"""


@pytest.mark.stage(4, "crashes and rivals")
def test_an_event_whose_insert_stalls_after_taking_its_id_is_not_overtaken(connect: Connect, postgres_dsn: str) -> None:
    watcher, holder = connect(), connect()
    watcher.execute(STALL_EARLY)
    holder.execute("SELECT pg_advisory_lock(4242, 1)")
    broker = Broker()
    try:
        early = Background(place_order, connect("early"), "early", 1, name="place_order(early)")
        settle(watcher, {"early": early}, "the early order's event INSERT to wait on the test's lock")
        late = Background(place_order, connect("late"), "late", 2, name="place_order(late)")
        settle(watcher, {"late": late}, "the later order to commit or to wait on a lock")
        relay = Background(Relay(named(postgres_dsn, "relay"), broker.publisher(), batch_size=10).run_once)
        settle(watcher, {"relay": relay}, "the relay to return or to wait on a lock")
        overtaking = broker.ids()
    finally:
        holder.execute("SELECT pg_advisory_unlock(4242, 1)")
    for worker in (early, late, relay):
        worker.result(10)
    assert not overtaking, (
        f"the relay published {overtaking} while the early order's event, whose id is lower, was not yet "
        "committed. Ids are taken at INSERT, not at commit: take the writers' lock before the event's INSERT "
        "(a lock taken after it comes too late: the id is already out)"
    )
    drain(Relay(postgres_dsn, broker.publisher(), batch_size=10))
    customers = [event.payload["customer"] for _, event in broker.log]
    assert broker.ids() == event_ids(watcher) and customers == ["early", "late"], f"published {broker.log}"


# -- stage 5: run: LISTEN and poll -----------------------------------------------------------------


@pytest.mark.stage(5, "LISTEN and poll")
def test_a_notification_wakes_the_relay_long_before_its_poll(connect: Connect, postgres_dsn: str) -> None:
    conn = connect()
    place_order(conn, "ada", 1)  # committed before the relay starts: found by its first look
    broker = Broker()
    stop = threading.Event()
    relay = Relay(postgres_dsn, broker.publisher(), batch_size=2, poll_interval=60)
    looks = count_looks(relay)
    runner = Background(relay.run, stop, name="relay.run")
    wait_until(lambda: len(broker.ids()) == 1 or runner.done, 10, "run to publish the event already there")
    place_order(conn, "bob", 2)
    try:
        wait_until(lambda: len(broker.ids()) == 2 or runner.done, 10, "the NOTIFY to wake the relay")
        with conn.transaction():  # five events, one notification: a wake-up publishes until nothing is left
            raw_events(conn, range(1001, 1006))
            conn.execute(f"NOTIFY {CHANNEL}, '1005'")
        wait_until(lambda: len(broker.ids()) == 7 or runner.done, 10, "the relay to publish all five")
        # Allowed after this: the look in progress, one that finds the batch short, and one per notification
        # (2) that arrived while the relay was draining; a relay that never waits makes many more.
        idle = looks[0]
        spinning = still_looking(looks, idle + 8)
    except AssertionError:
        pytest.fail(
            f"published {broker.ids()} of {event_ids(conn)}; poll_interval is 60 s, so only a notification can "
            "wake the relay in time. LISTEN outbox before the first look, on an autocommit connection (LISTEN "
            "takes effect at commit), wait on conn.notifies(timeout=poll_interval), and after a wake-up run "
            "batches until one comes back short"
        )
    finally:
        stop.set()
        conn.execute(f"NOTIFY {CHANNEL}, 'stop'")  # wakes a relay waiting for its 60 s poll
    runner.result(10)
    assert broker.ids() == event_ids(conn), f"published {broker.ids()}: each once, in id order"
    assert not spinning, (
        f"with every event published and no notification sent, run kept calling run_once ({looks[0] - idle} "
        "more looks): it never waits. Wait for a notification or poll_interval between looks, and stop "
        "draining when a batch comes back short"
    )


def count_looks(relay: Relay, after: Callable[[int], None] = lambda n: None) -> list[int]:
    """Counts run's calls of relay.run_once (the README: run looks through run_once); after(n) follows look n."""
    looks = [0]
    look = relay.run_once

    def counted() -> int:
        published = look()
        looks[0] += 1
        after(looks[0])
        return published

    relay.run_once = counted  # type: ignore[method-assign]
    return looks


def still_looking(looks: list[int], more: int) -> bool:
    """True if run_once is called `more` times within 0.5 s while nothing happens (a relay that spins)."""
    try:
        wait_until(lambda: looks[0] >= more, timeout=0.5)
    except AssertionError:
        return False  # it waits, as it should: nothing to see in the silence
    return True


@pytest.mark.stage(5, "LISTEN and poll")
def test_an_order_committed_right_after_the_first_look_wakes_the_relay(connect: Connect, postgres_dsn: str) -> None:
    conn = connect()
    broker = Broker()
    stop = threading.Event()
    relay = Relay(postgres_dsn, broker.publisher(), poll_interval=60)
    count_looks(relay, after=lambda n: n == 1 and bool(place_order(conn, "ada", 1)))  # between look and wait
    runner = Background(relay.run, stop, name="relay.run")
    try:
        wait_until(lambda: len(broker.ids()) == 1 or runner.done, 10, "the NOTIFY to wake the relay")
    except AssertionError:
        pytest.fail(
            f"an order committed just after run's first look was not published ({broker.ids()}); poll_interval is "
            "60 s: LISTEN before the first look, or a notification sent in between is never heard"
        )
    finally:
        stop.set()
        conn.execute(f"NOTIFY {CHANNEL}, 'stop'")
    runner.result(10)


@pytest.mark.stage(5, "LISTEN and poll")
def test_events_without_a_notification_are_found_by_the_poll(connect: Connect, postgres_dsn: str) -> None:
    conn = connect()
    broker = Broker()
    stop = threading.Event()
    place_order(conn, "ada", 1)  # before the relay listens: no notification pending when it waits
    runner = Background(Relay(postgres_dsn, broker.publisher(), poll_interval=0.05).run, stop, name="relay.run")
    wait_until(lambda: len(broker.ids()) == 1 or runner.done, 10, "run to publish the order already there")
    raw_events(conn, [1001, 1002, 1003])  # no NOTIFY: sent while the relay was down, or lost
    try:
        wait_until(lambda: len(broker.ids()) == 4 or runner.done, 10, "the poll to find the events")
    except AssertionError:
        pytest.fail(
            f"published {broker.ids()}, not the 3 events that came without a notification: notifications are "
            "lost while nobody listens (a relay restarting, a dropped connection), so poll every poll_interval too"
        )
    finally:
        stop.set()
    runner.result(10)
    assert broker.ids() == event_ids(conn)


@pytest.mark.stage(5, "LISTEN and poll")
def test_orders_from_many_clients_reach_the_consumer_once_each_in_order(connect: Connect, postgres_dsn: str) -> None:
    broker = Broker()
    record = broker.publisher()
    consumer = connect()

    def publish(event: Event) -> None:
        apply_event(consumer, event)
        record(event)

    stop = threading.Event()
    runner = Background(Relay(postgres_dsn, publish, batch_size=7, poll_interval=60).run, stop, name="relay.run")
    gate = threading.Barrier(4)

    def shop(customer: str) -> None:
        conn = psycopg.connect(postgres_dsn, autocommit=True)
        with conn:
            gate.wait()
            for amount in range(1, 11):
                place_order(conn, customer, amount)

    shops = [Background(shop, f"c{n}") for n in range(4)]
    for worker in shops:
        worker.result(20)
    watcher = connect()
    try:
        wait_until(lambda: len(broker.ids()) >= 40 or runner.done, 10, "the relay to publish all 40 orders")
    finally:
        stop.set()
        watcher.execute(f"NOTIFY {CHANNEL}, 'stop'")
    runner.result(10)
    assert broker.ids() == event_ids(watcher), f"published {broker.ids()}: all 40 events, each once, in id order"
    assert totals(consumer) == {f"c{n}": 55 for n in range(4)}, f"consumer totals {totals(consumer)}"

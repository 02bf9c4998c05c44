"""Tests for transfers and the on-call rota: real Postgres is the oracle (the tests read the tables).

The races are forced, not hoped for: the test holds a row lock in its own transaction, waits until
Postgres says (pg_stat_activity) that your transaction is waiting for it, then commits. A
read-then-write under READ COMMITTED loses the update every time, not by luck. Retries are observed
through a trigger that fails the first N UPDATE statements with a chosen SQLSTATE.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import errors
from psycopg.conninfo import make_conninfo

from dojo.testing import Background, wait_until

from .pg_isolation import InsufficientFunds, LastOnCall, go_off_call, transfer

README_RETRIES = 10  # the README fixes the default: 10 re-runs after the first attempt

Conn = psycopg.Connection[Any]


@pytest.fixture
def postgres_schema(kata_file: Callable[[str], Path]) -> Sequence[Path]:
    """Every test database is a fresh copy of schema.sql."""
    return [kata_file("schema.sql")]


@pytest.fixture
def connect(postgres_dsn: str) -> Iterator[Callable[[], Conn]]:
    """Opens autocommit connections to the test's database; closes them after."""
    opened: list[Conn] = []

    def open_one() -> Conn:
        conn = psycopg.connect(postgres_dsn, autocommit=True)
        opened.append(conn)
        return conn

    yield open_one
    for conn in opened:
        conn.close()


def named(dsn: str, name: str) -> str:
    """The test's DSN with an application_name, so pg_stat_activity shows which call is which."""
    return make_conninfo(dsn, application_name=name)


def open_accounts(conn: Conn, balances: dict[int, int]) -> None:
    for account, balance in balances.items():
        conn.execute("INSERT INTO accounts (id, balance) VALUES (%s, %s)", [account, balance])


def balances(conn: Conn) -> dict[int, int]:
    return dict(conn.execute("SELECT id, balance FROM accounts ORDER BY id").fetchall())


def rota(conn: Conn, shift: str) -> dict[int, bool]:
    return dict(conn.execute("SELECT doctor_id, on_call FROM on_call WHERE shift = %s", [shift]).fetchall())


def put_on_call(conn: Conn, shift: str, doctors: dict[int, bool]) -> None:
    for doctor, on in doctors.items():
        conn.execute("INSERT INTO on_call (doctor_id, shift, on_call) VALUES (%s, %s, %s)", [doctor, shift, on])


def wait_until_waiting_on_a_lock(watcher: Conn, workers: dict[str, Background[Any]], holds: str) -> None:
    """Return once every worker's backend waits on a lock (Postgres says so); fail if one ends first."""

    def all_waiting() -> bool:
        for name, worker in workers.items():
            if worker.done:
                worker.result(0)  # re-raises its error, if any
                raise AssertionError(
                    f"{name} returned while the test's transaction still held {holds}: it must read and write "
                    "those rows, and then wait for that transaction like any other"
                )
        rows = watcher.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name = ANY(%s)",
            [list(workers)],
        ).fetchone()
        return rows is not None and rows[0] == len(workers)

    wait_until(all_waiting, timeout=10, what=f"{', '.join(workers)} to wait for {holds}")


# -- transfer: one call at a time ------------------------------------------------------------------


@pytest.mark.stage(1, "one transfer")
def test_transfer_moves_the_amount_between_the_two_accounts_only(postgres_dsn: str, postgres_conn: Conn) -> None:
    open_accounts(postgres_conn, {1: 100, 2: 50, 3: 70})
    transfer(postgres_dsn, 1, 2, 30)
    transfer(postgres_dsn, 2, 1, 1)
    assert balances(postgres_conn) == {1: 71, 2: 79, 3: 70}, "transfer(1, 2, 30), then transfer(2, 1, 1): 1 cent"


@pytest.mark.stage(1, "one transfer")
def test_the_whole_balance_may_be_sent(postgres_dsn: str, postgres_conn: Conn) -> None:
    open_accounts(postgres_conn, {1: 100, 2: 0})
    transfer(postgres_dsn, 1, 2, 100)
    assert balances(postgres_conn) == {1: 0, 2: 100}, "a balance may reach exactly 0: refuse only amount > balance"


@pytest.mark.stage(1, "one transfer")
def test_insufficient_funds_is_refused_and_changes_nothing(postgres_dsn: str, postgres_conn: Conn) -> None:
    open_accounts(postgres_conn, {1: 100, 2: 50})
    with pytest.raises(InsufficientFunds):
        transfer(postgres_dsn, 1, 2, 101)
    assert issubclass(InsufficientFunds, ValueError), "the README makes InsufficientFunds a ValueError"
    assert balances(postgres_conn) == {1: 100, 2: 50}, "a refused transfer changes nothing (no partial debit)"


@pytest.mark.stage(1, "one transfer")
@pytest.mark.parametrize("amount", [0, -1, -100])
def test_an_amount_that_is_not_positive_is_refused(postgres_dsn: str, postgres_conn: Conn, amount: int) -> None:
    open_accounts(postgres_conn, {1: 100, 2: 50})
    with pytest.raises(ValueError):
        transfer(postgres_dsn, 1, 2, amount)
    assert balances(postgres_conn) == {1: 100, 2: 50}, f"amount {amount}: ValueError, nothing changed"


@pytest.mark.stage(1, "one transfer")
def test_a_transfer_to_the_same_account_is_refused(postgres_dsn: str, postgres_conn: Conn) -> None:
    open_accounts(postgres_conn, {1: 100})
    with pytest.raises(ValueError):
        transfer(postgres_dsn, 1, 1, 10)
    assert balances(postgres_conn) == {1: 100}


@pytest.mark.stage(1, "one transfer")
@pytest.mark.parametrize(("source", "destination"), [(9, 1), (1, 9), (8, 9)], ids=["from", "to", "both"])
def test_an_unknown_account_is_refused_and_changes_nothing(
    postgres_dsn: str, postgres_conn: Conn, source: int, destination: int
) -> None:
    open_accounts(postgres_conn, {1: 100, 2: 50})
    with pytest.raises(LookupError):
        transfer(postgres_dsn, source, destination, 10)
    assert balances(postgres_conn) == {1: 100, 2: 50}, (
        "a transfer with an unknown account must raise LookupError and change nothing: a debit whose credit "
        "found no row must be rolled back with it"
    )


# -- transfer: forced races --------------------------------------------------------------------------


@pytest.mark.stage(4, "concurrent writers")
@pytest.mark.parametrize(("taken", "refused"), [(60, True), (30, False)], ids=["then-too-little", "then-enough"])
def test_a_concurrent_debit_is_seen_not_overwritten(
    postgres_dsn: str, connect: Callable[[], Conn], taken: int, refused: bool
) -> None:
    """The test debits account 1 in an open transaction; transfer(1, 2, 60) must wait and then see it."""
    watcher, holder = connect(), connect()
    open_accounts(watcher, {1: 100, 2: 100, 3: 100})
    with holder.transaction():
        holder.execute("UPDATE accounts SET balance = balance - %s WHERE id = 1", [taken])
        holder.execute("UPDATE accounts SET balance = balance + %s WHERE id = 3", [taken])
        worker = Background(transfer, named(postgres_dsn, "transfer"), 1, 2, 60, name="transfer(1, 2, 60)")
        wait_until_waiting_on_a_lock(watcher, {"transfer": worker}, "account 1's row")
    try:
        worker.result(10)
        outcome = "accepted"
    except InsufficientFunds:
        outcome = "refused"
    except errors.SerializationFailure as exc:
        pytest.fail(
            f"transfer raised {exc!r} after the concurrent transaction committed: retry the whole transaction "
            "from the start (a new snapshot re-reads the balance); retrying one statement, or the work in a "
            "savepoint, inside the failed transaction keeps the old snapshot and repeats the same conflict"
        )
    final = balances(watcher)
    expected = {1: 100 - taken, 2: 100, 3: 100 + taken} if refused else {1: 40 - taken, 2: 160, 3: 100 + taken}
    if min(final.values()) < 0:
        pytest.fail(
            f"balances {final}: account 1 went negative. The balance was checked on a value read before the "
            "concurrent debit committed: lock the row (FOR UPDATE), check in the UPDATE itself, or use SERIALIZABLE"
        )
    assert sum(final.values()) == 300, (
        f"balances {final}: money was created, a lost update. transfer read the balance (100), the concurrent "
        "debit committed, then transfer wrote its own number over it: read-modify-write under READ COMMITTED "
        "needs SELECT ... FOR UPDATE (or SERIALIZABLE and a retry)"
    )
    verdict = "refused" if refused else "accepted"
    assert (outcome, final) == (verdict, expected), (
        f"after a concurrent debit of {taken} from 100, transfer(1, 2, 60) must be {verdict}"
    )


@pytest.mark.stage(4, "concurrent writers")
def test_a_concurrent_credit_to_the_destination_is_not_lost(postgres_dsn: str, connect: Callable[[], Conn]) -> None:
    watcher, holder = connect(), connect()
    open_accounts(watcher, {1: 100, 2: 100, 3: 100})
    with holder.transaction():
        holder.execute("UPDATE accounts SET balance = balance + 50 WHERE id = 2")
        holder.execute("UPDATE accounts SET balance = balance - 50 WHERE id = 3")
        worker = Background(transfer, named(postgres_dsn, "transfer"), 1, 2, 30, name="transfer(1, 2, 30)")
        wait_until_waiting_on_a_lock(watcher, {"transfer": worker}, "account 2's row")
    worker.result(10)
    final = balances(watcher)
    assert final == {1: 70, 2: 180, 3: 50}, (
        f"balances {final}, expected {{1: 70, 2: 180, 3: 50}}: the concurrent credit of 50 to account 2 was lost. "
        "Both rows are read-modify-written: lock both (FOR UPDATE on one of the two rows is not enough), or "
        "write balance = balance + amount"
    )


@pytest.mark.stage(4, "concurrent writers")
def test_opposite_transfers_at_once_never_deadlock_in_the_callers_face(
    postgres_dsn: str, connect: Callable[[], Conn]
) -> None:
    """1->2 waits for account 1 first; then 2->1 starts. Locking in argument order deadlocks here every time."""
    watcher, holder = connect(), connect()
    open_accounts(watcher, {1: 100, 2: 100})
    with holder.transaction():
        holder.execute("SELECT id FROM accounts WHERE id = 1 FOR UPDATE")
        forward = Background(transfer, named(postgres_dsn, "forward"), 1, 2, 10, name="transfer(1, 2, 10)")
        wait_until_waiting_on_a_lock(watcher, {"forward": forward}, "account 1's row")
        backward = Background(transfer, named(postgres_dsn, "backward"), 2, 1, 25, name="transfer(2, 1, 25)")
        wait_until_waiting_on_a_lock(watcher, {"forward": forward, "backward": backward}, "account 1's row")
    for worker in (forward, backward):
        try:
            worker.result(15)
        except errors.DeadlockDetected as exc:
            pytest.fail(
                f"{worker.thread.name} raised {exc!r}: 1->2 and 2->1 at once must not deadlock in the caller's "
                "face. Lock the two rows in one fixed order (lowest id first), or retry 40P01 like 40001"
            )
    assert balances(watcher) == {1: 115, 2: 85}, "both opposite transfers must be applied, once each"


@pytest.mark.stage(4, "concurrent writers")
def test_many_concurrent_transfers_keep_every_invariant(postgres_dsn: str, postgres_conn: Conn) -> None:
    """6 clients, each on its own connection, 25 random transfers each among 4 accounts."""
    start = {1: 100, 2: 100, 3: 100, 4: 100}
    open_accounts(postgres_conn, start)
    accepted: list[tuple[int, int, int]] = []
    unexpected: list[BaseException] = []
    gate = threading.Barrier(6)

    def client(seed: int) -> None:
        rng = random.Random(seed)
        gate.wait()
        for _ in range(25):
            source, destination = rng.sample(sorted(start), 2)
            amount = rng.randint(1, 80)
            try:
                transfer(postgres_dsn, source, destination, amount, retries=200)
            except InsufficientFunds:
                continue
            except Exception as exc:
                unexpected.append(exc)
                return
            accepted.append((source, destination, amount))

    threads = [threading.Thread(target=client, args=(seed,)) for seed in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not unexpected, f"transfer raised {unexpected[0]!r} under concurrency: only InsufficientFunds is expected"
    expected = dict(start)
    for source, destination, amount in accepted:
        expected[source] -= amount
        expected[destination] += amount
    final = balances(postgres_conn)
    assert min(final.values()) >= 0, f"balances {final}: a balance went negative under concurrent transfers"
    assert sum(final.values()) == 400, f"balances {final}: money was created or destroyed (lost updates)"
    assert final == expected, (
        f"balances {final}, but the {len(accepted)} accepted transfers add up to {expected}: every accepted transfer "
        "must be applied exactly once"
    )


# -- go_off_call -----------------------------------------------------------------------------------


@pytest.mark.stage(2, "going off call")
def test_a_doctor_goes_off_call_while_another_stays(postgres_dsn: str, postgres_conn: Conn) -> None:
    put_on_call(postgres_conn, "night", {1: True, 2: True, 3: False})
    put_on_call(postgres_conn, "day", {1: True})
    go_off_call(postgres_dsn, 1, "night")
    assert rota(postgres_conn, "night") == {1: False, 2: True, 3: False}
    assert rota(postgres_conn, "day") == {1: True}, "only the given shift's row changes"


@pytest.mark.stage(2, "going off call")
def test_the_last_doctor_on_call_cannot_go(postgres_dsn: str, postgres_conn: Conn) -> None:
    put_on_call(postgres_conn, "night", {1: True, 2: False})
    put_on_call(postgres_conn, "day", {2: True, 3: True})
    with pytest.raises(LastOnCall):
        go_off_call(postgres_dsn, 1, "night")
    assert rota(postgres_conn, "night") == {1: True, 2: False}, (
        "doctor 1 is the last one on call for the night (doctors on call for another shift do not count): "
        "LastOnCall, nothing changed"
    )


@pytest.mark.stage(2, "going off call")
def test_going_off_call_when_already_off_changes_nothing(postgres_dsn: str, postgres_conn: Conn) -> None:
    put_on_call(postgres_conn, "night", {1: False, 2: False})
    go_off_call(postgres_dsn, 1, "night")
    assert rota(postgres_conn, "night") == {1: False, 2: False}, "a doctor already off call: nothing to do, no error"


@pytest.mark.stage(2, "going off call")
@pytest.mark.parametrize(("doctor", "shift"), [(9, "night"), (1, "noon")], ids=["doctor", "shift"])
def test_going_off_a_shift_without_a_row_is_refused(
    postgres_dsn: str, postgres_conn: Conn, doctor: int, shift: str
) -> None:
    put_on_call(postgres_conn, "night", {1: True, 2: True})
    with pytest.raises(LookupError):
        go_off_call(postgres_dsn, doctor, shift)
    assert rota(postgres_conn, "night") == {1: True, 2: True}


@pytest.mark.stage(4, "concurrent writers")
def test_two_doctors_going_off_at_once_never_leave_nobody_on_call(
    postgres_dsn: str, connect: Callable[[], Conn]
) -> None:
    """Both read the rota before either writes (the test holds the rows until both wait): write skew."""
    watcher, holder = connect(), connect()
    put_on_call(watcher, "night", {1: True, 2: True})
    with holder.transaction():
        holder.execute("SELECT doctor_id FROM on_call WHERE shift = 'night' ORDER BY doctor_id FOR UPDATE")
        workers = {
            f"doctor{doctor}": Background(go_off_call, named(postgres_dsn, f"doctor{doctor}"), doctor, "night")
            for doctor in (1, 2)
        }
        wait_until_waiting_on_a_lock(watcher, workers, "the night shift's rows")
    outcomes = []
    for worker in workers.values():
        try:
            worker.result(10)
            outcomes.append("off")
        except LastOnCall:
            outcomes.append("LastOnCall")
    final = rota(watcher, "night")
    assert any(final.values()), (
        f"both doctors went off call and nobody is on call for the night ({final}): write skew. Each checked "
        "'another doctor is on call' in its own snapshot and wrote a different row, so REPEATABLE READ sees no "
        "conflict. Use SERIALIZABLE (and retry), or lock the shift's rows FOR UPDATE before checking"
    )
    assert sorted(outcomes) == ["LastOnCall", "off"] and sum(final.values()) == 1, (
        f"outcomes {outcomes}, rota {final}: one doctor goes off call, the other gets LastOnCall"
    )


@pytest.mark.stage(4, "concurrent writers")
def test_many_doctors_going_off_at_once_leave_exactly_one_on_call(postgres_dsn: str, postgres_conn: Conn) -> None:
    doctors = range(1, 7)
    put_on_call(postgres_conn, "night", dict.fromkeys(doctors, True))
    put_on_call(postgres_conn, "day", dict.fromkeys(doctors, True))
    refused: list[int] = []
    unexpected: list[BaseException] = []
    gate = threading.Barrier(len(doctors))

    def leave(doctor: int) -> None:
        gate.wait()
        try:
            go_off_call(postgres_dsn, doctor, "night", retries=200)
        except LastOnCall:
            refused.append(doctor)
        except Exception as exc:
            unexpected.append(exc)

    threads = [threading.Thread(target=leave, args=(doctor,)) for doctor in doctors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not unexpected, f"go_off_call raised {unexpected[0]!r}: only LastOnCall is expected"
    final = rota(postgres_conn, "night")
    on = [doctor for doctor, is_on in final.items() if is_on]
    assert len(on) == 1 and refused == on, (
        f"6 doctors went off call at once: still on call {on}, refused {refused}; exactly one must stay, "
        "and it is the one that got LastOnCall"
    )
    assert all(rota(postgres_conn, "day").values()), "the day shift must be untouched"


# -- retries ---------------------------------------------------------------------------------------

FAULTS = """
CREATE TABLE injected_fault (sqlstate text NOT NULL, times integer NOT NULL);
CREATE SEQUENCE fault_attempts;
CREATE FUNCTION inject_fault() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    fault injected_fault;
BEGIN
    SELECT * INTO fault FROM injected_fault;
    -- nextval survives the rollback: it counts the UPDATE statements that reached the table
    IF FOUND AND nextval('fault_attempts') <= fault.times THEN
        RAISE EXCEPTION 'injected by the test: %', fault.sqlstate USING ERRCODE = fault.sqlstate;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER inject_fault BEFORE UPDATE ON accounts FOR EACH STATEMENT EXECUTE FUNCTION inject_fault();
CREATE TRIGGER inject_fault BEFORE UPDATE ON on_call FOR EACH STATEMENT EXECUTE FUNCTION inject_fault();
"""

ERRORS = {"40001": errors.SerializationFailure, "40P01": errors.DeadlockDetected, "23514": errors.CheckViolation}


class Faults:
    """The first `times` UPDATE statements on accounts or on_call fail with `sqlstate`."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        conn.execute(FAULTS)
        open_accounts(conn, {1: 100, 2: 50})
        put_on_call(conn, "night", {1: True, 2: True})

    def inject(self, sqlstate: str, times: int) -> None:
        self.conn.execute("INSERT INTO injected_fault VALUES (%s, %s)", [sqlstate, times])

    def attempts(self) -> int:
        """How many UPDATE statements reached the table (failed or not)."""
        row = self.conn.execute("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM fault_attempts").fetchone()
        assert row is not None
        return int(row[0])

    def unchanged(self) -> bool:
        return balances(self.conn) == {1: 100, 2: 50} and rota(self.conn, "night") == {1: True, 2: True}


@pytest.fixture
def faults(postgres_conn: Conn) -> Faults:
    return Faults(postgres_conn)


CALLS: dict[str, Callable[..., None]] = {
    "transfer": lambda dsn, **kw: transfer(dsn, 1, 2, 30, **kw),
    "go_off_call": lambda dsn, **kw: go_off_call(dsn, 1, "night", **kw),
}
DONE = {"transfer": ({1: 70, 2: 80}, {1: True, 2: True}), "go_off_call": ({1: 100, 2: 50}, {1: False, 2: True})}


@pytest.mark.stage(3, "retrying failures")
@pytest.mark.parametrize("call", sorted(CALLS))
@pytest.mark.parametrize("sqlstate", ["40001", "40P01"])
def test_a_serialization_failure_or_deadlock_reruns_the_transaction(
    postgres_dsn: str, faults: Faults, call: str, sqlstate: str
) -> None:
    faults.inject(sqlstate, times=3)
    try:
        CALLS[call](postgres_dsn, retries=3)
    except errors.InFailedSqlTransaction as exc:
        pytest.fail(
            f"{call} raised {exc!r}: after an error the transaction is aborted, every later statement fails. "
            "Roll it back (leave the `with conn.transaction():` block) and run the whole transaction again"
        )
    except (errors.SerializationFailure, errors.DeadlockDetected) as exc:
        pytest.fail(
            f"{call}(retries=3) raised {exc!r} after 3 injected failures (SQLSTATE {sqlstate}): retry the whole "
            "transaction on 40001 (serialization failure) and 40P01 (deadlock detected), up to `retries` times"
        )
    accounts, night = DONE[call]
    assert (balances(faults.conn), rota(faults.conn, "night")) == (accounts, night), f"{call} must be applied once"
    assert faults.attempts() >= 4, "the call succeeded without running its UPDATE again"


@pytest.mark.stage(3, "retrying failures")
@pytest.mark.parametrize("call", sorted(CALLS))
@pytest.mark.parametrize(("sqlstate", "retries"), [("40001", 0), ("40001", 2), ("40P01", 1)])
def test_after_retries_the_error_is_raised(
    postgres_dsn: str, faults: Faults, call: str, sqlstate: str, retries: int
) -> None:
    faults.inject(sqlstate, times=1000)
    with pytest.raises(ERRORS[sqlstate]):
        CALLS[call](postgres_dsn, retries=retries)
    assert faults.attempts() == retries + 1, (
        f"{call}(retries={retries}) ran {faults.attempts()} attempts against a failure that never heals; "
        f"expected the first one plus {retries} retries, then the error raised"
    )
    assert faults.unchanged(), "a call that gave up must change nothing"


@pytest.mark.stage(3, "retrying failures")
@pytest.mark.parametrize("call", sorted(CALLS))
def test_the_default_is_ten_retries(postgres_dsn: str, faults: Faults, call: str) -> None:
    faults.inject("40001", times=1000)
    with pytest.raises(errors.SerializationFailure):
        CALLS[call](postgres_dsn)
    assert faults.attempts() == README_RETRIES + 1, (
        f"{call} without `retries` made {faults.attempts()} attempts: the README fixes the default at 10 retries"
    )


@pytest.mark.stage(3, "retrying failures")
@pytest.mark.parametrize("call", sorted(CALLS))
def test_other_errors_are_raised_at_once_not_retried(postgres_dsn: str, faults: Faults, call: str) -> None:
    faults.inject("23514", times=1000)
    with pytest.raises(errors.CheckViolation):
        CALLS[call](postgres_dsn, retries=3)
    assert faults.attempts() == 1, (
        f"{call} retried a check violation ({faults.attempts()} attempts): only serialization failures (40001) "
        "and deadlocks (40P01) are worth another run; catching every exception also retries InsufficientFunds, "
        "LastOnCall and real bugs"
    )
    assert faults.unchanged()

"""Tests for leader election on advisory locks: real Postgres is the oracle.

Who leads is read from the server (pg_locks: which backend holds the election's advisory lock;
election_term: which term is current), never from the elector's own word. Sessions die the way
they do in production: the test ends a backend with pg_terminate_backend. Pauses are forced, not
timed: a leader's work waits on an Event, or its COMMIT waits on an advisory lock the test holds,
and the test moves on once Postgres says (pg_stat_activity) who is waiting.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test
from psycopg.conninfo import make_conninfo

from dojo.testing import Background, wait_until

from .pg_leader_election import Elector, NotLeader, election_key

Conn = psycopg.Connection[Any]
NAME = "nightly-billing"
PAUSE = (7, 7)  # the two-int advisory lock the test holds to stop a COMMIT: never an election's key

# Rows in pg_locks for a bigint key: classid holds its high 32 bits, objid its low 32, objsubid = 1.
HOLDERS = """
SELECT l.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid)
 WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND l.classid::bigint = (%(key)s >> 32) & 4294967295 AND l.objid::bigint = %(key)s & 4294967295
 ORDER BY l.pid
"""
ANY_ADVISORY = """
SELECT l.objsubid, a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid)
 WHERE l.locktype = 'advisory' AND l.granted
   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""
WAITING = """
SELECT count(*) FROM pg_stat_activity
 WHERE application_name = %s AND wait_event_type = 'Lock' AND datname = current_database()
"""
EFFECTS = "CREATE TABLE effects (id bigserial PRIMARY KEY, worker text NOT NULL, term bigint)"
PAUSE_AT_COMMIT = f"""
CREATE FUNCTION pause_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock({PAUSE[0]}, {PAUSE[1]});  -- waits while the test holds it
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER pause_at_commit AFTER INSERT ON effects
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION pause_at_commit();
"""

NEVER_TWICE = (
    "campaign by the leader must not take the lock again: advisory locks are re-entrant, each "
    "successful pg_try_advisory_lock needs its own pg_advisory_unlock, so a leader that re-locks on "
    "every campaign still holds the lock after resign"
)
TRY_NOT_WAIT = (
    "campaign waits for the lock instead of trying once: pg_advisory_lock blocks while another session "
    "holds it; a campaign is one attempt, pg_try_advisory_lock"
)
SESSION_SCOPE = (
    "use the session-level lock (pg_try_advisory_lock): a transaction-level lock "
    "(pg_try_advisory_xact_lock) is released when its transaction ends, at once in autocommit, and "
    "then every campaign wins"
)
CHECK_BEFORE_ACTING = (
    "check on the server that the session is alive and holds the lock before every leader-only action: "
    "a flag set when the campaign won says nothing once the session died"
)
HOLD_THE_FENCE = (
    "the old leader's write of term 1 committed after term 2 began: split brain. Check the term in the "
    "work's own transaction and hold it until COMMIT (SELECT term ... FOR SHARE; FOR KEY SHARE does not "
    "conflict with an UPDATE of non-key columns): then a new term waits for the write in flight, or the "
    "write sees the new term and is refused"
)


@pytest.fixture
def postgres_schema(kata_file: Callable[[str], Path]) -> Sequence[Path]:
    return [kata_file("schema.sql")]


@pytest.fixture
def watcher(postgres_conn: Conn) -> Conn:
    postgres_conn.execute(EFFECTS)
    return postgres_conn


@pytest.fixture
def connect(postgres_dsn: str) -> Iterator[Callable[[], Conn]]:
    """The test's own autocommit connections, closed after."""
    opened: list[Conn] = []

    def open_one() -> Conn:
        opened.append(psycopg.connect(postgres_dsn, autocommit=True))
        return opened[-1]

    yield open_one
    for conn in opened:
        conn.close()


@pytest.fixture
def elector(postgres_dsn: str) -> Iterator[Callable[..., Elector]]:
    """Electors whose connections carry `app` (the worker's name unless told) as application_name."""
    made: list[Elector] = []

    def make(worker: str, name: str = NAME, *, app: str | None = None) -> Elector:
        dsn = make_conninfo(postgres_dsn, application_name=app or worker)
        made.append(Elector(dsn, name, worker=worker))
        return made[-1]

    yield make
    for one in made:
        with contextlib.suppress(psycopg.Error):  # a test killed its sessions: nothing to close cleanly
            one.close()


def holders(conn: Conn, name: str = NAME) -> list[str]:
    """The workers (application names) whose sessions hold the election's lock, per pg_locks."""
    return [app for _, app in conn.execute(HOLDERS, {"key": election_key(name)}).fetchall()]


def holder_pid(conn: Conn, name: str = NAME) -> int:
    rows = conn.execute(HOLDERS, {"key": election_key(name)}).fetchall()
    assert len(rows) == 1, f"expected one session holding {name!r}'s lock, pg_locks shows {rows}"
    return int(rows[0][0])


def term_row(conn: Conn, name: str = NAME) -> tuple[int, str] | None:
    row = conn.execute("SELECT term, leader FROM election_term WHERE name = %s", [name]).fetchone()
    return None if row is None else (int(row[0]), str(row[1]))


def kill(conn: Conn, pid: int) -> None:
    """End a backend as a crash or a network partition would; returns once it has exited."""
    row = conn.execute("SELECT pg_terminate_backend(%s, 5000)", [pid]).fetchone()
    assert row is not None and row[0], f"backend {pid} did not exit within 5 s of pg_terminate_backend"


def kill_worker(conn: Conn, worker: str) -> None:
    """End every backend of a worker (its session and any other connection it has)."""
    for (pid,) in conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND datname = current_database()", [worker]
    ).fetchall():
        kill(conn, pid)


def effects(conn: Conn) -> list[tuple[str, int | None]]:
    return [(w, t) for w, t in conn.execute("SELECT worker, term FROM effects ORDER BY id").fetchall()]


def record(worker: str, term: int | None) -> Callable[[Conn], str]:
    """Leader-only work: one row in effects, written through the connection lead() hands over."""

    def work(conn: Conn) -> str:
        conn.execute("INSERT INTO effects (worker, term) VALUES (%s, %s)", [worker, term])
        return f"done by {worker}"

    return work


def campaign_again(candidate: Elector) -> bool:
    """candidate.campaign() after the server ended one of its sessions, failing with the cause if it raises."""
    try:
        return candidate.campaign()
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"{candidate.worker}.campaign() raised {exc!r}: a session the server ended must be replaced by a new "
            "connection (catch psycopg.OperationalError, reconnect, try once more); campaign never raises for it"
        )


def campaign_at_once(watcher: Conn, candidate: Elector) -> bool:
    """candidate.campaign(), failing with the cause if it waits for the lock instead of trying once."""
    attempt = Background(candidate.campaign, name=f"{candidate.worker}.campaign()")

    def settled() -> bool:
        if attempt.done:
            return True
        row = watcher.execute(WAITING, [candidate.worker]).fetchone()
        if row is not None and row[0] and not attempt.done:
            raise AssertionError(f"{candidate.worker}: {TRY_NOT_WAIT}")
        return False

    wait_until(settled, timeout=10, what=f"{candidate.worker}.campaign() to return")
    return attempt.result(0)


# -- stage 1: the key ------------------------------------------------------------------------------


@pytest.mark.stage(1, "the election's key")
@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1))
@example("a")
@example("nightly-billing")
@example("é")
def test_the_key_is_a_signed_64_bit_integer(name: str) -> None:
    key = election_key(name)
    assert isinstance(key, int) and -(2**63) <= key < 2**63, (
        f"election_key({name!r}) = {key}: advisory lock keys are bigint, signed 64-bit; read 8 bytes of a "
        "digest with signed=True (an unsigned 64-bit number does not fit)"
    )
    assert election_key(name) == key, f"election_key({name!r}) changed between two calls"


@pytest.mark.stage(1, "the election's key")
def test_keys_use_all_64_bits_and_differ_between_names() -> None:
    names = [f"election-{i}" for i in range(64)] + ["a", "b", "A", "ab", "ba", "é", "e", " a"]
    keys = [election_key(name) for name in names]
    assert len(set(keys)) == len(names), "two different election names got the same key"
    assert any(abs(key) >= 2**32 for key in keys), (
        "every key fits in 32 bits: with 2**32 keys, two of 77,000 names share one by even odds (the birthday "
        "bound); the contract asks for all 64 bits"
    )
    assert any(abs(key) >= 2**62 for key in keys), (
        f"of {len(keys)} keys none reaches 2**62: they use fewer than 64 bits (take 8 bytes of the digest)"
    )
    assert any(key < 0 for key in keys) and any(key > 0 for key in keys), "keys are signed: both signs occur"


@pytest.mark.stage(1, "the election's key")
def test_the_key_is_the_same_in_every_process() -> None:
    """Workers are separate processes: each must derive the same key from the name."""
    source = inspect.getsourcefile(election_key)
    assert source is not None
    names = ["nightly-billing", "reports", "é"]
    program = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('election', {source!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        f"print([module.election_key(n) for n in {names!r}])\n"
    )
    seen = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, env=env, timeout=30)
        assert out.returncode == 0, out.stderr
        seen.add(out.stdout.strip())
    assert seen == {str([election_key(n) for n in names])}, (
        f"two processes derived different keys for the same names ({seen}): Python's hash() of a str is "
        "salted per process (PYTHONHASHSEED); derive the key from a digest such as SHA-256"
    )


@pytest.mark.stage(1, "the election's key")
def test_an_empty_name_is_refused() -> None:
    with pytest.raises(ValueError):
        election_key("")


# -- stage 2: one leader ---------------------------------------------------------------------------


def a_name_whose_key_is(sign: str) -> str:
    """An election name whose key (by the elector's own election_key) is negative, or positive."""
    return next(name for name in (f"election-{i}" for i in range(1000)) if (election_key(name) < 0) == (sign == "<0"))


@pytest.mark.stage(2, "one leader at a time")
@pytest.mark.parametrize("sign", ["<0", ">0"])
def test_the_first_campaign_wins_and_its_session_holds_the_lock(
    watcher: Conn, elector: Callable[..., Elector], sign: str
) -> None:
    name = a_name_whose_key_is(sign)
    key = election_key(name)
    one = elector("w1", name)
    assert one.term is None, "an elector that never campaigned has no term"
    assert one.campaign() is True, f"the first campaign in a free election ({name!r}, key {key}) must win"
    locks = watcher.execute(ANY_ADVISORY).fetchall()
    assert holders(watcher, name) == ["w1"], (
        f"pg_locks shows {locks} (objsubid, application_name): the winner's session must hold the advisory "
        f"lock on election_key(name) as one bigint (objsubid 1), not the two-int form. {SESSION_SCOPE}"
    )
    assert term_row(watcher, name) == (1, "w1"), "the first leader of an election starts term 1 in election_term"
    assert one.term == 1, f"the winner's term is {one.term}: the first leader of an election has term 1"
    assert one.leading() is True, (
        f"leading() says False while pg_locks shows w1's session holding the lock on key {key}: pg_locks shows a "
        "bigint key as classid (its high 32 bits) and objid (its low 32 bits), both UNSIGNED, so for a negative key "
        "compare with (key >> 32) & 4294967295 and key & 4294967295, not key >> 32"
    )
    assert one.term == 1, "leading() said True: the term must stay the one won"


@pytest.mark.stage(2, "one leader at a time")
def test_while_one_leads_every_other_campaign_loses_at_once(watcher: Conn, elector: Callable[..., Elector]) -> None:
    leader, second, third = elector("w1"), elector("w2"), elector("w3")
    assert leader.campaign() is True
    for follower in (second, third, second):
        assert campaign_at_once(watcher, follower) is False, (
            f"{follower.worker} won while w1 held the lock: two leaders. {SESSION_SCOPE}"
        )
    assert holders(watcher) == ["w1"], f"pg_locks shows {holders(watcher)} holding the lock, expected only w1"
    assert term_row(watcher) == (1, "w1"), "a lost campaign must not start a term (only the lock's holder may)"
    assert (second.term, second.leading(), leader.leading()) == (None, False, True)


@pytest.mark.stage(2, "one leader at a time")
def test_a_lock_held_elsewhere_loses_the_campaign_until_every_hold_is_released(
    watcher: Conn, connect: Callable[[], Conn], elector: Callable[..., Elector]
) -> None:
    """The test's own session takes the lock twice: advisory locks count, and it takes two unlocks."""
    other = connect()
    key = election_key(NAME)
    other.execute("SELECT pg_advisory_lock(%s)", [key])
    other.execute("SELECT pg_advisory_lock(%s)", [key])
    one = elector("w1")
    assert campaign_at_once(watcher, one) is False, "the lock is held by another session: campaign must lose"
    other.execute("SELECT pg_advisory_unlock(%s)", [key])
    assert campaign_at_once(watcher, one) is False, "locked twice, unlocked once: the other session still holds it"
    other.execute("SELECT pg_advisory_unlock(%s)", [key])
    assert campaign_at_once(watcher, one) is True, "every hold released: the next campaign must win"
    assert term_row(watcher) == (1, "w1") and holders(watcher) == ["w1"]


@pytest.mark.stage(2, "one leader at a time")
def test_campaign_by_the_leader_keeps_its_term_and_takes_the_lock_once(
    watcher: Conn, elector: Callable[..., Elector]
) -> None:
    one, two = elector("w1"), elector("w2")
    assert [one.campaign() for _ in range(3)] == [True, True, True], "the leader's campaign must say True"
    assert term_row(watcher) == (1, "w1") and one.term == 1, "campaign by the leader must not start a new term"
    one.resign()
    assert holders(watcher) == [], f"after resign pg_locks still shows {holders(watcher)}: {NEVER_TWICE}"
    assert two.campaign() is True and term_row(watcher) == (2, "w2")


@pytest.mark.stage(2, "one leader at a time")
def test_resign_frees_the_lock_and_the_next_leader_starts_the_next_term(
    watcher: Conn, elector: Callable[..., Elector]
) -> None:
    one, two = elector("w1"), elector("w2")
    assert one.campaign() is True
    one.resign()
    assert holders(watcher) == [], "resign must release the lock (pg_advisory_unlock on the session)"
    assert (one.term, one.leading()) == (None, False), "after resign the elector has no term and does not lead"
    one.resign()  # resigning twice is harmless
    assert two.campaign() is True, "the election is free after resign: the next campaign wins"
    assert term_row(watcher) == (2, "w2") and two.term == 2, "each new leadership is the next term: term + 1"
    assert one.campaign() is False and holders(watcher) == ["w2"]
    two.resign()
    assert one.campaign() is True and one.term == 3 and term_row(watcher) == (3, "w1"), (
        "a leader that resigned and won again has a new term: its old one ended with its resignation"
    )


@pytest.mark.stage(2, "one leader at a time")
def test_a_followers_resign_releases_nothing(watcher: Conn, elector: Callable[..., Elector]) -> None:
    leader, follower = elector("w1"), elector("w2")
    assert leader.campaign() is True and follower.campaign() is False
    follower.resign()
    assert holders(watcher) == ["w1"] and leader.leading(), "a follower's resign must leave the leader's lock alone"


@pytest.mark.stage(2, "one leader at a time")
def test_elections_with_different_names_are_independent(watcher: Conn, elector: Callable[..., Elector]) -> None:
    billing, reports = elector("w1", "billing"), elector("w2", "reports")
    assert billing.campaign() is True and reports.campaign() is True, "two elections, two leaders"
    assert holders(watcher, "billing") == ["w1"] and holders(watcher, "reports") == ["w2"]
    assert (term_row(watcher, "billing"), term_row(watcher, "reports")) == ((1, "w1"), (1, "w2"))


# -- stage 3: leader-only work -------------------------------------------------------------------


@pytest.mark.stage(3, "leader-only work")
def test_lead_runs_the_work_in_one_committed_transaction_on_its_own_connection(
    watcher: Conn, elector: Callable[..., Elector]
) -> None:
    one = elector("w1")
    assert one.campaign() is True
    seen: dict[str, Any] = {}

    def work(conn: Conn) -> int:
        seen["pid"] = conn.info.backend_pid
        conn.execute("INSERT INTO effects (worker, term) VALUES ('w1', %s)", [one.term])
        seen["status"] = conn.info.transaction_status
        conn.execute("INSERT INTO effects (worker, term) VALUES ('w1', %s)", [one.term])
        return 42

    assert one.lead(work) == 42, "lead returns what the work returned"
    assert effects(watcher) == [("w1", 1), ("w1", 1)], "the work's writes must be committed when lead returns"
    assert seen["status"] == psycopg.pq.TransactionStatus.INTRANS, (
        "the work's statements committed one by one (autocommit): the work must run inside the fenced "
        "transaction, so the term check and the work commit together"
    )
    assert seen["pid"] != holder_pid(watcher), (
        "the work ran on the session that holds the lock: the work needs its own connection (in production "
        "it writes to another database, where the session's death is invisible)"
    )
    assert one.lead(record("w1", one.term)) == "done by w1" and len(effects(watcher)) == 3


@pytest.mark.stage(3, "leader-only work")
def test_work_that_raises_is_rolled_back_and_the_error_propagates(
    watcher: Conn, elector: Callable[..., Elector]
) -> None:
    one = elector("w1")
    assert one.campaign() is True

    def failing(conn: Conn) -> None:
        conn.execute("INSERT INTO effects (worker, term) VALUES ('w1', 1)")
        raise ZeroDivisionError("the work failed")

    with pytest.raises(ZeroDivisionError):
        one.lead(failing)
    assert effects(watcher) == [], "work that raised must be rolled back, and its error reach the caller"
    assert one.leading() and one.lead(record("w1", 1)) == "done by w1", "a failed work does not end the term"
    assert effects(watcher) == [("w1", 1)]


@pytest.mark.stage(3, "leader-only work")
def test_only_the_leader_may_lead(watcher: Conn, elector: Callable[..., Elector]) -> None:
    leader, follower, newcomer = elector("w1"), elector("w2"), elector("w3")
    called: list[str] = []

    def work(conn: Conn) -> None:
        called.append("called")

    with pytest.raises(NotLeader):
        newcomer.lead(work)
    assert leader.campaign() is True and follower.campaign() is False
    with pytest.raises(NotLeader):
        follower.lead(work)
    leader.resign()
    with pytest.raises(NotLeader):
        leader.lead(work)
    assert called == [], "lead by an elector that does not lead must raise NotLeader without calling the work"


@pytest.mark.stage(3, "leader-only work")
@pytest.mark.parametrize("successor", ["w9", "w1"])
def test_work_is_refused_once_the_stored_term_moved_on(
    watcher: Conn, elector: Callable[..., Elector], successor: str
) -> None:
    """The fence alone: election_term says term 2 while this elector still holds term 1.

    The new term's leader may carry the same worker name (a restarted host keeps its name): the token
    is the term, and a worker name says nothing about which term its holder won.
    """
    one = elector("w1")
    assert one.campaign() is True
    watcher.execute("UPDATE election_term SET term = 2, leader = %s WHERE name = %s", [successor, NAME])
    try:
        one.lead(record("w1", 1))
        refused = False
    except NotLeader:
        refused = True
    same = " (whose leader has the same worker name, w1: compare terms, not worker names)" if successor == "w1" else ""
    assert refused and effects(watcher) == [], (
        f"term 1's work {'was refused but committed' if refused else 'was accepted'} while election_term says "
        f"term 2{same}: compare the stored term with the elector's in the work's transaction, raise NotLeader and "
        "roll back when they differ (the fencing token)"
    )


# -- stage 4: failover -----------------------------------------------------------------------------


@pytest.mark.stage(4, "failover")
def test_killing_the_leaders_session_frees_the_lock_and_a_follower_takes_over(
    watcher: Conn, elector: Callable[..., Elector]
) -> None:
    old, new = elector("w1"), elector("w2")
    assert old.campaign() is True and new.campaign() is False
    kill(watcher, holder_pid(watcher))
    assert holders(watcher) == [], "Postgres releases a session's advisory locks when its backend exits"
    assert new.campaign() is True, "the leader's session died: the follower's next campaign must win"
    assert term_row(watcher) == (2, "w2") and new.term == 2
    assert old.leading() is False, f"w1's session was killed: leading() must ask the server. {CHECK_BEFORE_ACTING}"
    assert old.term is None, "leading() found the session dead: the elector's term is over (term = None)"
    assert campaign_again(old) is False, "w1 must reconnect and lose to w2 (a dead session raises nothing)"
    new.resign()
    assert old.campaign() is True and term_row(watcher) == (3, "w1"), "w1's new session wins once w2 resigned"


@pytest.mark.stage(4, "failover")
def test_a_leader_whose_session_died_notices_before_acting(watcher: Conn, elector: Callable[..., Elector]) -> None:
    """Nobody else has campaigned: the term in election_term is still the dead leader's."""
    one = elector("w1")
    assert one.campaign() is True
    kill(watcher, holder_pid(watcher))
    called: list[str] = []

    def work(conn: Conn) -> None:
        called.append("called")
        conn.execute("INSERT INTO effects (worker, term) VALUES ('w1', 1)")

    with pytest.raises(NotLeader):
        one.lead(work)
    assert called == [] and effects(watcher) == [], (
        f"w1's session was killed, so it holds no lock, yet it did leader-only work: {CHECK_BEFORE_ACTING}"
    )


@pytest.mark.stage(4, "failover")
def test_a_killed_leader_campaigns_again_on_a_new_session(watcher: Conn, elector: Callable[..., Elector]) -> None:
    one = elector("w1")
    assert one.campaign() is True
    first = holder_pid(watcher)
    kill(watcher, first)
    assert campaign_again(one) is True, "the election is free: the killed leader's next campaign reconnects and wins"
    assert holder_pid(watcher) != first and one.term == 2 and term_row(watcher) == (2, "w1"), (
        "its old term died with its session: winning again on a new session is a new term"
    )
    assert one.lead(record("w1", 2)) == "done by w1"


@pytest.mark.stage(4, "failover")
def test_a_follower_whose_connections_were_killed_campaigns_again(
    watcher: Conn, elector: Callable[..., Elector]
) -> None:
    leader, follower = elector("w1"), elector("w2")
    assert leader.campaign() is True and follower.campaign() is False
    kill_worker(watcher, "w2")
    assert campaign_again(follower) is False, "a follower's dead session: campaign reconnects and loses"
    kill_worker(watcher, "w2")
    leader.resign()
    assert campaign_again(follower) is True and holders(watcher) == ["w2"] and term_row(watcher) == (2, "w2")


@pytest.mark.stage(4, "failover")
def test_workers_in_threads_fail_over_and_stop(watcher: Conn, elector: Callable[..., Elector]) -> None:
    """Three workers run(); each term's leader works turn after turn until the test kills its session."""
    workers = [elector(f"w{i}") for i in (1, 2, 3)]
    stop = threading.Event()

    def turn_of(worker: str) -> Callable[[Conn], None]:
        def work(conn: Conn) -> None:  # records the term its own fenced transaction sees
            conn.execute(
                "INSERT INTO effects (worker, term) SELECT %s, term FROM election_term WHERE name = %s", [worker, NAME]
            )

        return work

    def turns_in(term: int) -> list[str]:
        return [worker for worker, seen in effects(watcher) if seen == term]

    runs = [
        Background(lambda one=one: one.run(turn_of(one.worker), stop, interval=0.01), name=f"{one.worker}.run()")
        for one in workers
    ]
    try:
        for term in (1, 2, 3):
            wait_until(
                lambda term=term: len(turns_in(term)) >= 3, timeout=10,
                what=f"term {term}'s leader to work three turns: run() keeps leading while it leads (no resign "
                "between turns), and after the previous leader's death a follower's campaign takes over",
            )
            assert len(set(turns_in(term))) == 1, f"two workers did the work of term {term}: {turns_in(term)}"
            assert all(not run.done for run in runs), "run() returned before stop was set"
            kill(watcher, holder_pid(watcher))
        wait_until(lambda: (term_row(watcher) or (0, ""))[0] == 4, timeout=10, what="a leader of term 4")
    finally:
        stop.set()
    for run in runs:
        run.result(10)
    assert holders(watcher) == [], "run() must resign when it stops: the lock is still held"


@pytest.mark.stage(4, "failover")
def test_setting_stop_ends_a_waiting_run_at_once(watcher: Conn, elector: Callable[..., Elector]) -> None:
    leader, follower = elector("w1"), elector("w2")
    stop = threading.Event()
    runs = [
        Background(lambda one=one: one.run(record(one.worker, None), stop, interval=3600.0), name=f"{one.worker}.run()")
        for one in (leader, follower)
    ]
    wait_until(lambda: len(effects(watcher)) >= 1, timeout=10, what="the first leader's work")
    stop.set()
    for run in runs:
        try:
            run.result(5)
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}: run() must wait between campaigns with stop.wait(interval), which setting stop ends at "
                "once, not with time.sleep(interval)"
            ) from None
    assert holders(watcher) == [], "run() must resign when it stops"
    assert len(effects(watcher)) == 1, (
        f"with interval=3600 the leader worked {len(effects(watcher))} times before stop: run() must wait "
        "`interval` between turns (stop.wait(interval))"
    )


@pytest.mark.stage(4, "failover")
def test_close_resigns_and_closes_both_connections(
    postgres_dsn: str, watcher: Conn, elector: Callable[..., Elector]
) -> None:
    with Elector(make_conninfo(postgres_dsn, application_name="w1"), NAME, worker="w1") as one:
        assert one.campaign() is True and one.lead(record("w1", 1)) == "done by w1"
        assert holders(watcher) == ["w1"]
    assert one.term is None, "close() (also at the end of a with block) resigns: term None"
    assert holders(watcher) == [], "close() must release the lock"
    wait_until(
        lambda: not watcher.execute("SELECT pid FROM pg_stat_activity WHERE application_name = 'w1'").fetchall(),
        timeout=10, what="w1's connections to close (close() must close the session and the work connection)",
    )
    assert elector("w2").campaign() is True and term_row(watcher) == (2, "w2")


@pytest.mark.stage(4, "failover")
def test_an_error_from_the_work_ends_run_and_resigns(watcher: Conn, elector: Callable[..., Elector]) -> None:
    one = elector("w1")

    def broken(conn: Conn) -> None:
        raise KeyError("the work is broken")

    with pytest.raises(KeyError):
        one.run(broken, threading.Event(), interval=0.01)
    assert holders(watcher) == [], "run() ended by an error must still resign (try/finally)"


@pytest.mark.stage(4, "failover")
def test_a_term_that_moves_on_between_campaign_and_lead_ends_the_turn_not_run(
    watcher: Conn, connect: Callable[[], Conn], elector: Callable[..., Elector]
) -> None:
    """Another connection bumps the term while a turn's fenced transaction waits on the election_term row."""
    one = elector("w1")
    stop = threading.Event()
    running = Background(lambda: one.run(record("w1", None), stop, interval=0.01), name="w1.run()")
    wait_until(lambda: len(effects(watcher)) >= 1, timeout=10, what="w1's first turn of work")
    bumper = connect()

    def turn_waits_on_the_row() -> bool:
        if running.done:
            try:
                running.result(0)
            except NotLeader as exc:
                raise AssertionError(
                    f"run() raised {exc!r}: the term moved on between a turn's campaign and its lead, and lead() "
                    "said NotLeader; a NotLeader just ends that turn (catch it, wait, campaign again), run goes on"
                ) from None
            raise AssertionError("run() returned before stop was set")
        row = watcher.execute(WAITING, ["w1"]).fetchone()
        return row is not None and row[0] >= 1

    with bumper.transaction():  # the term moves on: this turn's fence waits for it, then sees term 2
        bumper.execute("UPDATE election_term SET term = term + 1 WHERE name = %s", [NAME])
        wait_until(turn_waits_on_the_row, timeout=10, what="a turn of w1.run() to wait on the bumped election_term row")
    done = len(effects(watcher))
    bumper.execute("UPDATE election_term SET term = term - 1 WHERE name = %s", [NAME])  # w1's term is current again

    def worked_again() -> bool:
        turn_waits_on_the_row()  # fails with the cause if run() ended
        return len(effects(watcher)) > done

    wait_until(worked_again, timeout=10, what="a later turn of w1.run() to work (after the refused one)")
    stop.set()
    running.result(10)
    assert holders(watcher) == [], "run() must resign when it stops"


@pytest.mark.stage(4, "failover")
def test_a_leader_whose_session_was_killed_resigns_and_closes_without_raising(
    watcher: Conn, elector: Callable[..., Elector]
) -> None:
    one = elector("w1")
    assert one.campaign() is True
    kill(watcher, holder_pid(watcher))
    for call in (one.resign, one.resign, one.close):
        try:
            call()
        except psycopg.Error as exc:
            pytest.fail(
                f"w1.{call.__name__}() raised {exc!r} after the server ended w1's session: a dead session holds "
                f"no lock, so {call.__name__}() has nothing to release and must not raise (suppress "
                "psycopg.OperationalError around the unlock)"
            )
        assert one.term is None, f"after {call.__name__}() the elector has no term"
    assert elector("w2").campaign() is True and term_row(watcher) == (2, "w2")


@pytest.mark.stage(4, "failover")
def test_a_run_whose_session_was_killed_during_the_wait_stops_without_raising(
    watcher: Conn, elector: Callable[..., Elector]
) -> None:
    one = elector("w1")
    stop = threading.Event()
    running = Background(lambda: one.run(record("w1", None), stop, interval=3600.0), name="w1.run()")
    wait_until(lambda: len(effects(watcher)) >= 1, timeout=10, what="w1's first turn of work")
    kill(watcher, holder_pid(watcher))  # the machine's connection dies while run() waits
    stop.set()
    try:
        running.result(10)
    except psycopg.Error as exc:
        raise AssertionError(
            f"run() raised {exc!r} when stopped after the server ended its session: resigning a dead session "
            "must not raise (it holds nothing to unlock), so run() stops cleanly"
        ) from None
    assert holders(watcher) == [] and one.term is None, "run() stopped: nothing held, no term"


# -- stage 5: no split brain -----------------------------------------------------------------------


@pytest.mark.stage(5, "no split brain")
@pytest.mark.parametrize("workers", [("w1", "w2"), ("host-1", "host-1")], ids=["two-workers", "one-worker-name"])
@pytest.mark.parametrize("where", ["mid-work", "at-commit"])
def test_a_paused_leader_whose_session_died_never_commits_after_the_new_term(
    watcher: Conn, connect: Callable[[], Conn], elector: Callable[..., Elector], where: str, workers: tuple[str, str]
) -> None:
    """Kleppmann's GC pause: w1 checked it leads and is writing; it stops; its session dies; w2 wins.

    w1 and w2 are the application names; their worker names may be one (a restarted host keeps its name).
    """
    old, new = elector(workers[0], app="w1"), elector(workers[1], app="w2")
    assert old.campaign() is True
    inside, resume = threading.Event(), threading.Event()
    blocker = connect()
    if where == "at-commit":
        watcher.execute(PAUSE_AT_COMMIT)
        blocker.execute("SELECT pg_advisory_lock(%s, %s)", PAUSE)

    def slow_work(conn: Conn) -> str:
        conn.execute("INSERT INTO effects (worker, term) VALUES ('w1', 1)")
        inside.set()
        if where == "mid-work":
            resume.wait(20)
        return "written"

    pending = Background(old.lead, slow_work, name="w1.lead()")

    def paused() -> bool:
        if pending.done:
            pending.result(0)
            raise AssertionError("w1.lead() returned while the test held it")
        if where == "mid-work":
            return inside.is_set()
        row = watcher.execute(WAITING, ["w1"]).fetchone()
        return row is not None and row[0] == 1

    wait_until(paused, timeout=10, what=f"w1's leader-only work to pause {where}")
    kill(watcher, holder_pid(watcher))
    contender = Background(new.campaign, name="w2.campaign()")

    def settled() -> bool:
        row = watcher.execute(WAITING, ["w2"]).fetchone()
        return contender.done or (row is not None and row[0] >= 1)

    wait_until(settled, timeout=10, what="w2's campaign to win or to wait for w1's write in flight")
    new_term_first = contender.done
    resume.set()
    blocker.execute("SELECT pg_advisory_unlock_all()")
    try:
        pending.result(10)
        old_committed = True
    except NotLeader:
        old_committed = False
    assert contender.result(10) is True, "w1's session is dead: w2's campaign must win"
    assert term_row(watcher) == (2, workers[1]), f"election_term holds {term_row(watcher)}: w2 won term 2"
    if new_term_first:
        assert not old_committed, HOLD_THE_FENCE
    assert effects(watcher) == ([("w1", 1)] if old_committed else []), "the work is committed if accepted, else not"
    assert new.lead(record("w2", 2)) == "done by w2"


@pytest.mark.stage(5, "no split brain")
def test_every_sequence_of_campaigns_resignations_kills_and_work_agrees_with_a_model(
    postgres_dsn: str, watcher: Conn
) -> None:
    count = iter(range(10**6))

    class Election(RuleBasedStateMachine):
        """Three electors, one election per example; the model says who leads and which term is current."""

        def __init__(self) -> None:
            super().__init__()
            self.name = f"election-{next(count)}"
            self.electors = [  # w0 and w1 share a worker name, as a restarted host keeps its name
                Elector(make_conninfo(postgres_dsn, application_name=f"w{i}"), self.name, worker=worker)
                for i, worker in enumerate(("host-a", "host-a", "host-b"))
            ]
            self.leader: int | None = None
            self.term = 0

        @rule(i=st.integers(0, 2))
        def campaign(self, i: int) -> None:
            expected = self.leader in (None, i)
            won = self.electors[i].campaign()
            assert won is expected, f"w{i}.campaign() returned {won}; the leader is {self.leader_name()}"
            if self.leader is None:
                self.leader, self.term = i, self.term + 1
            if won:
                assert self.electors[i].term == self.term, f"w{i}.term is {self.electors[i].term}, not {self.term}"

        @rule(i=st.integers(0, 2))
        def resign(self, i: int) -> None:
            self.electors[i].resign()
            if self.leader == i:
                self.leader = None

        @precondition(lambda self: self.leader is not None)
        @rule()
        def kill_the_leaders_session(self) -> None:
            kill(watcher, holder_pid(watcher, self.name))
            self.leader = None

        @rule(i=st.integers(0, 2))
        def lead(self, i: int) -> None:
            before = len(effects(watcher))
            try:
                self.electors[i].lead(record(f"w{i}", self.term))
            except NotLeader:
                assert self.leader != i, f"the leader w{i} (term {self.term}) was refused"
                assert len(effects(watcher)) == before, "refused work was committed"
                return
            assert self.leader == i, f"w{i} did leader-only work while the leader is {self.leader_name()}"

        def leader_name(self) -> str:
            return "nobody" if self.leader is None else f"w{self.leader}"

        @invariant()
        def the_server_agrees(self) -> None:
            shown = holders(watcher, self.name)
            expected = [] if self.leader is None else [f"w{self.leader}"]
            assert shown == expected, f"pg_locks shows {shown} holding the lock; the leader is {self.leader_name()}"
            row = term_row(watcher, self.name)
            assert (row[0] if row else 0) == self.term, f"election_term holds {row}, expected term {self.term}"

        def teardown(self) -> None:
            for one in self.electors:
                with contextlib.suppress(psycopg.Error):
                    one.close()

    run_state_machine_as_test(Election, settings=settings(max_examples=10, stateful_step_count=12, deadline=None))

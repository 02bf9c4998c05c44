"""Tests for the Postgres job queue: Postgres itself is the oracle (the tests read the jobs table).

Order, SKIP LOCKED observed in pg_stat_activity, exactly once under parallel workers, retries up to
MAX_ATTEMPTS, a stopped worker, a killed worker process and a killed connection.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dojo.testing import Background, wait_until

from .pg_job_queue import enqueue, work_one

README_MAX_ATTEMPTS = 3  # the README fixes it: the third failure makes a job 'failed'


@pytest.fixture
def postgres_schema(kata_file: Callable[[str], Path]) -> Sequence[Path]:
    """Every test database is a fresh copy of schema.sql."""
    return [kata_file("schema.sql")]


@pytest.fixture
def connect(postgres_dsn: str) -> Iterator[Callable[[], psycopg.Connection[Any]]]:
    """Opens autocommit connections to the test's database (one per worker); closes them after."""
    opened: list[psycopg.Connection[Any]] = []

    def open_one() -> psycopg.Connection[Any]:
        conn = psycopg.connect(postgres_dsn, autocommit=True)
        opened.append(conn)
        return conn

    yield open_one
    for conn in opened:
        conn.close()


Connect = Callable[[], psycopg.Connection[Any]]


def jobs(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    """(id, status, attempts, last_error) of every job, oldest first: the oracle."""
    return conn.execute("SELECT id, status, attempts, last_error FROM jobs ORDER BY id").fetchall()


def job(conn: psycopg.Connection[Any], job_id: int) -> tuple[str, int, str | None, bool]:
    """(status, attempts, last_error, done_at is set) of one job."""
    row = conn.execute(
        "SELECT status, attempts, last_error, done_at IS NOT NULL FROM jobs WHERE id = %s", [job_id]
    ).fetchone()
    assert row is not None, f"job {job_id} is gone from the table: jobs are updated, never deleted"
    return row[0], row[1], row[2], row[3]


def fail_with(message: str) -> Callable[[dict[str, Any]], None]:
    def handler(payload: dict[str, Any]) -> None:
        raise ValueError(message)

    return handler


def run_failing(conn: psycopg.Connection[Any], handler: Callable[[dict[str, Any]], None]) -> int | None:
    """work_one with a handler that raises: the failure must be recorded, not raised."""
    try:
        return work_one(conn, handler)
    except Exception as exc:
        pytest.fail(
            f"the handler's error escaped work_one ({exc!r}): a failing handler is recorded (attempts + 1, "
            "last_error, queued or failed) and work_one returns the job's id; raising from inside the "
            "transaction also rolls the record back"
        )


def unlocked(conn: psycopg.Connection[Any], job_id: int) -> bool:
    """True once no transaction holds job_id's row lock (this probe takes it and lets it go)."""
    row = conn.execute("SELECT id FROM jobs WHERE id = %s FOR UPDATE SKIP LOCKED", [job_id]).fetchone()
    return row is not None


def returned_without_waiting(
    worker: Background[Any], conn: psycopg.Connection[Any], watcher: psycopg.Connection[Any]
) -> bool:
    """Watch `worker` (running work_one on `conn`): True if it returned, False once its backend waits on a lock.

    Postgres says what a backend waits for in pg_stat_activity: wait_event_type 'Lock' is a
    row lock held by another transaction. No timing is involved in the verdict.
    """
    pid = conn.info.backend_pid
    deadline = time.monotonic() + 10
    while not worker.done:
        row = watcher.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
        if row is not None and row[0] == "Lock":
            conn.cancel_safe()  # unblock the worker so the test can finish
            worker.thread.join(5)
            return False
        if time.monotonic() > deadline:
            raise AssertionError("work_one neither returned nor waited on a lock for 10 s: is it blocked elsewhere?")
        time.sleep(0.002)
    return True


# -- enqueue ---------------------------------------------------------------------------------------


@pytest.mark.stage(1, "enqueue and run")
def test_enqueue_stores_a_queued_job_and_returns_its_id(connect: Connect) -> None:
    conn = connect()
    first = enqueue(conn, {"n": 1})
    second = enqueue(conn, {"n": 2})
    rows = conn.execute("SELECT id, payload, status, attempts, last_error, done_at FROM jobs ORDER BY id").fetchall()
    assert rows == [(first, {"n": 1}, "queued", 0, None, None), (second, {"n": 2}, "queued", 0, None, None)], (
        f"expected two queued jobs with their payloads, 0 attempts and their ids ({first}, {second}) "
        f"returned by enqueue; the table holds {rows}"
    )
    assert isinstance(first, int) and first < second, f"enqueue returns the new job's id (an int): {first!r}"


@pytest.mark.stage(1, "enqueue and run")
def test_enqueue_inside_the_callers_transaction_commits_or_rolls_back_with_it(connect: Connect) -> None:
    conn, other = connect(), connect()
    with conn.transaction():
        kept = enqueue(conn, {"order": 1})
    try:
        with conn.transaction():
            enqueue(conn, {"order": 2})
            raise psycopg.Rollback()
    finally:
        seen = other.execute("SELECT id, payload FROM jobs ORDER BY id").fetchall()
    assert seen == [(kept, {"order": 1})], (
        f"the second job was enqueued in a transaction that rolled back, yet another connection sees {seen}: "
        "enqueue must run in the caller's transaction (one INSERT on conn), not commit on its own"
    )


TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)  # jsonb has no \u0000
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(min_value=-1e15, max_value=1e15, allow_nan=False)
    | TEXT
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)
PAYLOADS = st.dictionaries(TEXT, JSON, max_size=5)


@pytest.mark.stage(1, "enqueue and run")
def test_payloads_of_every_json_shape_reach_the_handler_unchanged(connect: Connect) -> None:
    conn = connect()

    @settings(max_examples=40, deadline=None, database=None)
    @given(PAYLOADS)
    @example({})
    @example({"to": "Zoë <zoë@example.com>", "subject": "Grüße ✉ 😀", "": ""})
    @example({"order": {"lines": [{"sku": "A-1", "qty": 2}, []], "paid": True, "note": None}})
    def round_trip(payload: dict[str, Any]) -> None:
        job_id = enqueue(conn, payload)
        stored = conn.execute("SELECT payload FROM jobs WHERE id = %s", [job_id]).fetchone()
        assert stored == (payload,), (
            f"enqueue({payload!r}) stored {stored!r}: pass the dict as Jsonb(payload), "
            "not json.dumps(payload) (a JSON string inside the JSON) or str(payload)"
        )
        got: list[Any] = []
        assert work_one(conn, got.append) == job_id
        assert got == [payload], f"the handler should get the payload as enqueued, {payload!r}; it got {got!r}"

    round_trip()


# -- order, empty queue ----------------------------------------------------------------------------


@pytest.mark.stage(1, "enqueue and run")
def test_an_empty_queue_gives_none_without_calling_the_handler(connect: Connect) -> None:
    called: list[object] = []
    assert work_one(connect(), called.append) is None, "no job at all: work_one must return None"
    assert called == [], "the handler ran although there was no job"


@pytest.mark.stage(1, "enqueue and run")
def test_one_worker_runs_jobs_oldest_first_and_marks_them_done(connect: Connect) -> None:
    conn = connect()
    ids = [enqueue(conn, {"n": n}) for n in range(4)]
    # Rewriting job 1 moves its row to the end of the table: without ORDER BY it comes out last.
    conn.execute("UPDATE jobs SET payload = payload WHERE id = %s", [ids[0]])
    # ...when the planner reads the table in physical order, as it may do any time (we force it).
    conn.execute("SET enable_indexscan = off")
    conn.execute("SET enable_bitmapscan = off")
    seen: list[int] = []
    done = [work_one(conn, lambda p: seen.append(p["n"])) for _ in range(4)]
    assert len(set(seen)) == len(seen), (
        f"jobs ran in the order {seen}: a job that is done was handed out again; claim only status = 'queued'"
    )
    assert seen == [0, 1, 2, 3], (
        f"jobs ran in the order {seen}, not oldest first: a table has no order without ORDER BY id"
    )
    assert done == ids, f"work_one should return each job's id: expected {ids}, got {done}"
    states = [job(conn, i) for i in ids]
    assert states == [("done", 1, None, True)] * 4, (
        f"after one successful run each job should be ('done', attempts 1, no error, done_at set): {states}"
    )
    called: list[object] = []
    assert work_one(conn, called.append) is None and not called, (
        f"every job is done, yet work_one handed one out again ({called}): claim only status = 'queued'"
    )


# -- two workers at once ---------------------------------------------------------------------------


@pytest.mark.stage(4, "many workers")
def test_a_second_worker_takes_the_next_job_or_none_and_never_waits_for_the_first(connect: Connect) -> None:
    """A barrier inside the first worker's handler holds its job; the second worker must pass it over."""
    setup, first_conn, second_conn = connect(), connect(), connect()
    one, two = enqueue(setup, {"n": 1}), enqueue(setup, {"n": 2})
    ran: list[int] = []
    inside, release = threading.Event(), threading.Event()

    def hold(payload: dict[str, Any]) -> None:
        ran.append(payload["n"])
        inside.set()
        release.wait(20)

    first = Background(work_one, first_conn, hold, name="first worker")
    try:
        wait_until(inside.is_set, 10, "the first worker to start running job 1")
        results = []
        for _ in range(2):  # job 2 while job 1 runs, then nothing is free
            second = Background(work_one, second_conn, lambda p: ran.append(p["n"]), name="second worker")
            returned = returned_without_waiting(second, second_conn, setup)
            assert Counter(ran)[1] == 1, (
                f"job 1 ran twice ({ran}) while the first worker still held it: the claim must lock "
                "the row (SELECT ... FOR UPDATE SKIP LOCKED) in the transaction that runs the job"
            )
            assert returned, (
                "the second worker waited on the row lock the first worker holds on job 1: add SKIP "
                "LOCKED to SELECT ... FOR UPDATE so each worker takes the next free job at once"
            )
            try:
                results.append(second.result())
            except Exception as exc:
                pytest.fail(
                    f"while the first worker held job 1, the second worker's work_one raised {exc!r}: "
                    "NOWAIT raises on a locked row; SKIP LOCKED passes over it to the next free job"
                )
        assert results == [two, None], (
            f"while job 1 runs, a second worker should take job 2 and then find nothing free (None); "
            f"it returned {results} (ran {ran})"
            + (": giving up at the first locked row (NOWAIT) is not SKIP LOCKED" if results[0] is None else "")
        )
        assert job(setup, one)[:2] == ("queued", 0), "job 1 is still running: nobody may touch it"
    finally:
        release.set()
    assert first.result(10) == one
    assert ran == [1, 2] and [j[1:3] for j in jobs(setup)] == [("done", 1)] * 2, (
        f"each job should have run once and be done: ran {ran}, jobs {jobs(setup)}"
    )


@pytest.mark.stage(4, "many workers")
def test_parallel_workers_run_every_job_exactly_once(connect: Connect) -> None:
    setup = connect()
    ids = [enqueue(setup, {"n": n}) for n in range(40)]
    runs: list[int] = []
    lock = threading.Lock()
    in_flight = peak = 0
    two_at_once = threading.Event()
    waited = threading.Event()  # only the first jobs wait; a serialized queue then fails fast

    def handler(payload: dict[str, Any]) -> None:
        nonlocal in_flight, peak
        with lock:
            runs.append(payload["n"])
            in_flight += 1
            peak = max(peak, in_flight)
            if in_flight >= 2:
                two_at_once.set()
        if not waited.is_set():
            two_at_once.wait(2)  # the first jobs wait (briefly) until a second worker runs one too
            waited.set()
        with lock:
            in_flight -= 1

    def worker(conn: psycopg.Connection[Any]) -> int:
        count = 0
        while work_one(conn, handler) is not None:
            count += 1
        return count

    workers = [Background(worker, connect(), name=f"worker-{i}") for i in range(4)]
    counts = [w.result(timeout=30) for w in workers]
    twice = sorted(n for n, c in Counter(runs).items() if c > 1)
    missing = sorted(set(range(40)) - set(runs))
    assert not twice, f"jobs {twice} ran more than once: two workers claimed the same row (lock it: FOR UPDATE)"
    statuses = Counter(row[1] for row in jobs(setup))
    assert not missing and statuses == {"done": 40}, (
        f"jobs {missing} never ran; statuses {dict(statuses)}: every job must end 'done'"
    )
    assert sum(counts) == len(ids), f"the workers reported {sum(counts)} jobs for 40 runs"
    assert peak >= 2, (
        "the workers never ran two jobs at the same time: each waited for the other's row lock. "
        "SKIP LOCKED lets a worker take the next free job instead of queueing."
    )


# -- failures --------------------------------------------------------------------------------------


@pytest.mark.stage(2, "failures and retries")
def test_failures_are_counted_and_the_third_makes_the_job_failed_for_good(connect: Connect) -> None:
    conn = connect()
    poison = enqueue(conn, {"n": 1})
    younger = enqueue(conn, {"n": 2})
    for attempt, error in enumerate(["smtp said: alpha", "smtp said: beta"], start=1):
        returned = run_failing(conn, fail_with(error))
        assert returned == poison, (
            f"failure {attempt}: work_one must retry the oldest queued job ({poison}) and return its id, "
            f"got {returned}: a failed attempt puts the job back in its place, not at the end"
        )
        status, attempts, last_error, _ = job(conn, poison)
        assert (status, attempts) == ("queued", attempt), (
            f"after {attempt} failure(s) the job should be queued again with attempts {attempt}, it is "
            f"{status!r} with attempts {attempts}: record the failure, don't just roll it back"
            + (" (and 'failed' comes at the third failure, not before)" if status == "failed" else "")
        )
        assert last_error and error in last_error, f"last_error should hold the error {error!r}, got {last_error!r}"
        assert attempt == 1 or "alpha" not in last_error, (
            f"last_error is the latest error, not a log of all of them: {last_error!r}"
        )
    assert run_failing(conn, fail_with("smtp said: gamma")) == poison
    status, attempts, last_error, _ = job(conn, poison)
    assert (status, attempts) == ("failed", README_MAX_ATTEMPTS), (
        f"after {README_MAX_ATTEMPTS} failures (MAX_ATTEMPTS is 3) the job must be 'failed' and left alone; "
        f"it is {status!r} after {attempts} attempts: compare attempts + 1 with MAX_ATTEMPTS "
        "(a poison job retried forever blocks the queue)"
    )
    assert last_error and "gamma" in last_error, f"last_error should hold the third error, got {last_error!r}"
    ran: list[int] = []
    assert work_one(conn, lambda p: ran.append(p["n"])) == younger and ran == [2], (
        f"the failed job must be skipped and the younger job run: ran {ran} (claim only status = 'queued')"
    )
    assert work_one(conn, lambda p: ran.append(p["n"])) is None and ran == [2], (
        f"a failed job must never be handed out again (ran {ran}): claim only status = 'queued'"
    )
    assert job(conn, poison)[:2] == ("failed", README_MAX_ATTEMPTS)


@pytest.mark.stage(2, "failures and retries")
def test_a_job_that_fails_once_then_succeeds_is_done_with_two_attempts(connect: Connect) -> None:
    conn = connect()
    job_id = enqueue(conn, {"n": 1})
    assert run_failing(conn, fail_with("timeout talking to smtp")) == job_id
    assert work_one(conn, lambda p: None) == job_id
    status, attempts, _, done_at = job(conn, job_id)
    assert (status, attempts, done_at) == ("done", 2, True), (
        f"one failure then one success: ('done', attempts 2, done_at set) expected, got "
        f"{(status, attempts, done_at)}: attempts counts every run that reached an end"
    )


@pytest.mark.stage(2, "failures and retries")
@pytest.mark.parametrize("stop", [KeyboardInterrupt, SystemExit])
def test_a_worker_being_stopped_leaves_its_job_untouched(connect: Connect, stop: type[BaseException]) -> None:
    conn = connect()
    job_id = enqueue(conn, {"n": 1})

    def stopped(payload: dict[str, Any]) -> None:
        raise stop()

    try:
        returned = work_one(conn, stopped)
    except stop:
        pass
    else:
        pytest.fail(
            f"the handler raised {stop.__name__} and work_one returned {returned} instead of letting "
            "it through: the worker is being stopped, that is not the job's failure. Catch Exception, "
            "not BaseException (or a bare except)."
        )
    state = job(conn, job_id)
    assert state == ("queued", 0, None, False), (
        f"{stop.__name__} is the worker being stopped, not the job failing: the job must stay queued "
        f"with attempts 0 and no error (the transaction rolls back), it is {state}. Catch Exception, "
        "not BaseException."
    )
    ran: list[int] = []
    assert work_one(conn, lambda p: ran.append(p["n"])) == job_id and ran == [1], (
        f"after the stop, the next call must run the job: ran {ran}"
    )


# -- dying workers ---------------------------------------------------------------------------------

CRASHING_WORKER = """
import importlib.util, os, signal, sys
import psycopg
spec = importlib.util.spec_from_file_location("pg_job_queue", sys.argv[1])
queue = importlib.util.module_from_spec(spec)
spec.loader.exec_module(queue)
conn = psycopg.connect(sys.argv[2], autocommit=True)

def crash(payload):
    print("claimed", payload["n"], flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # the worker dies in the middle of the job

queue.work_one(conn, crash)
"""

STRANDED = (
    "If the claim is committed before the handler runs (status 'running'), a crash leaves the job "
    "stuck; hold the row lock in the transaction until the job is done."
)


@pytest.mark.stage(3, "crashed workers")
def test_a_crashed_workers_job_is_retried_by_another_worker(
    connect: Connect, kata_file: Callable[[str], Path], postgres_dsn: str
) -> None:
    conn = connect()
    job_id = enqueue(conn, {"n": 7})
    crashed = subprocess.run(
        [sys.executable, "-c", CRASHING_WORKER, str(kata_file("pg_job_queue.py")), postgres_dsn],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert "claimed 7" in crashed.stdout, (
        f"the crashing worker never ran the job (exit {crashed.returncode}): {crashed.stderr[-800:]}"
    )
    # Postgres notices the dead connection and rolls back its transaction, which frees the row.
    wait_until(lambda: unlocked(conn, job_id), 10, "Postgres to drop the dead worker's row lock")
    state = job(conn, job_id)
    assert state == ("queued", 0, None, False), (
        f"a worker died while running job {job_id}, which is now {state}, not queued with attempts 0 "
        f"(a crash is not a run that reached an end). {STRANDED}"
    )
    ran: list[int] = []
    assert work_one(conn, lambda p: ran.append(p["n"])) == job_id and ran == [7], (
        f"the next worker should run the dead worker's job {job_id}, it ran {ran}. {STRANDED}"
    )
    assert job(conn, job_id)[:2] == ("done", 1), f"job after its retry: {job(conn, job_id)}"


@pytest.mark.stage(3, "crashed workers")
def test_a_worker_whose_connection_is_killed_mid_job_leaves_the_job_to_the_next(connect: Connect) -> None:
    admin, worker, next_worker = connect(), connect(), connect()
    job_id = enqueue(admin, {"n": 9})
    pid = worker.info.backend_pid

    def killed(payload: dict[str, Any]) -> None:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
        wait_until(
            lambda: admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone() == (0,),
            10,
            "the worker's backend to exit after pg_terminate_backend",
        )

    try:
        returned = work_one(worker, killed)
    except Exception:
        pass  # the connection is gone: the outcome could not be recorded
    else:
        pytest.fail(
            f"the worker's connection was killed while the handler ran, yet work_one returned {returned} "
            "as if the job were recorded: let the connection error propagate"
        )
    wait_until(lambda: unlocked(admin, job_id), 10, "Postgres to drop the killed worker's row lock")
    state = job(admin, job_id)
    assert state == ("queued", 0, None, False), (
        f"the worker's connection died mid-job; the job should be queued with attempts 0, it is {state}. {STRANDED}"
    )
    ran: list[int] = []
    assert work_one(next_worker, lambda p: ran.append(p["n"])) == job_id and ran == [9], (
        f"the next worker should run job {job_id}, it ran {ran}. {STRANDED}"
    )

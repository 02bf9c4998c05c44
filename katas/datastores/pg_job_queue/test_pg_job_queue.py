"""Tests for the Postgres job queue: order, SKIP LOCKED, exactly once under parallel workers, retries."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dojo.testing import Background

from .pg_job_queue import MAX_ATTEMPTS, enqueue, work_one


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
    return conn.execute("SELECT id, status, attempts, last_error FROM jobs ORDER BY id").fetchall()


def test_enqueue_stores_a_queued_job_and_returns_its_id(connect: Connect) -> None:
    conn = connect()
    first = enqueue(conn, {"n": 1})
    second = enqueue(conn, {"n": 2})
    rows = conn.execute("SELECT id, payload, status, attempts FROM jobs ORDER BY id").fetchall()
    assert rows == [(first, {"n": 1}, "queued", 0), (second, {"n": 2}, "queued", 0)], (
        f"expected two queued jobs with their payloads and 0 attempts, the table holds {rows}"
    )


def test_an_empty_queue_gives_none_without_calling_the_handler(connect: Connect) -> None:
    called: list[object] = []
    assert work_one(connect(), called.append) is None
    assert called == [], "the handler ran although there was no job"


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
    assert seen == [0, 1, 2, 3], (
        f"jobs ran in the order {seen}, not oldest first: a table has no order without ORDER BY id"
    )
    assert done == ids, f"work_one should return each job's id: expected {ids}, got {done}"
    assert [row[1:3] for row in jobs(conn)] == [("done", 1)] * 4, f"after one run each: {jobs(conn)}"
    assert work_one(conn, seen.append) is None


def test_a_worker_passes_over_a_job_another_worker_holds(connect: Connect) -> None:
    """Another worker's lock must not make this one wait: that is what SKIP LOCKED is for."""
    setup, other_worker, conn = connect(), connect(), connect()
    first, second = enqueue(setup, {"n": 1}), enqueue(setup, {"n": 2})
    with other_worker.transaction():
        other_worker.execute("SELECT id FROM jobs WHERE id = %s FOR UPDATE", [first])
        took = Background(work_one, conn, lambda p: None, name="worker")
        took.thread.join(3)
        if took.thread.is_alive():
            conn.cancel_safe()  # unblock the worker so the test can finish
            took.thread.join(5)
            pytest.fail(
                "work_one waited on the row lock another worker holds on job 1: add SKIP LOCKED "
                "to SELECT ... FOR UPDATE so each worker takes the next free job at once"
            )
        assert took.result() == second, (
            f"job 1 is held by another worker, so this worker should take job 2, not {took.result()}"
        )


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
    assert not twice, f"jobs {twice} ran more than once: two workers claimed the same row"
    statuses = Counter(row[1] for row in jobs(setup))
    assert not missing and statuses == {"done": 40}, (
        f"jobs {missing} never ran; statuses {dict(statuses)}: every job must end 'done'"
    )
    assert sum(counts) == len(ids)
    assert peak >= 2, (
        "the workers never ran two jobs at the same time: each waited for the other's row lock. "
        "SKIP LOCKED lets a worker take the next free job instead of queueing."
    )


def test_a_failing_handler_leaves_the_job_for_a_retry_until_max_attempts(connect: Connect) -> None:
    conn = connect()
    job = enqueue(conn, {"n": 1})

    def fail(payload: dict[str, Any]) -> None:
        raise ValueError("smtp server said no")

    assert work_one(conn, fail) == job, "work_one must return the id of the job it tried"
    (_, status, attempts, error), = jobs(conn)
    assert (status, attempts) == ("queued", 1), (
        f"after one failure the job should be queued again with attempts 1, it is {status!r} "
        f"with attempts {attempts}: record the failure, don't just roll it back"
    )
    assert error and "smtp server said no" in error, f"last_error should hold the error, got {error!r}"
    for _ in range(MAX_ATTEMPTS - 1):
        work_one(conn, fail)
    (_, status, attempts, _), = jobs(conn)
    assert (status, attempts) == ("failed", MAX_ATTEMPTS), (
        f"after {MAX_ATTEMPTS} failures the job must be 'failed' and left alone; it is {status!r} "
        f"after {attempts} attempts (a poison job retried forever blocks the queue)"
    )
    assert work_one(conn, fail) is None, "a failed job must not be handed out again"


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


def test_a_crashed_workers_job_is_retried_by_another_worker(
    connect: Connect, kata_file: Callable[[str], Path], postgres_dsn: str
) -> None:
    conn = connect()
    job = enqueue(conn, {"n": 7})
    crashed = subprocess.run(
        [sys.executable, "-c", CRASHING_WORKER, str(kata_file("pg_job_queue.py")), postgres_dsn],
        capture_output=True, text=True, timeout=20,
    )
    assert "claimed 7" in crashed.stdout, (
        f"the crashing worker never ran the job (exit {crashed.returncode}): {crashed.stderr[-800:]}"
    )
    ran: list[int] = []
    for _ in range(50):  # Postgres notices the dead connection within moments
        if work_one(conn, lambda p: ran.append(p["n"])) is not None:
            break
        conn.execute("SELECT pg_sleep(0.05)")
    assert ran == [7], (
        f"a worker died while running job {job}, and no other worker could take it up again "
        f"(jobs: {jobs(conn)}). If the claim is committed before the handler runs, a crash "
        "leaves the job stuck; hold the row lock in the transaction until the job is done."
    )
    assert jobs(conn)[0][1] == "done"

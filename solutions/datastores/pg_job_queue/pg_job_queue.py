"""A Postgres job queue: workers claim jobs with SELECT ... FOR UPDATE SKIP LOCKED, each runs once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

MAX_ATTEMPTS = 3  # a job whose handler failed this many times is marked 'failed' and left alone

Handler = Callable[[dict[str, Any]], None]


def enqueue(conn: psycopg.Connection[Any], payload: dict[str, Any]) -> int:
    """Add a 'queued' job (attempts 0) with `payload` (any JSON object) to the queue; return its id.

    Runs on `conn` as it is: inside the caller's transaction, the job exists only if that
    transaction commits.

    >>> enqueue(conn, {"email": "ada@example.com"})
    1
    """
    # Jsonb adapts the dict to the jsonb column; RETURNING saves a second query for the id.
    row = conn.execute("INSERT INTO jobs (payload) VALUES (%s) RETURNING id", [Jsonb(payload)]).fetchone()
    assert row is not None
    (job_id,) = row
    return int(job_id)


def work_one(conn: psycopg.Connection[Any], handler: Handler) -> int | None:
    """Claim the oldest queued job nobody else holds, run `handler(payload)`, record the outcome.

    Returns the job's id, or None at once (handler not called) when no queued job is free: never
    wait for a job another worker holds. Success: 'done', attempts + 1, done_at set. A handler
    that raises an Exception: attempts + 1, last_error = its message, and the job queued again
    (still the oldest) or, when attempts reaches MAX_ATTEMPTS, 'failed' for good; work_one
    returns the id. A BaseException that is not an Exception (KeyboardInterrupt, SystemExit)
    propagates and leaves the job untouched. If the worker dies mid-handler, the job must go
    back to the queue by itself with its attempts unchanged; if the connection is lost, raise.
    `conn` is in autocommit mode: open the transaction yourself.
    """
    # One transaction holds the row lock from the claim to the final UPDATE. If this process
    # dies, Postgres sees the connection drop, rolls back, and the lock (the claim) is gone:
    # a crashed worker's job is retried without any lease or timeout bookkeeping.
    with conn.transaction():
        # ORDER BY id: oldest first. FOR UPDATE locks the row we take; SKIP LOCKED makes other
        # workers pass over it at once instead of queueing behind our lock.
        row = conn.execute(
            "SELECT id, payload FROM jobs WHERE status = 'queued' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
        ).fetchone()
        if row is None:
            return None
        job_id, payload = row
        try:
            handler(payload)
        except Exception as exc:
            # Recorded in the same transaction as the claim: either both happen or neither.
            conn.execute(
                "UPDATE jobs SET attempts = attempts + 1, last_error = %s, "
                "status = CASE WHEN attempts + 1 >= %s THEN 'failed' ELSE 'queued' END "
                "WHERE id = %s",
                [f"{type(exc).__name__}: {exc}", MAX_ATTEMPTS, job_id],
            )
        else:
            conn.execute(
                "UPDATE jobs SET status = 'done', attempts = attempts + 1, done_at = now() WHERE id = %s",
                [job_id],
            )
    return job_id

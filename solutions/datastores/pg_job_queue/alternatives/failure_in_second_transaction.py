"""A Postgres job queue: SELECT ... FOR UPDATE SKIP LOCKED claims; a failure is recorded in a second transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

MAX_ATTEMPTS = 3  # a job whose handler failed this many times is marked 'failed' and left alone

Handler = Callable[[dict[str, Any]], None]


class _HandlerFailed(Exception):
    """Carries the handler's error out of the claiming transaction, which then rolls back."""

    def __init__(self, error: Exception) -> None:
        super().__init__(error)
        self.error = error


def enqueue(conn: psycopg.Connection[Any], payload: dict[str, Any]) -> int:
    """Add a 'queued' job (attempts 0) with `payload` to the queue; return its id."""
    with conn.cursor() as cur:
        cur.execute("INSERT INTO jobs (payload) VALUES (%s) RETURNING id", [Jsonb(payload)])
        (job_id,) = cur.fetchone() or (None,)
    assert job_id is not None
    return int(job_id)


def work_one(conn: psycopg.Connection[Any], handler: Handler) -> int | None:
    """Claim the oldest free queued job, run `handler(payload)`, record the outcome."""
    job_id: int | None = None
    try:
        with conn.transaction():
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT id, payload FROM jobs WHERE status = 'queued' ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1"
                )
                row = cur.fetchone()
            if row is None:
                return None
            job_id = int(row[0])
            try:
                handler(row[1])
            except Exception as exc:
                raise _HandlerFailed(exc) from exc  # roll the claim back, record it below
            conn.execute(
                "UPDATE jobs SET status = 'done', attempts = attempts + 1, done_at = now() WHERE id = %s",
                [job_id],
            )
    except _HandlerFailed as failed:
        # The lock is gone; another worker may have taken the job meanwhile. The guard on status
        # keeps this from reopening a job somebody else finished or failed; a row they still
        # hold makes this UPDATE wait for their verdict and then re-check the guard.
        error = failed.error
        with conn.transaction():
            conn.execute(
                "UPDATE jobs SET attempts = attempts + 1, last_error = %(error)s, "
                "status = CASE WHEN attempts + 1 < %(max)s THEN 'queued' ELSE 'failed' END "
                "WHERE id = %(id)s AND status = 'queued'",
                {"error": f"{type(error).__name__}: {error}", "max": MAX_ATTEMPTS, "id": job_id},
            )
    return job_id

"""A Postgres job queue: the claim is one UPDATE ... RETURNING over a SKIP LOCKED subquery, failures in a savepoint."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

MAX_ATTEMPTS = 3  # a job whose handler failed this many times is marked 'failed' and left alone

Handler = Callable[[dict[str, Any]], None]

CLAIM = """
UPDATE jobs SET status = 'running'
 WHERE id = (SELECT id FROM jobs WHERE status = 'queued'
              ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING id, payload
"""


def enqueue(conn: psycopg.Connection[Any], payload: dict[str, Any]) -> int:
    """Add a 'queued' job (attempts 0) with `payload` to the queue; return its id."""
    cur = conn.execute("INSERT INTO jobs (payload) VALUES (%s) RETURNING id", [Jsonb(payload)])
    return int(cur.fetchone()[0])  # type: ignore[index]


def work_one(conn: psycopg.Connection[Any], handler: Handler) -> int | None:
    """Claim the oldest free queued job, run `handler(payload)`, record the outcome."""
    # The 'running' status is never committed on its own: it is visible only to this
    # transaction, and a crash rolls it back to 'queued' together with the row lock.
    with conn.transaction():
        claimed = conn.execute(CLAIM).fetchone()
        if claimed is None:
            return None
        job_id, payload = claimed
        failure: str | None = None
        try:
            # A savepoint around the work: if the handler's failure had left anything behind on
            # this connection, the savepoint's rollback clears it, and the claim stays.
            with conn.transaction():
                handler(payload)
        except Exception as exc:
            failure = str(exc) or type(exc).__name__
        if failure is None:
            conn.execute(
                "UPDATE jobs SET status = 'done', attempts = attempts + 1, done_at = now() WHERE id = %s",
                [job_id],
            )
        else:
            row = conn.execute(
                "UPDATE jobs SET attempts = attempts + 1, last_error = %s WHERE id = %s RETURNING attempts",
                [failure, job_id],
            ).fetchone()
            status = "failed" if row is not None and row[0] >= MAX_ATTEMPTS else "queued"
            conn.execute("UPDATE jobs SET status = %s WHERE id = %s", [status, job_id])
    return int(job_id)

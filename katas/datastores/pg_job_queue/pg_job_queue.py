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
    # TODO: INSERT into jobs (see schema.sql) and return the new id; Jsonb(payload) adapts the dict.
    raise NotImplementedError("enqueue")


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
    # TODO: in one transaction (`with conn.transaction():`): claim the oldest free queued job,
    # run the handler, then mark the job done, or record the failure. Think about what another
    # worker sees meanwhile, and what happens to the claim if this process dies mid-handler.
    raise NotImplementedError("work_one")


__all__ = ["Jsonb", "enqueue", "work_one"]

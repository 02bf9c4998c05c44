"""A Postgres job queue: workers claim jobs with SELECT ... FOR UPDATE SKIP LOCKED, each runs once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

MAX_ATTEMPTS = 3  # a job whose handler failed this many times is marked 'failed' and left alone

Handler = Callable[[dict[str, Any]], None]


def enqueue(conn: psycopg.Connection[Any], payload: dict[str, Any]) -> int:
    """Add a job with `payload` (any JSON object) to the queue; return its id.

    >>> enqueue(conn, {"email": "ada@example.com"})
    1
    """
    # TODO: INSERT into jobs (see schema.sql) and return the new id; Jsonb(payload) adapts the dict.
    raise NotImplementedError("enqueue")


def work_one(conn: psycopg.Connection[Any], handler: Handler) -> int | None:
    """Claim the oldest queued job nobody else holds, run `handler(payload)`, record the outcome.

    Returns the job's id, or None when no queued job is free. `conn` is in autocommit mode: open
    the transaction yourself. A handler that raises leaves the job queued for a retry (attempts
    + 1, last_error set) or, at MAX_ATTEMPTS, 'failed'. If the worker dies mid-handler, the job
    must go back to the queue by itself.
    """
    # TODO: in one transaction (`with conn.transaction():`): claim the oldest free queued job,
    # run the handler, then mark the job done, or record the failure. Think about what another
    # worker sees meanwhile, and what happens to the claim if this process dies mid-handler.
    raise NotImplementedError("work_one")


__all__ = ["Jsonb", "enqueue", "work_one"]

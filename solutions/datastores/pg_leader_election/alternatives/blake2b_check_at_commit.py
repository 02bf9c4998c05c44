"""Leader election on Postgres session-level advisory locks, with the term as a fencing token."""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg

T = TypeVar("T")
Conn = psycopg.Connection[Any]


class NotLeader(Exception):
    """lead() by an elector that does not hold the election (any more): the work was not committed."""


def election_key(name: str) -> int:
    """The election's advisory lock key: a signed 64-bit integer, the same in every process."""
    if name == "":
        raise ValueError("empty election name")
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


class Elector:
    """Leading is a flag plus a round trip: a live session keeps its session-level locks."""

    def __init__(self, dsn: str, name: str, *, worker: str) -> None:
        self.dsn, self.name, self.worker = dsn, name, worker
        self.key = election_key(name)
        self.term: int | None = None
        self._session: Conn | None = None

    def _alive(self) -> bool:
        if self._session is None:
            return False
        try:
            self._session.execute("SELECT 1")
            return True
        except psycopg.Error:
            self._session.close()
            self._session = None
            self.term = None
            return False

    def leading(self) -> bool:
        if self.term is not None and not self._alive():
            self.term = None
        return self.term is not None

    def campaign(self) -> bool:
        if self.leading():
            return True
        if not self._alive():
            self._session = psycopg.connect(self.dsn, autocommit=True)
        session = self._session
        assert session is not None
        won = session.execute("SELECT pg_try_advisory_lock(%s)", [self.key]).fetchone()
        if not (won and won[0]):
            return False
        with session.transaction():
            row = session.execute(
                "UPDATE election_term SET term = term + 1, leader = %s WHERE name = %s RETURNING term",
                [self.worker, self.name],
            ).fetchone()
            if row is None:
                row = session.execute(
                    "INSERT INTO election_term (name, term, leader) VALUES (%s, 1, %s) RETURNING term",
                    [self.name, self.worker],
                ).fetchone()
        assert row is not None
        self.term = row[0]
        return True

    def resign(self) -> None:
        if self.term is None:
            return
        self.term = None
        if self._alive():
            assert self._session is not None
            self._session.execute("SELECT pg_advisory_unlock(%s)", [self.key])

    def lead(self, work: Callable[[Conn], T]) -> T:
        if not self.leading():
            raise NotLeader(self.worker)
        term = self.term
        # A fresh connection per turn of work: nothing survives from a term to the next.
        with psycopg.connect(self.dsn) as conn:
            result = work(conn)
            # The fence at the end, locked until COMMIT: a new term cannot slip in after this check.
            row = conn.execute(
                "SELECT term FROM election_term WHERE name = %s FOR UPDATE", [self.name]
            ).fetchone()
            if row is None or row[0] != term:
                conn.rollback()
                raise NotLeader(f"term {term} is over")
            conn.commit()
            return result

    def run(self, work: Callable[[Conn], object], stop: threading.Event, *, interval: float = 1.0) -> None:
        try:
            while True:
                if self.campaign():
                    with contextlib.suppress(NotLeader):  # lost it: wait, then campaign again
                        self.lead(work)
                if stop.wait(interval):
                    break
        finally:
            self.resign()

    def close(self) -> None:
        self.resign()
        if self._session is not None:
            self._session.close()
            self._session = None

    def __enter__(self) -> Elector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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

# (classid << 32) | objid rebuilds the bigint key, two's complement and all (int8 shifts wrap).
MINE = (
    "SELECT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
    " AND objsubid = 1 AND granted AND ((classid::bigint << 32) | objid::bigint) = %s::bigint)"
)


class NotLeader(Exception):
    """lead() by an elector that does not hold the election (any more): the work was not committed."""


def election_key(name: str) -> int:
    """The election's advisory lock key: a signed 64-bit integer, the same in every process."""
    if not isinstance(name, str) or not name:
        raise ValueError("an election needs a name")
    value = int(hashlib.md5(name.encode(), usedforsecurity=False).hexdigest()[:16], 16)
    return value - 2**64 if value >= 2**63 else value


class Elector:
    """The session is autocommit; the work connection uses psycopg's implicit transactions."""

    def __init__(self, dsn: str, name: str, *, worker: str) -> None:
        self.dsn, self.name, self.worker = dsn, name, worker
        self.key = election_key(name)
        self.term: int | None = None
        self.session: Conn | None = None
        self.work_conn: Conn | None = None

    def _holds_lock(self) -> bool:
        if self.session is None or self.session.closed:
            return False
        try:
            row = self.session.execute(MINE, [self.key]).fetchone()
        except psycopg.Error:
            self.session.close()
            return False
        return bool(row and row[0])

    def leading(self) -> bool:
        if self.term is None:
            return False
        if not self._holds_lock():
            self.term = None
        return self.term is not None

    def campaign(self) -> bool:
        if self.leading():
            return True
        for _ in range(2):
            if self.session is None or self.session.closed:
                self.session = psycopg.connect(self.dsn, autocommit=True)
            try:
                got = self.session.execute("SELECT pg_try_advisory_lock(%s::bigint)", [self.key]).fetchone()
            except psycopg.OperationalError:
                self.session.close()
                continue
            if not (got and got[0]):
                return False
            row = self.session.execute(
                "INSERT INTO election_term AS t (name, term, leader) VALUES (%s, 1, %s)"
                " ON CONFLICT (name) DO UPDATE SET term = t.term + 1, leader = excluded.leader RETURNING term",
                [self.name, self.worker],
            ).fetchone()
            assert row is not None
            self.term = row[0]
            return True
        return False

    def resign(self) -> None:
        was, self.term = self.term, None
        if was is None or self.session is None or self.session.closed:
            return
        try:
            self.session.execute("SELECT pg_advisory_unlock(%s::bigint)", [self.key])
        except psycopg.OperationalError:
            self.session.close()

    def lead(self, work: Callable[[Conn], T]) -> T:
        if not self.leading():
            raise NotLeader(self.worker)
        if self.work_conn is None or self.work_conn.closed:
            self.work_conn = psycopg.connect(self.dsn)  # not autocommit: statements open a transaction
        conn = self.work_conn
        try:
            fenced = conn.execute(
                "UPDATE election_term SET term = term WHERE name = %s AND term = %s RETURNING term",
                [self.name, self.term],
            ).fetchone()
            if fenced is None:
                raise NotLeader(f"term {self.term} is over")
            result = work(conn)
        except BaseException:
            conn.rollback()
            raise
        conn.commit()
        return result

    def run(self, work: Callable[[Conn], object], stop: threading.Event, *, interval: float = 1.0) -> None:
        try:
            while not stop.is_set():
                if self.campaign():
                    with contextlib.suppress(NotLeader):
                        self.lead(work)
                stop.wait(timeout=interval)
        finally:
            self.resign()

    def close(self) -> None:
        self.resign()
        for conn in (self.session, self.work_conn):
            if conn is not None:
                conn.close()

    def __enter__(self) -> Elector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

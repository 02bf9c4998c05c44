"""Leader election on Postgres session-level advisory locks, with the term as a fencing token."""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg  # psycopg 3: psycopg.connect(dsn, autocommit=True), conn.transaction()

T = TypeVar("T")
Conn = psycopg.Connection[Any]

# Does this session hold the election's lock? pg_locks shows a bigint key as classid (its high
# 32 bits), objid (its low 32 bits) and objsubid = 1.
HOLDS_THE_LOCK = """
SELECT EXISTS (SELECT FROM pg_locks
 WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted AND objsubid = 1
   AND classid::bigint = (%(key)s >> 32) & 4294967295 AND objid::bigint = %(key)s & 4294967295)
"""
NEW_TERM = """
INSERT INTO election_term (name, term, leader) VALUES (%s, 1, %s)
ON CONFLICT (name) DO UPDATE SET term = election_term.term + 1, leader = EXCLUDED.leader
RETURNING term
"""


def scalar(conn: Conn, query: str, params: Any) -> Any:
    """The one value of a query that returns one row of one column."""
    row = conn.execute(query, params).fetchone()
    assert row is not None
    (value,) = row
    return value


class NotLeader(Exception):
    """lead() by an elector that does not hold the election (any more): the work was not committed."""


def election_key(name: str) -> int:
    """The election's advisory lock key: a signed 64-bit integer, the same in every process.

    >>> election_key("billing-cron") == election_key("billing-cron")
    True
    """
    if not name:
        raise ValueError("an election needs a non-empty name")
    # Not hash(): Python salts str hashes per process, and every worker must agree on the key.
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class Elector:
    """One worker's candidacy in the election `name`, on its own connections to `dsn`.

    >>> elector = Elector(dsn, "billing-cron", worker="worker-1")
    >>> if elector.campaign():
    ...     elector.lead(lambda conn: conn.execute("INSERT INTO invoices ..."))
    >>> elector.close()
    """

    def __init__(self, dsn: str, name: str, *, worker: str) -> None:
        self.dsn = dsn
        self.name = name
        self.worker = worker
        self.key = election_key(name)
        self.term: int | None = None  # the term this elector won; None while it is not leading
        self._session: Conn | None = None  # holds the advisory lock, for as long as it lives
        self._work: Conn | None = None  # leader-only transactions: never the session

    def _open_session(self) -> Conn:
        if self._session is None or self._session.closed:  # psycopg closes a session the server ended
            self._session = psycopg.connect(self.dsn, autocommit=True)
        return self._session

    def leading(self) -> bool:
        """True if this elector's session is alive and holds the election's lock (asked of the server)."""
        if self.term is None:
            return False
        assert self._session is not None
        try:
            holds = scalar(self._session, HOLDS_THE_LOCK, {"key": self.key})
        except psycopg.OperationalError:
            holds = False  # the server ended the session, and released its locks
        if not holds:
            self.term = None
        return bool(holds)

    def campaign(self) -> bool:
        """One attempt to become the leader; True if this elector leads now."""
        if self.leading():
            return True  # never lock twice: each pg_try_advisory_lock that succeeds needs its own unlock
        try:
            return self._try_to_win()
        except psycopg.OperationalError:  # killed while following: a fresh session, one more attempt
            return self._try_to_win()

    def _try_to_win(self) -> bool:
        session = self._open_session()
        if not scalar(session, "SELECT pg_try_advisory_lock(%s)", [self.key]):
            return False
        # Only the lock's holder starts a term; it waits for a leader-only transaction still in flight.
        self.term = scalar(session, NEW_TERM, [self.name, self.worker])
        return True

    def resign(self) -> None:
        """Give the election up (unlock once); a follower's resign does nothing."""
        if self.term is None:
            return
        self.term = None
        assert self._session is not None
        with contextlib.suppress(psycopg.OperationalError):  # a dead session holds nothing
            self._session.execute("SELECT pg_advisory_unlock(%s)", [self.key])

    def lead(self, work: Callable[[Conn], T]) -> T:
        """Run `work(conn)` in one transaction fenced by this elector's term; NotLeader if it does not lead."""
        if not self.leading():
            raise NotLeader(f"{self.worker} does not lead {self.name!r}")
        if self._work is None or self._work.closed:
            self._work = psycopg.connect(self.dsn, autocommit=True)
        with self._work.transaction():
            # FOR SHARE holds the term until commit: a new leader's term waits for this write.
            term = scalar(self._work, "SELECT term FROM election_term WHERE name = %s FOR SHARE", [self.name])
            if term != self.term:
                raise NotLeader(f"{self.worker}'s term {self.term} of {self.name!r} is over")
            return work(self._work)

    def run(self, work: Callable[[Conn], object], stop: threading.Event, *, interval: float = 1.0) -> None:
        """Until `stop` is set: campaign, lead(work) while leading, wait `interval`; resign at the end."""
        try:
            while not stop.is_set():
                if self.campaign():
                    with contextlib.suppress(NotLeader):  # lost it since the campaign: campaign again after the wait
                        self.lead(work)
                stop.wait(interval)  # setting stop ends the wait at once
        finally:
            self.resign()

    def close(self) -> None:
        """Resign and close both connections."""
        self.resign()
        for conn in (self._session, self._work):
            if conn is not None:
                conn.close()

    def __enter__(self) -> Elector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

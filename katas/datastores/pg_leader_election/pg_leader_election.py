"""Leader election on Postgres session-level advisory locks, with the term as a fencing token."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg  # psycopg 3: psycopg.connect(dsn, autocommit=True), conn.transaction()

T = TypeVar("T")
Conn = psycopg.Connection[Any]


class NotLeader(Exception):
    """lead() by an elector that does not hold the election (any more): the work was not committed."""


def election_key(name: str) -> int:
    """The election's advisory lock key: a signed 64-bit integer, the same in every process.

    An empty name: ValueError.

    >>> election_key("billing-cron") == election_key("billing-cron")
    True
    """
    # TODO: refuse ""; 8 bytes of a digest of the UTF-8 name (hashlib), read as a SIGNED integer.
    #       Not hash(): Python salts it per process, and every worker must derive the same key.
    raise NotImplementedError("election_key")


class Elector:
    """One worker's candidacy in the election `name`, on its own connections to `dsn`.

    `term` is the term this elector won, None while it does not lead (as far as it knows).

    >>> elector = Elector(dsn, "billing-cron", worker="worker-1")
    >>> if elector.campaign():
    ...     elector.lead(lambda conn: conn.execute("INSERT INTO invoices ..."))
    >>> elector.close()
    """

    def __init__(self, dsn: str, name: str, *, worker: str) -> None:
        # TODO: keep dsn, name, worker and the key; term = None. Connections may be opened lazily:
        #       a session (autocommit) that holds the lock, and a second one for leader-only work.
        raise NotImplementedError("Elector.__init__")

    def leading(self) -> bool:
        """True if this elector's session is alive and holds the election's lock (asked of the server)."""
        # TODO: a query on the session (pg_locks, or at least a round trip); a dead session
        #       (psycopg.OperationalError) means no lock and no term.
        raise NotImplementedError("Elector.leading")

    def campaign(self) -> bool:
        """One attempt to become the leader; True if this elector leads now.

        - Already leading: True, same term, the lock NOT taken again (advisory locks are re-entrant).
        - Else pg_try_advisory_lock(key) on the session, never a wait; a session the server ended
          is replaced by a new one (campaign never raises for it).
        - A win starts the next term in election_term (1 for a new election); a loss changes nothing.
        """
        # TODO
        raise NotImplementedError("Elector.campaign")

    def resign(self) -> None:
        """Give the election up (pg_advisory_unlock, once); a follower's resign does nothing."""
        # TODO
        raise NotImplementedError("Elector.resign")

    def lead(self, work: Callable[[Conn], T]) -> T:
        """Run `work(conn)` in one transaction fenced by this elector's term and return its result.

        - Not leading (never won, resigned, session dead: asked of the server first): NotLeader,
          work not called.
        - On a connection of its own (not the session): in one transaction, check that
          election_term still holds this elector's term, and hold that check until COMMIT; if the
          term moved on: NotLeader, nothing committed.
        - work raising: rolled back, the error propagates.
        """
        # TODO
        raise NotImplementedError("Elector.lead")

    def run(self, work: Callable[[Conn], object], stop: threading.Event, *, interval: float = 1.0) -> None:
        """Until `stop` is set: campaign, lead(work) while leading, wait `interval`; resign at the end.

        The wait ends at once when `stop` is set; an error from work (other than NotLeader) ends run,
        after resigning.
        """
        # TODO
        raise NotImplementedError("Elector.run")

    def close(self) -> None:
        """Resign and close both connections."""
        # TODO
        raise NotImplementedError("Elector.close")

    def __enter__(self) -> Elector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

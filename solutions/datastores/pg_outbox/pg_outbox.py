"""A transactional outbox on Postgres: orders and their events in one transaction, relayed in order."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

CHANNEL = "outbox"  # NOTIFY channel; the payload is the event's id
WRITERS_LOCK = "outbox writers"  # advisory lock (hashtext): one outbox writer at a time, ids commit in order
RELAY_LOCK = "outbox relay"  # advisory lock (hashtext): one relay publishes at a time, events leave in order


@dataclass(frozen=True)
class Event:
    """One outbox row: its id (the order of publication, the consumer's dedupe key) and payload."""

    id: int
    payload: dict[str, Any]


def _one(cursor: psycopg.Cursor[Any]) -> Any:
    """The value of a one-row, one-column result."""
    row = cursor.fetchone()
    assert row is not None
    (value,) = row
    return value


def place_order(conn: psycopg.Connection[Any], customer: str, amount: int) -> int:
    """Insert the order and its `order_placed` event in one transaction and NOTIFY; return the order id."""
    with conn.transaction():
        order_id: int = _one(
            conn.execute("INSERT INTO orders (customer, amount) VALUES (%s, %s) RETURNING id", [customer, amount])
        )
        # Held to the end of the (outermost) transaction: a later id cannot commit before an earlier one.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [WRITERS_LOCK])
        payload = {"type": "order_placed", "order_id": order_id, "customer": customer, "amount": amount}
        event_id = _one(conn.execute("INSERT INTO outbox (payload) VALUES (%s) RETURNING id", [Jsonb(payload)]))
        # NOTIFY is transactional: delivered on commit, dropped on rollback. The id only: 8000 bytes max.
        conn.execute("SELECT pg_notify(%s, %s)", [CHANNEL, str(event_id)])
    return order_id


def apply_event(conn: psycopg.Connection[Any], event: Event) -> bool:
    """The consumer: add the order's amount to the customer's total once per event id; False if seen."""
    with conn.transaction():
        # The primary key decides: a duplicate finds the row (or waits for the first one to commit).
        first = conn.execute(
            "INSERT INTO processed_events (event_id) VALUES (%s) ON CONFLICT DO NOTHING RETURNING event_id",
            [event.id],
        ).fetchone()
        if first is None:
            return False
        conn.execute(
            "INSERT INTO customer_totals (customer, total) VALUES (%s, %s) "
            "ON CONFLICT (customer) DO UPDATE SET total = customer_totals.total + excluded.total",
            [event.payload["customer"], event.payload["amount"]],
        )
    return True


class Relay:
    """Publishes unpublished outbox events, in id order, at least once each."""

    def __init__(
        self,
        dsn: str,
        publish: Callable[[Event], None],
        *,
        batch_size: int = 100,
        poll_interval: float = 1.0,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.dsn = dsn
        self.publish = publish
        self.batch_size = batch_size
        self.poll_interval = poll_interval

    def run_once(self) -> int:
        """Publish the oldest unpublished events (up to batch_size); return how many were published."""
        with psycopg.connect(self.dsn) as conn, conn.transaction():
            # Only the leader publishes; another relay returns 0 instead of publishing out of order.
            if not _one(conn.execute("SELECT pg_try_advisory_xact_lock(hashtext(%s))", [RELAY_LOCK])):
                return 0
            rows = conn.execute(
                "SELECT id, payload FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT %s",
                [self.batch_size],
            ).fetchall()
            for event_id, payload in rows:
                self.publish(Event(event_id, payload))
            # Marked in the transaction that read them, after publishing: a crash before the
            # commit leaves them unpublished (published again later), never lost.
            conn.execute("UPDATE outbox SET published_at = now() WHERE id = ANY(%s)", [[r[0] for r in rows]])
        return len(rows)

    def run(self, stop: threading.Event) -> None:
        """Publish until `stop` is set: wake on NOTIFY, and poll every poll_interval as a fallback."""
        # LISTEN is transactional too: on an autocommit connection it takes effect at once.
        with psycopg.connect(self.dsn, autocommit=True) as listener:
            listener.execute(f"LISTEN {CHANNEL}")
            while not stop.is_set():
                while self.run_once() == self.batch_size and not stop.is_set():
                    pass  # a full batch: there may be more
                # A notification ends the wait early; a lost one (nobody listening) waits for the poll.
                for _ in listener.notifies(timeout=self.poll_interval):
                    break

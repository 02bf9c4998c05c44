"""A transactional outbox on Postgres: orders and their events in one transaction, relayed in order."""

from __future__ import annotations

import select
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

CHANNEL = "outbox"  # NOTIFY channel; the payload is the event's id


@dataclass(frozen=True)
class Event:
    """One outbox row: its id (the order of publication, the consumer's dedupe key) and payload."""

    id: int
    payload: dict[str, Any]


def place_order(conn: psycopg.Connection[Any], customer: str, amount: int) -> int:
    """Insert the order and its event in one transaction, writers one at a time; NOTIFY on commit."""
    with conn.transaction():
        # Taken first, held until the outermost commit: outbox ids commit in the order they are taken.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('outbox writers'))")
        order = conn.execute("INSERT INTO orders (customer, amount) VALUES (%s, %s) RETURNING id", [customer, amount])
        order_id = int(order.fetchone()[0])  # type: ignore[index]
        payload = {"type": "order_placed", "order_id": order_id, "customer": customer, "amount": amount}
        event = conn.execute("INSERT INTO outbox (payload) VALUES (%s) RETURNING id", [Jsonb(payload)])
        event_id = int(event.fetchone()[0])  # type: ignore[index]
        conn.execute(sql.SQL("NOTIFY {}, {}").format(sql.Identifier(CHANNEL), sql.Literal(str(event_id))))
    return order_id


def apply_event(conn: psycopg.Connection[Any], event: Event) -> bool:
    """Apply once per event id: a per-event advisory lock makes the check and the insert one step."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [event.id])
        if conn.execute("SELECT 1 FROM processed_events WHERE event_id = %s", [event.id]).fetchone():
            return False
        conn.execute("INSERT INTO processed_events (event_id) VALUES (%s)", [event.id])
        updated = conn.execute(
            "UPDATE customer_totals SET total = total + %s WHERE customer = %s",
            [event.payload["amount"], event.payload["customer"]],
        )
        if updated.rowcount == 0:
            conn.execute(
                "INSERT INTO customer_totals (customer, total) VALUES (%s, %s) "
                "ON CONFLICT (customer) DO UPDATE SET total = customer_totals.total + excluded.total",
                [event.payload["customer"], event.payload["amount"]],
            )
    return True


class Relay:
    """One event per transaction, the head of the queue locked FOR UPDATE (no SKIP LOCKED): rivals wait."""

    def __init__(
        self,
        dsn: str,
        publish: Callable[[Event], None],
        *,
        batch_size: int = 100,
        poll_interval: float = 1.0,
    ) -> None:
        if batch_size <= 0:
            raise ValueError("batch_size must be positive")
        self.dsn, self.publish, self.batch_size, self.poll_interval = dsn, publish, batch_size, poll_interval

    def run_once(self) -> int:
        done = 0
        with psycopg.connect(self.dsn) as conn:  # implicit transactions: commit after each event
            while done < self.batch_size:
                head = conn.execute(
                    "SELECT id, payload FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT 1 FOR UPDATE"
                ).fetchone()
                if head is None:
                    conn.rollback()
                    break
                try:
                    self.publish(Event(head[0], head[1]))
                except BaseException:
                    conn.rollback()
                    raise
                conn.execute("UPDATE outbox SET published_at = clock_timestamp() WHERE id = %s", [head[0]])
                conn.commit()
                done += 1
        return done

    def run(self, stop: threading.Event) -> None:
        woken = threading.Event()
        with psycopg.connect(self.dsn, autocommit=True) as listener:
            listener.add_notify_handler(lambda _note: woken.set())
            listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
            while not stop.is_set():
                woken.clear()
                while self.run_once() >= self.batch_size and not stop.is_set():
                    pass
                # Readable socket = something arrived; a query makes psycopg read it and call the handler.
                readable, _, _ = select.select([listener.fileno()], [], [], self.poll_interval)
                if readable:
                    listener.execute("SELECT 1")

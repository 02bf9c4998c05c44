"""A transactional outbox on Postgres: orders and their events in one transaction, relayed in order."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg  # psycopg 3: psycopg.connect(dsn), conn.transaction(), conn.notifies(), types.json.Jsonb

CHANNEL = "outbox"  # NOTIFY channel; the payload is the event's id


@dataclass(frozen=True)
class Event:
    """One outbox row: its id (the order of publication, the consumer's dedupe key) and payload."""

    id: int
    payload: dict[str, Any]


def place_order(conn: psycopg.Connection[Any], customer: str, amount: int) -> int:
    """Insert the order and its `order_placed` event in one transaction and NOTIFY; return the order id.

    - One row in `orders`, one in `outbox` with payload
      {"type": "order_placed", "order_id": ..., "customer": ..., "amount": ...} and published_at NULL.
    - Both rows or neither: if anything fails, or the caller's own transaction (place_order may run
      inside one) rolls back, no order, no event, no notification.
    - NOTIFY channel "outbox" with the event's id as payload, delivered when the order commits.
    - An event with a lower id never commits after one with a higher id (the relay publishes in id order).

    >>> place_order(conn, "ada", 1250)
    1
    """
    # TODO: in one transaction (conn.transaction()): INSERT the order, INSERT its event, NOTIFY.
    raise NotImplementedError("place_order")


def apply_event(conn: psycopg.Connection[Any], event: Event) -> bool:
    """The consumer: add the order's amount to the customer's total once per event id.

    - Returns True if it applied the event now, False if that event id was applied before
      (a duplicate delivery), even when both deliveries run at the same time on two connections.
    - The effect (customer_totals) and the record (processed_events) commit together or not at all.

    >>> apply_event(conn, Event(1, {"type": "order_placed", "order_id": 1, "customer": "ada", "amount": 1250}))
    True
    """
    # TODO: in one transaction: record event.id in processed_events (its primary key decides who is
    #       first), and only if this delivery is the first, add the amount to customer_totals.
    raise NotImplementedError("apply_event")


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
        """`publish(event)` hands one event to the broker; it may raise. batch_size < 1 is a ValueError."""
        # TODO: validate and keep the arguments.
        raise NotImplementedError("Relay.__init__")

    def run_once(self) -> int:
        """Publish the oldest unpublished events (up to batch_size); return how many were published.

        - publish(event) is called in id order; an event is marked published (published_at set)
          only after its publish returned, so a crash or an error never loses one.
        - If publish raises, run_once raises that error; that event and every later one stay
          unpublished, to be published again by the next run.
        - While another relay's batch is in flight, run_once publishes nothing out of order: it
          returns 0 or waits for that batch.

        >>> Relay(dsn, broker.send).run_once()
        3
        """
        # TODO: in one transaction: become the only publishing relay, read the batch in id order,
        #       publish each, mark the ones you published.
        raise NotImplementedError("Relay.run_once")

    def run(self, stop: threading.Event) -> None:
        """Publish until `stop` is set: wake on NOTIFY, and poll every poll_interval as a fallback.

        - LISTEN on "outbox" before the first run_once, so a notification is never missed.
        - After a wake-up (a notification or poll_interval passed), publish until a batch comes back
          short, calling self.run_once() for each batch; never spin between wake-ups.
        - Returns once `stop` is set, at the latest after its current wait.
        """
        # TODO: LISTEN (it takes effect on commit: autocommit), drain, wait for a notification or
        #       the poll interval (conn.notifies(timeout=..., stop_after=1)), repeat.
        raise NotImplementedError("Relay.run")

"""Stream worker, alternative: XPENDING IDLE + XCLAIM instead of XAUTOCLAIM, WATCH/MULTI/EXEC for the effect."""

from __future__ import annotations

from collections.abc import Callable

import redis

BALANCES = "balances"  # hash: account -> balance, the effect credit_once applies
APPLIED = "applied"  # set: the ids of the entries whose effect has been applied (the dedup record)

Handler = Callable[[str, dict[str, str]], None]


def publish(r: redis.Redis, stream: str, fields: dict[str, str]) -> str:
    """Append an entry to `stream` (XADD with an id chosen by the server) and return its id."""
    return str(r.xadd(stream, fields))  # type: ignore[arg-type]


def credit_once(r: redis.Redis, entry_id: str, account: str, amount: int) -> bool:
    """Add `amount` to `account` in BALANCES unless entry `entry_id` was applied already.

    True if this call applied it, False for a duplicate; the record and the effect are one step.
    """
    # Optimistic: WATCH the dedup set, decide, and let EXEC refuse if another client changed it.
    with r.pipeline(transaction=True) as pipe:
        while True:
            try:
                pipe.watch(APPLIED)
                if pipe.sismember(APPLIED, entry_id):
                    pipe.unwatch()
                    return False
                pipe.multi()
                pipe.sadd(APPLIED, entry_id)
                pipe.hincrby(BALANCES, account, amount)
                pipe.execute()
                return True
            except redis.WatchError:
                continue  # someone applied an entry in between: look again

class Worker:
    """One consumer of a consumer group: see the README for the contract.

    >>> worker = Worker(r, "payments", "ledger", "worker-1", handler, min_idle_ms=60_000)
    >>> worker.run_once(count=10)
    ['1700000000000-0', '1700000000000-1']
    """

    def __init__(
        self,
        r: redis.Redis,
        stream: str,
        group: str,
        consumer: str,
        handler: Handler,
        *,
        min_idle_ms: int = 60_000,
        max_deliveries: int = 3,
        dead_letter_stream: str | None = None,
        start: str = "0",
    ) -> None:
        if min_idle_ms < 0:
            raise ValueError(f"min_idle_ms must be >= 0, got {min_idle_ms}")
        if max_deliveries < 1:
            raise ValueError(f"max_deliveries must be >= 1, got {max_deliveries}")
        self.r = r
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.handler = handler
        self.min_idle_ms = min_idle_ms
        self.max_deliveries = max_deliveries
        self.dead_letter_stream = dead_letter_stream or f"{stream}:dead"
        self.start = start

    # The helpers below are a suggested split; only run_once is called by the tests.

    def ensure_group(self) -> None:
        """Create the group (and the stream, MKSTREAM) at `start`; an existing group is kept as it is."""
        # XGROUP CREATE ... MKSTREAM; BUSYGROUP means another worker created it first.
        try:
            self.r.xgroup_create(self.stream, self.group, id=self.start, mkstream=True)
        except redis.ResponseError as exc:
            if not str(exc).startswith("BUSYGROUP"):
                raise

    def reclaim(self, count: int) -> list[tuple[str, dict[str, str]]]:
        """XPENDING with an IDLE filter finds up to `count` idle entries; XCLAIM takes them."""
        idle = self.r.xpending_range(self.stream, self.group, "-", "+", count, idle=self.min_idle_ms)
        if not idle:
            return []
        # XCLAIM re-checks the idle time, so an entry another worker claimed a moment ago is skipped.
        claimed = self.r.xclaim(self.stream, self.group, self.consumer, self.min_idle_ms,
                                [row["message_id"] for row in idle])
        return [(entry_id, fields) for entry_id, fields in claimed if entry_id is not None]

    def read_new(self, count: int, block_ms: int | None) -> list[tuple[str, dict[str, str]]]:
        """Up to `count` entries never delivered to this group (the special id '>')."""
        # XREADGROUP ... STREAMS stream >, with BLOCK only when block_ms is given.
        reply = self.r.xreadgroup(self.group, self.consumer, {self.stream: ">"}, count=count, block=block_ms)
        return list(reply[0][1]) if reply else []

    def deliveries(self, entry_id: str) -> int:
        """The server's delivery count of a pending entry (XPENDING's times_delivered)."""
        # XPENDING stream group entry_id entry_id 1.
        pending = self.r.xpending_range(self.stream, self.group, entry_id, entry_id, 1)
        return int(pending[0]["times_delivered"])

    def dead_letter(self, entry_id: str, fields: dict[str, str]) -> None:
        """Move a poison entry aside: its fields plus source_id to the dead-letter stream, then XACK."""
        # XADD dead_letter_stream {source_id: entry_id, **fields}, then XACK.
        # Copy first, ack second: a crash in between duplicates the dead letter, never loses the entry.
        self.r.xadd(self.dead_letter_stream, {**fields, "source_id": entry_id})  # type: ignore[dict-item]
        self.r.xack(self.stream, self.group, entry_id)

    def run_once(self, count: int = 10, block_ms: int | None = None) -> list[str]:
        """Reclaim idle entries, read new ones, handle each; return the ids handled and acked, in order."""
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count}")
        self.ensure_group()
        # the reclaimed entries first, then the new ones; handler, then XACK; poison aside.
        entries = self.reclaim(count) + self.read_new(count, block_ms)
        done: list[str] = []
        for entry_id, fields in entries:
            if self.deliveries(entry_id) > self.max_deliveries:
                self.dead_letter(entry_id, fields)
                continue
            try:
                self.handler(entry_id, fields)
            except Exception:
                continue  # stays pending: reclaimed (by anyone) once idle for min_idle_ms
            # Ack only now: a crash before this line leaves the entry pending, never lost.
            self.r.xack(self.stream, self.group, entry_id)
            done.append(entry_id)
        return done

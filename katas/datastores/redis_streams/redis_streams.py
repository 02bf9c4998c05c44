"""A Redis Streams consumer-group worker: ack after handling, reclaim the dead, park poison, apply once."""

from __future__ import annotations

from collections.abc import Callable

import redis

BALANCES = "balances"  # hash: account -> balance, the effect credit_once applies
APPLIED = "applied"  # set: the ids of the entries whose effect has been applied (the dedup record)

# KEYS[1] = APPLIED, KEYS[2] = BALANCES; ARGV = entry id, account, amount. One script runs as one
# indivisible step: the dedup record and the effect are written together or not at all.
CREDIT_ONCE_LUA = """
-- TODO: add ARGV[1] to the set KEYS[1]; only if it was not there yet, HINCRBY KEYS[2] ARGV[2] ARGV[3].
-- Return 1 when this call applied the credit, 0 for a duplicate.
return redis.error_reply('CREDIT_ONCE_LUA is not written yet')
"""

Handler = Callable[[str, dict[str, str]], None]


def publish(r: redis.Redis, stream: str, fields: dict[str, str]) -> str:
    """Append an entry to `stream` (XADD with an id chosen by the server) and return its id."""
    # TODO: XADD stream * field value ...
    raise NotImplementedError("publish")


def credit_once(r: redis.Redis, entry_id: str, account: str, amount: int) -> bool:
    """Add `amount` to `account` in BALANCES unless entry `entry_id` was applied already.

    True if this call applied it, False for a duplicate; the record and the effect are one step.
    """
    # TODO: the dedup record (entry_id in APPLIED) and the HINCRBY in one atomic step: a Lua script
    # (CREDIT_ONCE_LUA), or WATCH APPLIED + SISMEMBER + MULTI/EXEC, retried when EXEC is refused.
    raise NotImplementedError("credit_once")


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
        # TODO: refuse min_idle_ms < 0 and max_deliveries < 1 with ValueError.
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
        # TODO: XGROUP CREATE stream group start MKSTREAM; BUSYGROUP means another worker created it.
        raise NotImplementedError("Worker.ensure_group")

    def reclaim(self, count: int) -> list[tuple[str, dict[str, str]]]:
        """Claim up to `count` entries idle for at least min_idle_ms, following XAUTOCLAIM's cursor."""
        # TODO: XAUTOCLAIM from 0-0 until the cursor comes back as 0-0 or `count` entries are claimed.
        # Redis 6.2 replies [cursor, entries], 7.x [cursor, entries, deleted ids]: read it by index.
        raise NotImplementedError("Worker.reclaim")

    def read_new(self, count: int, block_ms: int | None) -> list[tuple[str, dict[str, str]]]:
        """Up to `count` entries never delivered to this group (the special id '>')."""
        # TODO: XREADGROUP GROUP group consumer COUNT count [BLOCK block_ms] STREAMS stream >
        raise NotImplementedError("Worker.read_new")

    def deliveries(self, entry_id: str) -> int:
        """The server's delivery count of a pending entry (XPENDING's times_delivered)."""
        # TODO: XPENDING stream group entry_id entry_id 1
        raise NotImplementedError("Worker.deliveries")

    def dead_letter(self, entry_id: str, fields: dict[str, str]) -> None:
        """Move a poison entry aside: its fields plus source_id to the dead-letter stream, then XACK."""
        # TODO: XADD dead_letter_stream * ...fields... source_id entry_id, then XACK (one MULTI).
        raise NotImplementedError("Worker.dead_letter")

    def run_once(self, count: int = 10, block_ms: int | None = None) -> list[str]:
        """Reclaim idle entries, read new ones, handle each; return the ids handled and acked, in order."""
        # TODO: refuse count < 1; create the group if missing; the reclaimed entries first, then the
        # new ones; for each: past max_deliveries -> dead letter; else handler, and XACK only after
        # it returned (an Exception leaves the entry pending; anything else propagates).
        raise NotImplementedError("Worker.run_once")

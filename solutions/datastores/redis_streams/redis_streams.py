"""A Redis Streams consumer-group worker: ack after handling, reclaim the dead, park poison, apply once."""

from __future__ import annotations

from collections.abc import Callable

import redis

BALANCES = "balances"  # hash: account -> balance, the effect credit_once applies
APPLIED = "applied"  # set: the ids of the entries whose effect has been applied (the dedup record)

# KEYS[1] = APPLIED, KEYS[2] = BALANCES; ARGV = entry id, account, amount. One script runs as one
# indivisible step: the dedup record and the effect are written together or not at all.
CREDIT_ONCE_LUA = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then
    return 0
end
redis.call('HINCRBY', KEYS[2], ARGV[2], ARGV[3])
return 1
"""

Handler = Callable[[str, dict[str, str]], None]


def publish(r: redis.Redis, stream: str, fields: dict[str, str]) -> str:
    """Append an entry to `stream` (XADD with an id chosen by the server) and return its id."""
    return str(r.xadd(stream, fields))  # type: ignore[arg-type]


def credit_once(r: redis.Redis, entry_id: str, account: str, amount: int) -> bool:
    """Add `amount` to `account` in BALANCES unless entry `entry_id` was applied already.

    True if this call applied it, False for a duplicate; the record and the effect are one step.
    """
    # the dedup record (entry_id in APPLIED) and the HINCRBY in one atomic step.
    return bool(r.eval(CREDIT_ONCE_LUA, 2, APPLIED, BALANCES, entry_id, account, amount))


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
        """Claim up to `count` entries idle for at least min_idle_ms, following XAUTOCLAIM's cursor."""
        # XAUTOCLAIM from 0-0 until the cursor comes back as 0-0 or `count` entries are claimed.
        claimed: list[tuple[str, dict[str, str]]] = []
        cursor = "0-0"
        while len(claimed) < count:
            # Redis 6.2 replies [cursor, entries], 7.x [cursor, entries, deleted ids]: read by index.
            reply = self.r.xautoclaim(self.stream, self.group, self.consumer, self.min_idle_ms, cursor,
                                      count=count - len(claimed))
            cursor = reply[0]
            # On 6.2 an entry deleted while pending comes back without its id and fields: skip it.
            claimed += [(entry_id, fields) for entry_id, fields in reply[1] if entry_id is not None]
            if cursor == "0-0":
                break
        return claimed

    def read_new(self, count: int, block_ms: int | None) -> list[tuple[str, dict[str, str]]]:
        """Up to `count` entries never delivered to this group (the special id '>')."""
        # XREADGROUP ... STREAMS stream >, with BLOCK only when block_ms is given.
        reply = self.r.xreadgroup(self.group, self.consumer, {self.stream: ">"}, count=count, block=block_ms)
        return [entry for _, entries in reply or [] for entry in entries]  # [[stream, entries]]

    def deliveries(self, entry_id: str) -> int:
        """The server's delivery count of a pending entry (XPENDING's times_delivered)."""
        # XPENDING stream group entry_id entry_id 1.
        (row,) = self.r.xpending_range(self.stream, self.group, entry_id, entry_id, 1)
        return int(row["times_delivered"])

    def dead_letter(self, entry_id: str, fields: dict[str, str]) -> None:
        """Move a poison entry aside: its fields plus source_id to the dead-letter stream, then XACK."""
        # XADD dead_letter_stream {source_id: entry_id, **fields}, then XACK.
        with self.r.pipeline(transaction=True) as pipe:
            pipe.xadd(self.dead_letter_stream, {**fields, "source_id": entry_id})  # type: ignore[dict-item]
            pipe.xack(self.stream, self.group, entry_id)
            pipe.execute()

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

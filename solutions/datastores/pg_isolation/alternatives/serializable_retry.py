"""Money transfers and an on-call rota that stay correct under concurrent transactions in Postgres."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from psycopg import errors

RETRIES = 10  # re-runs of a whole transaction after a serialization failure or a deadlock

T = TypeVar("T")


class InsufficientFunds(ValueError):
    """The source account holds less than the amount: nothing was changed."""


class LastOnCall(Exception):
    """Going off call would leave nobody on call for the shift: nothing was changed."""


def serializable(dsn: str, work: Callable[[psycopg.Connection[Any]], T], retries: int) -> T:
    """No locks of our own: SERIALIZABLE aborts one of any two transactions that could not run one after
    the other, and the loop runs it again from BEGIN, with a new snapshot."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.isolation_level = psycopg.IsolationLevel.SERIALIZABLE
        for attempt in range(retries + 1):
            try:
                with conn.transaction():
                    return work(conn)
            # 40001 and 40P01; in psycopg 3 neither is a subclass of TransactionRollback
            except (errors.SerializationFailure, errors.DeadlockDetected):
                if attempt == retries:
                    raise
        raise AssertionError("unreachable")


def transfer(dsn: str, from_id: int, to_id: int, amount: int, *, retries: int = RETRIES) -> None:
    """Move `amount` cents from account `from_id` to account `to_id`, or nothing at all."""
    if amount <= 0 or from_id == to_id:
        raise ValueError(f"refused: transfer of {amount} from {from_id} to {to_id}")

    def move(conn: psycopg.Connection[Any]) -> None:
        source = conn.execute("SELECT balance FROM accounts WHERE id = %s", [from_id]).fetchone()
        target = conn.execute("SELECT balance FROM accounts WHERE id = %s", [to_id]).fetchone()
        if source is None or target is None:
            raise LookupError("unknown account")
        if source[0] < amount:
            raise InsufficientFunds(f"account {from_id} holds {source[0]}")
        conn.execute("UPDATE accounts SET balance = %s WHERE id = %s", [source[0] - amount, from_id])
        conn.execute("UPDATE accounts SET balance = %s WHERE id = %s", [target[0] + amount, to_id])

    serializable(dsn, move, retries)


def go_off_call(dsn: str, doctor_id: int, shift: str, *, retries: int = RETRIES) -> None:
    """Take `doctor_id` off call for `shift`, unless nobody else would stay on call."""

    def leave(conn: psycopg.Connection[Any]) -> None:
        me = conn.execute(
            "SELECT on_call FROM on_call WHERE doctor_id = %s AND shift = %s", [doctor_id, shift]
        ).fetchone()
        if me is None:
            raise LookupError(f"doctor {doctor_id} has no row for shift {shift!r}")
        if not me[0]:
            return
        others = conn.execute(
            "SELECT count(*) FROM on_call WHERE shift = %s AND doctor_id <> %s AND on_call", [shift, doctor_id]
        ).fetchone()
        if others is None or others[0] == 0:
            raise LastOnCall(f"doctor {doctor_id} is the last one on call for {shift!r}")
        conn.execute("UPDATE on_call SET on_call = false WHERE doctor_id = %s AND shift = %s", [doctor_id, shift])

    serializable(dsn, leave, retries)

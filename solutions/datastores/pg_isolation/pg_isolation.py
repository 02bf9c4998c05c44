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


def in_transaction(dsn: str, work: Callable[[psycopg.Connection[Any]], T], retries: int) -> T:
    """Run `work(conn)` in one transaction; re-run ALL of it (new snapshot) after a 40001 or 40P01."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        attempt = 0
        while True:
            try:
                with conn.transaction():
                    return work(conn)
            except (errors.SerializationFailure, errors.DeadlockDetected):
                if attempt >= retries:
                    raise
                attempt += 1


def transfer(dsn: str, from_id: int, to_id: int, amount: int, *, retries: int = RETRIES) -> None:
    """Move `amount` cents from account `from_id` to account `to_id`, or nothing at all."""
    if amount <= 0:
        raise ValueError(f"amount must be positive, got {amount}")
    if from_id == to_id:
        raise ValueError("a transfer needs two different accounts")

    def move(conn: psycopg.Connection[Any]) -> None:
        # Both rows locked, always lowest id first: A->B and B->A queue up instead of deadlocking.
        rows = conn.execute(
            "SELECT id, balance FROM accounts WHERE id = ANY(%s) ORDER BY id FOR UPDATE", [[from_id, to_id]]
        ).fetchall()
        balances = dict(rows)
        if len(balances) < 2:
            raise LookupError(f"no account {from_id if from_id not in balances else to_id}")
        if balances[from_id] < amount:
            raise InsufficientFunds(f"account {from_id} holds {balances[from_id]}, cannot send {amount}")
        conn.execute("UPDATE accounts SET balance = balance - %s WHERE id = %s", [amount, from_id])
        conn.execute("UPDATE accounts SET balance = balance + %s WHERE id = %s", [amount, to_id])

    in_transaction(dsn, move, retries)


def go_off_call(dsn: str, doctor_id: int, shift: str, *, retries: int = RETRIES) -> None:
    """Take `doctor_id` off call for `shift`, unless nobody else would stay on call."""

    def leave(conn: psycopg.Connection[Any]) -> None:
        # Locking every row of the shift serializes all changes to it: the check stays true until commit.
        rows = conn.execute(
            "SELECT doctor_id, on_call FROM on_call WHERE shift = %s ORDER BY doctor_id FOR UPDATE", [shift]
        ).fetchall()
        rota = dict(rows)
        if doctor_id not in rota:
            raise LookupError(f"doctor {doctor_id} has no row for shift {shift!r}")
        if not rota[doctor_id]:
            return  # already off call
        if not any(on for doctor, on in rota.items() if doctor != doctor_id):
            raise LastOnCall(f"doctor {doctor_id} is the last one on call for {shift!r}")
        conn.execute("UPDATE on_call SET on_call = false WHERE doctor_id = %s AND shift = %s", [doctor_id, shift])

    in_transaction(dsn, leave, retries)

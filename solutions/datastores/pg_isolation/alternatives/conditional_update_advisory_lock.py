"""Money transfers and an on-call rota that stay correct under concurrent transactions in Postgres."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import errors

RETRIES = 10  # re-runs of a whole transaction after a serialization failure or a deadlock

RETRYABLE = {"40001", "40P01"}


class InsufficientFunds(ValueError):
    """The source account holds less than the amount: nothing was changed."""


class LastOnCall(Exception):
    """Going off call would leave nobody on call for the shift: nothing was changed."""


def with_retries(dsn: str, work: Callable[[psycopg.Connection[Any]], None], retries: int) -> None:
    """READ COMMITTED; the whole transaction again on a retryable SQLSTATE, counted down."""
    left = retries
    with psycopg.connect(dsn) as conn:  # not autocommit: psycopg opens the transaction, we end it
        while True:
            try:
                work(conn)
                conn.commit()
                return
            except errors.Error as exc:
                conn.rollback()
                if exc.sqlstate not in RETRYABLE or left == 0:
                    raise
                left -= 1
            except BaseException:
                conn.rollback()
                raise


def transfer(dsn: str, from_id: int, to_id: int, amount: int, *, retries: int = RETRIES) -> None:
    """Move `amount` cents from account `from_id` to account `to_id`, or nothing at all."""
    if amount <= 0:
        raise ValueError("amount must be positive")
    if from_id == to_id:
        raise ValueError("same account")

    def debit(conn: psycopg.Connection[Any]) -> None:
        # The check is in the UPDATE: under READ COMMITTED a blocked UPDATE re-reads the row it waited
        # for and evaluates `balance >= amount` on the latest committed balance.
        if conn.execute(
            "UPDATE accounts SET balance = balance - %s WHERE id = %s AND balance >= %s RETURNING id",
            [amount, from_id, amount],
        ).fetchone() is None:
            if conn.execute("SELECT 1 FROM accounts WHERE id = %s", [from_id]).fetchone() is None:
                raise LookupError(f"no account {from_id}")
            raise InsufficientFunds(f"account {from_id} holds less than {amount}")

    def credit(conn: psycopg.Connection[Any]) -> None:
        if conn.execute(
            "UPDATE accounts SET balance = balance + %s WHERE id = %s RETURNING id", [amount, to_id]
        ).fetchone() is None:
            raise LookupError(f"no account {to_id}")

    def move(conn: psycopg.Connection[Any]) -> None:
        # Rows are written lowest id first, so opposite transfers queue instead of deadlocking.
        steps = (debit, credit) if from_id < to_id else (credit, debit)
        for step in steps:
            step(conn)

    with_retries(dsn, move, retries)


def go_off_call(dsn: str, doctor_id: int, shift: str, *, retries: int = RETRIES) -> None:
    """Take `doctor_id` off call for `shift`, unless nobody else would stay on call."""

    def leave(conn: psycopg.Connection[Any]) -> None:
        # A transaction-scoped advisory lock per shift: a materialized conflict, so the check and the
        # write of two doctors of one shift never overlap. It is released at commit or rollback.
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [shift])
        rows = conn.execute("SELECT doctor_id, on_call FROM on_call WHERE shift = %s", [shift]).fetchall()
        on = {doctor for doctor, is_on in rows if is_on}
        if doctor_id not in {doctor for doctor, _ in rows}:
            raise LookupError(f"doctor {doctor_id} has no row for shift {shift!r}")
        if doctor_id not in on:
            return
        if on == {doctor_id}:
            raise LastOnCall(f"doctor {doctor_id} is the last one on call for {shift!r}")
        conn.execute("UPDATE on_call SET on_call = false WHERE doctor_id = %s AND shift = %s", [doctor_id, shift])

    with_retries(dsn, leave, retries)

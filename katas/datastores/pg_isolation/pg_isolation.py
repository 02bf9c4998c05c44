"""Money transfers and an on-call rota that stay correct under concurrent transactions in Postgres."""

from __future__ import annotations

import psycopg  # psycopg 3: psycopg.connect(dsn), conn.transaction(), psycopg.errors

RETRIES = 10  # re-runs of a whole transaction after a serialization failure or a deadlock


class InsufficientFunds(ValueError):
    """The source account holds less than the amount: nothing was changed."""


class LastOnCall(Exception):
    """Going off call would leave nobody on call for the shift: nothing was changed."""


def transfer(dsn: str, from_id: int, to_id: int, amount: int, *, retries: int = RETRIES) -> None:
    """Move `amount` cents from account `from_id` to account `to_id` (table `accounts`), or nothing at all.

    - `amount <= 0`, or `from_id == to_id`: raise ValueError before touching the database.
    - Either account missing: raise LookupError, nothing changed.
    - The source holds less than `amount`: raise InsufficientFunds, nothing changed (exactly the
      balance is fine: it reaches 0).
    - Correct under any number of concurrent calls: money is conserved, no balance goes negative,
      no update is lost, and A->B with B->A at the same time never deadlocks in the caller's face.
    - A serialization failure (SQLSTATE 40001) or a deadlock (40P01) re-runs the WHOLE transaction,
      at most `retries` more times; then that error is raised. Any other error is raised at once.

    >>> transfer("postgresql://...", 1, 2, 500)
    """
    # TODO: validate, then in one transaction (psycopg.connect(dsn), conn.transaction()):
    #       read/lock both rows, check, debit, credit. Wrap it in a retry loop.
    raise NotImplementedError("transfer")


def go_off_call(dsn: str, doctor_id: int, shift: str, *, retries: int = RETRIES) -> None:
    """Take `doctor_id` off call for `shift` (table `on_call`), unless nobody else would stay on call.

    - No row for (doctor_id, shift): raise LookupError.
    - Already off call: change nothing, return.
    - No other doctor on call for that shift: raise LastOnCall, nothing changed.
    - Two doctors going off call at the same time must never leave the shift with nobody on call.
    - Retries exactly as `transfer` does.

    >>> go_off_call("postgresql://...", 1, "2024-05-01 night")
    """
    # TODO: in one transaction, check that another doctor stays on call, and set on_call = false;
    #       make the check still true when you commit. Same retry loop as transfer.
    raise NotImplementedError("go_off_call")

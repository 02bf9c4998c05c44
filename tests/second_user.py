"""Run a piece of a test as another local user (nobody), as a hostile neighbour on a shared machine would."""

from __future__ import annotations

import os
import pwd
import traceback
from collections.abc import Callable

import pytest

NOBODY = 65534


def other_uid() -> int:
    """A uid that is not ours; the tests that need one are skipped where we cannot switch to it."""
    if os.geteuid() != 0:
        pytest.skip("acting as a second user needs root (os.setuid in a forked child); run as root")
    try:
        return pwd.getpwnam("nobody").pw_uid
    except KeyError:
        return NOBODY


def as_other_user(action: Callable[[], None]) -> None:
    """Run `action` in a forked child switched to another uid; raise if it failed there."""
    uid = other_uid()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        os.close(read_end)
        status = 0
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            action()
        except BaseException:  # reported to the parent, whatever it was
            os.write(write_end, traceback.format_exc().encode())
            status = 1
        os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as errors:
        failure = errors.read().decode()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, f"as uid {uid}:\n{failure}"

"""`kata watch` and `kata drill` offer keys only where a key can come from (issue 33, item 9)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from dojo.learner.keys import KeyReader

from .conftest import KATA_COMMAND, cli_env

pytestmark = pytest.mark.time_limit(300)


def test_stdin_from_dev_null_sends_no_keys_and_a_pipe_does() -> None:
    with open(os.devnull) as null, KeyReader(lambda key: None, stream=null) as reader:
        assert not reader.interactive, "no key can come from /dev/null"
    read_end, write_end = os.pipe()
    with os.fdopen(read_end) as pipe, KeyReader(lambda key: None, stream=pipe) as reader:
        assert reader.interactive, "a script can send keys through a pipe"
    os.close(write_end)


def _first_lines(repo: Path, *args: str, until: str) -> str:
    proc = subprocess.Popen([*KATA_COMMAND, *args], cwd=repo, env=cli_env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    assert proc.stdout is not None
    output = ""
    deadline = time.monotonic() + 60
    try:
        while until not in output and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            output += line
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()
    return output


def test_watch_with_stdin_from_dev_null_offers_no_keys(repo: Path) -> None:
    output = _first_lines(repo, "watch", until="watching")
    assert "watching" in output and "Ctrl-C stops" in output, output
    assert "keys:" not in output, output


def test_drill_with_stdin_from_dev_null_offers_no_keys(repo: Path) -> None:
    output = _first_lines(repo, "drill", "adder", until="on the clock")
    assert "Ctrl-C gives up" in output, output
    assert "r re-run" not in output, output

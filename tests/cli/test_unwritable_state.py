"""An unwritable .kata/ gives one line saying what to fix, never a traceback (issue 33, item 9)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import KATA_COMMAND, cli_env

pytestmark = pytest.mark.time_limit(300)


@pytest.fixture
def frozen_state(repo: Path) -> Iterator[Path]:
    """.kata/ that even root cannot write into: the immutable flag (we run as root)."""
    folder = repo / ".kata"
    folder.mkdir(exist_ok=True)
    (folder / "state.json").write_text('{"runs": {}}')
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed: cannot make .kata/ unwritable for root")
    done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"chattr +i refused here ({done.stderr.strip()}): cannot make .kata/ unwritable")
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


@pytest.mark.parametrize("args", [["hint", "adder"], ["run", "adder"], ["next"],
                                  ["reset", "adder", "--yes"], ["drill", "adder"], ["watch"]])
def test_an_unwritable_state_folder_is_one_line_saying_what_to_fix(
    repo: Path, frozen_state: Path, args: list[str]
) -> None:
    done = subprocess.run([*KATA_COMMAND, *args], cwd=repo, env=cli_env(), capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output, output
    assert "kata keeps your progress in" in output and "make it writable" in output, output

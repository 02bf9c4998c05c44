"""Module-level code that never returns fails the kata's tests within its time limit; the run goes on."""

from __future__ import annotations

import re
import time

import pytest

from .conftest import FakeRepo

HEADLINE = (
    "importing katas/demo/blocks/blocks.py did not finish in 1 s: code at module level runs on "
    "import (a demo call? an infinite loop?)"
)
SOLUTION = "import threading\n\n\ndef answer():\n    return 42\n"
TESTS = """
from .blocks import answer


def test_one():
    assert answer() == 42


def test_two():
    assert answer() == 42


class TestInAClass:
    def test_three(self):
        assert answer() == 42
"""
# A kata after the hanging one, in the same run: it must still run, and pass.
AFTER_TESTS = "from .after import answer\n\n\ndef test_after():\n    assert answer() == 42\n"

# module-level code a learner leaves at the bottom of their file, and the line that never returns
HANGS = {
    "a_manual_check_that_blocks": ("threading.Event().wait()  # a manual check", r"threading\.Event\(\)\.wait\(\)"),
    "an_infinite_loop": ("while True:\n    pass", r"(while True:|pass)"),
    "a_long_sleep": ("import time\ntime.sleep(10**6)", r"time\.sleep\(10\*\*6\)"),
}


def _add(fake_repo: FakeRepo, bottom: str) -> None:
    fake_repo.add_kata("blocks", stub=SOLUTION + "\n" + bottom + "\n", solution=SOLUTION, tests=TESTS, limit=1)
    fake_repo.add_kata("after", stub=SOLUTION, solution=SOLUTION, tests=AFTER_TESTS, limit=1)


@pytest.mark.parametrize("bottom, stuck_at", HANGS.values(), ids=HANGS.keys())
def test_an_import_that_never_returns_fails_every_test_of_the_kata(
    fake_repo: FakeRepo, bottom: str, stuck_at: str
) -> None:
    _add(fake_repo, bottom)
    started = time.monotonic()
    result = fake_repo.pytest("katas/demo", "-v", timeout=90)
    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert re.search(r"3 failed, 1 passed", output), output
    for name in ("test_one", "test_two", "test_three"):
        assert re.search(rf"::{name} FAILED", output), f"{name} did not fail:\n{output}"
    assert "test_after PASSED" in output, "the run goes on after the hanging import"
    assert output.count(HEADLINE) >= 3, f"every test says why:\n{output}"
    assert re.search(rf"blocks\.py:\d+ in <module>: {stuck_at}", output), f"the learner's line:\n{output}"
    assert elapsed < 45, f"the run took {elapsed:.0f} s: the import's time limit is 1 s"


def test_the_hanging_module_is_imported_once_not_once_per_test_file(fake_repo: FakeRepo) -> None:
    _add(fake_repo, "while True:\n    pass")
    second = fake_repo.root / "katas/demo/blocks/test_more.py"
    second.write_text("from .blocks import answer\n\n\ndef test_four():\n    assert answer() == 42\n")
    started = time.monotonic()
    result = fake_repo.pytest("katas/demo", "-q", timeout=90)
    output = result.stdout + result.stderr
    assert re.search(r"4 failed, 1 passed", output), output
    assert output.count("importing katas/demo/blocks/blocks.py did not finish") >= 4, output
    assert time.monotonic() - started < 45


def test_a_module_imported_during_a_test_keeps_the_tests_own_limit(fake_repo: FakeRepo) -> None:
    """The import's limit must not cancel the limit of the test that imports it lazily."""
    fake_repo.add_kata(
        "lazy",
        stub=SOLUTION,
        solution=SOLUTION,
        tests="""
            import importlib

            def test_imports_then_loops():
                importlib.import_module("katas.demo.lazy.lazy")
                while True:
                    pass

            def test_imports_and_passes():
                assert importlib.import_module("katas.demo.lazy.lazy").answer() == 42
        """,
        limit=1,
    )
    result = fake_repo.pytest("katas/demo", "-q", timeout=90)
    output = result.stdout + result.stderr
    assert re.search(r"1 failed, 1 passed", output), output
    assert "test_imports_then_loops timed out after 1 s: deadlock or infinite loop?" in output, output


def test_a_test_module_that_uses_the_module_at_import_shows_the_import_timeout(fake_repo: FakeRepo) -> None:
    """If the tests can't even be collected without the learner's objects, the collection error
    says why: the learner's import never finished, not whatever the stand-in tripped over."""
    fake_repo.add_kata(
        "blocks",
        stub=SOLUTION + "\nwhile True:\n    pass\n",
        solution=SOLUTION,
        tests="from .blocks import answer\n\nVALUE = answer()\n\n\ndef test_one():\n    assert VALUE == 42\n",
        limit=1,
    )
    result = fake_repo.pytest("katas/demo", "-q", timeout=90)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert HEADLINE in output, output

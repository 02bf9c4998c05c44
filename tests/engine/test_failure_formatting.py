"""A learner's failure is always shown: pytest's formatting of it can't be crashed by their objects."""

from __future__ import annotations

import re

import pytest

from dojo import safe_failures

from .conftest import FakeRepo

# A garbage cycle whose finalizer parses Python while pytest formats a failure: what orphaned
# asyncio tasks do when their destructor logs a traceback. On CPython 3.11 that nested parse
# corrupts the outer one ("AST constructor recursion depth mismatch") and pytest used to crash
# with an INTERNALERROR instead of showing the failure. Away from the formatting it only re-arms.
BOMB_TESTS = '''
import ast
import sys

from .bomb import answer

FORMATTING = {"repr_failure", "_repr_failure_py"}
state = {"rearmed": 0, "fired": 0}


class Bomb:
    def __init__(self):
        self.me = self  # a cycle: only the garbage collector frees it

    def __del__(self):
        frame = sys._getframe(1)
        while frame is not None and frame.f_code.co_name not in FORMATTING:
            frame = frame.f_back
        if frame is not None:
            state["fired"] += 1
            ast.parse("def destroyed_task():\\n    return 'pending'\\n" * 20)
        elif state["rearmed"] < 100_000:
            state["rearmed"] += 1
            Bomb()


def test_a_failure_formatted_while_a_finalizer_parses_python():
    Bomb()
    assert answer() == 42, "answer() gave the wrong number: the learner's message"


def test_the_run_goes_on():
    assert answer() is not None
'''
# pytest parses the whole test file to show the failing statement: make that parse allocate a lot
PADDING = "".join(f"\n\ndef helper_{i}(x):\n    return [x, {{'n': {i}}}, (x, x)]\n" for i in range(150))


def test_a_finalizer_parsing_python_during_formatting_does_not_crash_pytest(fake_repo: FakeRepo) -> None:
    fake_repo.add_kata(
        "bomb",
        stub="def answer():\n    return 41  # TODO\n",
        solution="def answer():\n    return 42\n",
        tests=BOMB_TESTS + PADDING,
    )
    result = fake_repo.pytest("katas/demo", "-q", timeout=120)
    output = result.stdout + result.stderr
    assert "INTERNALERROR" not in output, output
    assert "SystemError" not in output, output
    assert result.returncode == 1, output
    assert re.search(r"1 failed, 1 passed", output), output
    assert "answer() gave the wrong number: the learner's message" in output, output


class _Boom(Exception):
    pass


def _failing_test() -> None:
    def learners_code() -> None:
        raise AssertionError("expected 42, got 41: the learner's message")

    learners_code()


def _excinfo() -> pytest.ExceptionInfo[BaseException]:
    with pytest.raises(AssertionError) as caught:
        _failing_test()
    return caught


def test_when_pytest_cannot_format_a_failure_a_short_traceback_and_the_message_are_shown() -> None:
    def broken_formatter(excinfo: pytest.ExceptionInfo[BaseException], *args: object) -> object:
        raise SystemError("AST constructor recursion depth mismatch (before=6, after=5)")

    formatted = safe_failures.formatted_safely(broken_formatter)(_excinfo())
    text = str(formatted)
    assert "AssertionError: expected 42, got 41: the learner's message" in text
    assert "in learners_code" in text and "test_failure_formatting.py:" in text, text
    assert "SystemError: AST constructor recursion depth mismatch" in text, "say why it is short"
    assert formatted.reprcrash is not None
    assert formatted.reprcrash.message == "AssertionError: expected 42, got 41: the learner's message"


def test_a_failure_message_that_cannot_be_turned_into_text_still_names_the_exception() -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    with pytest.raises(Unprintable) as caught:
        raise Unprintable()

    def broken_formatter(excinfo: pytest.ExceptionInfo[BaseException], *args: object) -> object:
        raise RecursionError("maximum recursion depth exceeded")

    text = str(safe_failures.formatted_safely(broken_formatter)(caught))
    assert "Unprintable" in text and "RecursionError" in text, text


def test_formatting_runs_with_the_garbage_collector_paused_and_restores_it() -> None:
    import gc

    seen: list[bool] = []

    def formatter(excinfo: pytest.ExceptionInfo[BaseException], *args: object) -> str:
        seen.append(gc.isenabled())
        return "formatted"

    assert gc.isenabled()
    assert safe_failures.formatted_safely(formatter)(_excinfo()) == "formatted"
    assert seen == [False] and gc.isenabled()
    gc.disable()
    try:
        safe_failures.formatted_safely(formatter)(_excinfo())
        assert not gc.isenabled(), "a collector the test turned off stays off"
    finally:
        gc.enable()


NOT_YET_STUB = '''
def answer():
    # TODO
    raise NotImplementedError("Answer.answer")


def ask(question):
    return answer()
'''
NOT_YET_TESTS = '''
import threading

from .not_yet import ask, answer


def test_calls_the_stub():
    assert ask("life") == 42


def test_calls_the_stub_in_a_thread():
    errors = []

    def run():
        try:
            answer()
        except Exception as exc:
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    raise errors[0]  # as the kata's thread helpers re-raise what the thread raised


def test_catches_the_stubs_error_and_fails_saying_so():
    try:
        answer()
    except Exception as exc:
        raise AssertionError(f"answer() raised {exc!r} instead of returning 42") from exc


def test_a_real_failure():
    assert 6 * 7 == 41, "the learner's arithmetic is off"


def test_a_not_implemented_error_of_the_tests_own():
    raise NotImplementedError("a helper of the tests")


def test_quotes_the_stubs_error_in_its_own_message():
    try:
        answer()
    except Exception as exc:
        error = exc
    raise AssertionError(f"answer() gave {error!r}, not 42")  # no chain: only the text says it


def test_quotes_an_error_the_stub_does_not_raise():
    raise AssertionError(f"the helper gave {NotImplementedError('not the stub')!r}")


def test_several_failures_at_once_one_of_them_the_stubs():
    errors = []
    for call in (answer, lambda: 1 / 0):
        try:
            call()
        except Exception as exc:
            errors.append(exc)
    raise ExceptionGroup("as Hypothesis reports distinct failures", errors)


def _program_output(code):
    import pathlib, subprocess, sys
    stub = str(pathlib.Path(__file__).with_name("not_yet.py"))
    done = subprocess.run([sys.executable, "-c", code.format(stub=stub)], capture_output=True, text=True)
    return done


def test_runs_the_stub_as_a_program():
    done = _program_output("import runpy; runpy.run_path({stub!r})['answer']()")
    assert done.returncode == 0, f"the program failed: {done.stderr}"


def test_a_program_of_the_tests_own_not_written():
    done = _program_output("raise NotImplementedError('the program of the tests')")
    assert done.returncode == 0, f"the program failed: {done.stderr}"
'''


def test_a_stub_not_written_yet_is_one_line_per_missing_piece_and_real_failures_stay_in_full(
    fake_repo: FakeRepo,
) -> None:
    fake_repo.add_kata("not_yet", stub=NOT_YET_STUB, solution=NOT_YET_STUB, tests=NOT_YET_TESTS)
    result = fake_repo.pytest("katas/demo", "-q", "--junitxml=report.xml")
    output = result.stdout
    assert result.returncode == 1, "still failures: the exit status, reports and graders see them"
    # raised directly, in a thread, or caught and turned into a failure by the test
    # and a program's traceback quoting it, and a group holding it
    assert "\nAnswer.answer: 6 tests\n" in output, output
    assert "6 not implemented yet" in output and "4 failed" in output, output
    assert "answer() raised" not in output, "a failure caused by the stub is not a real failure"
    assert output.count("raise NotImplementedError(\"Answer.answer\")") == 0, "no stub traceback on a fresh stub"
    # anything else keeps pytest's whole report
    assert "the learner's arithmetic is off" in output and "assert (6 * 7) == 41" in output, output
    assert 'raise NotImplementedError("a helper of the tests")' in output, output
    assert "NotImplementedError: the program of the tests" in output, "not the stub's: a real failure"
    junit = (fake_repo.root / "report.xml").read_text()
    assert junit.count('<failure message="not implemented yet: Answer.answer">') == 6, junit
    assert 'failures="10"' in junit, junit
    assert "not the stub" in output, "an error the stub does not raise is a real failure"

"""Failures are always shown: pytest formats them undisturbed, or a short report stands in."""

from __future__ import annotations

import contextlib
import gc
import linecache
from collections.abc import Callable, Generator, Iterator
from typing import Any

import pytest
from _pytest._code.code import ExceptionChainRepr, ReprFileLocation, ReprTracebackNative
from _pytest.nodes import Node

FORMATTERS = ("repr_failure", "_repr_failure_py")  # the node methods that turn errors into text
SHORT_TRACEBACK = 12  # frames kept, innermost last


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No garbage collection meanwhile: finalizers of the learner's objects (an orphaned asyncio
    task logging its traceback) must not run in the middle of pytest's AST work. On CPython 3.11
    a nested ast.parse corrupts the outer one ("AST constructor recursion depth mismatch")."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def formatted_safely(format_: Callable[..., Any]) -> Callable[..., Any]:
    """`format_` (a node's repr_failure) with the collector paused, falling back to a short
    report if it raises anyway: the learner sees their failure, never pytest's INTERNALERROR."""

    def format_failure(excinfo: pytest.ExceptionInfo[BaseException], *args: Any, **kwargs: Any) -> Any:
        with collector_paused():
            try:
                return format_(excinfo, *args, **kwargs)
            except Exception as problem:  # whatever broke, the failure is shown
                return short_report(excinfo, problem)

    return format_failure


def _message(error: BaseException) -> str:
    """'AssertionError: the message', even when the exception's own str() raises."""
    name = type(error).__name__
    try:
        text = str(error)
    except Exception:  # a learner's __str__ may raise anything
        text = "<the exception's message could not be turned into text>"
    return f"{name}: {text}" if text else name


def short_report(excinfo: pytest.ExceptionInfo[BaseException], problem: Exception) -> ExceptionChainRepr:
    """The failure's file:line frames and its message, built without parsing any source."""
    lines = [f"(pytest could not format this failure: {_message(problem)}; a short traceback follows)\n"]
    entries = list(excinfo.traceback)[-SHORT_TRACEBACK:]
    for entry in entries:
        # linecache reads the line as text: pytest's own `entry.statement` parses the file
        line = linecache.getline(str(entry.path), entry.lineno + 1).strip()
        lines.append(f"  {entry.path}:{entry.lineno + 1} in {entry.name}{': ' + line if line else ''}\n")
    message = _message(excinfo.value)
    lines.append(f"E   {message}\n")
    last = entries[-1] if entries else None
    return text_report(lines, str(last.path) if last else "?", last.lineno + 1 if last else 0, message)


def text_report(lines: list[str], path: str, lineno: int, message: str) -> ExceptionChainRepr:
    """A failure shown as `lines` (each ending in a newline), summed up by `message` at path:lineno
    (what `-q` summaries and the engine's report show)."""
    return ExceptionChainRepr([(ReprTracebackNative(lines), ReprFileLocation(path, lineno, message), None)])


@contextlib.contextmanager
def _guarded(node: Node) -> Iterator[None]:
    """Every way pytest formats an error of `node` goes through formatted_safely meanwhile."""
    for name in FORMATTERS:
        setattr(node, name, formatted_safely(getattr(node, name)))
    try:
        yield
    finally:
        for name in FORMATTERS:
            node.__dict__.pop(name, None)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    if call.excinfo is None:
        return (yield)  # nothing to format: no cost on passing phases
    failed = call.excinfo.value
    if isinstance(failed, pytest.fail.Exception) and not failed.pytrace:
        # pytest.fail(message, pytrace=False) inside an `except`: the message is the report, not
        # the exception it handled (a 200-line schema dump behind "During handling of...")
        failed.__suppress_context__ = True
    with _guarded(item):
        return (yield)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, Any]:
    with _guarded(collector):
        return (yield)

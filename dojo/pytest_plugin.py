"""The pytest side of the engine: the stub/solution switch, time limits, reaping, the JSON report."""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable, Generator
from pathlib import Path

import pytest

from . import flight, needs, reaper, settings, switch, timelimit
from .catalogue import Catalogue, CatalogueError, Kata, find_root, load
from .timelimit import time_limit

pytest_plugins = [
    "dojo.hypothesis_summary", "dojo.safe_failures", "dojo.import_limit", "dojo.first_tests", "dojo.not_yet",
    "dojo.shrink_budget", "dojo.stages",
]

STRESS_SWITCH_INTERVAL = 1e-5
_catalogue_key = pytest.StashKey[Catalogue]()
_settings_key = pytest.StashKey[settings.Settings]()
_finder_key = pytest.StashKey["switch.RedirectFinder | None"]()
_children_key = pytest.StashKey[set[int]]()
_stderr_key = pytest.StashKey[int]()


def pytest_addoption(parser: pytest.Parser) -> None:
    settings.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "time_limit(seconds): override the kata's time limit for one test"
    )
    config.addinivalue_line(
        "markers",
        "stage(number, name): the kata's step this test belongs to (1, 2, ...; `kata run` shows "
        "one stage at a time)",
    )
    try:
        # Files are checked by `kata verify`; a half-written entry must not stop every run.
        catalogue = load(find_root(config.rootpath) / "katas.toml", check_files=False)
    except CatalogueError as exc:
        raise pytest.UsageError(str(exc)) from None
    current = settings.read(config)
    config.stash[_catalogue_key] = catalogue
    config.stash[_settings_key] = current
    # imported here, not at the top: pytest must load its plugin modules itself (see pytest_plugins)
    from .import_limit import install_for

    config.stash[_finder_key] = switch.install(switch.redirects(catalogue, current), install_for(catalogue))
    if current.stress:
        # more thread switches, more interleavings: a race that hides at 5 ms shows up
        sys.setswitchinterval(STRESS_SWITCH_INTERVAL)
    _local_traffic_skips_proxies()
    reaper.become_subreaper()
    reaper.stop_with_parent()
    if not hasattr(config, "workerinput"):  # xdist's controller stops its workers itself
        reaper.hang_up_as_ctrl_c()
    reaper.guard_interpreter_exit()
    _watch_for_a_dying_process(config, current)
    from .running.json_report import register  # imports dojo.stages, a plugin module pytest loads first

    register(config, current.report)


LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def _local_traffic_skips_proxies() -> None:
    """Tests talk only to this machine: a learner's HTTP_PROXY (a corporate proxy, say) must not
    carry 127.0.0.1 traffic away. NO_PROXY is read by requests, urllib, httpx, aiohttp with
    trust_env, curl and the learner's own clients alike, in this process and its children."""
    for name in ("NO_PROXY", "no_proxy"):
        listed = [host.strip() for host in os.environ.get(name, "").split(",") if host.strip()]
        os.environ[name] = ",".join([*listed, *(host for host in LOCAL_HOSTS if host not in listed)])


def _watch_for_a_dying_process(config: pytest.Config, current: settings.Settings) -> None:
    """Keep a flight record (what runs now) and say it when the process dies: on the terminal's
    own stderr (pytest's capture does not survive the process; it is not capturing yet here)
    and, for `kata`, beside the engine's report."""
    stderr = os.dup(2)
    config.stash[_stderr_key] = stderr
    timelimit.hard_stops_write_to(stderr)
    worker = hasattr(config, "workerinput")  # xdist reports a crashed worker itself
    flight.start(flight.path_for(current.report) if current.report and not worker else None, stderr)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _finder_key in config.stash:
        switch.uninstall(config.stash[_finder_key])
    stderr = config.stash.get(_stderr_key, None)
    if stderr is not None:
        flight.stop()
        timelimit.hard_stops_write_to(None)
        os.close(stderr)


def pytest_report_header(config: pytest.Config) -> str:
    current = config.stash[_settings_key]
    tree = "solutions/ (reference solutions)" if current.solutions else "katas/ (your code)"
    extra = f", {len(current.overrides)} override(s)" if current.overrides else ""
    extra += ", stress mode (thread switch every 10 us)" if current.stress else ""
    return f"kata: testing {tree}{extra}"


def catalogue_of(config: pytest.Config) -> Catalogue:
    return config.stash[_catalogue_key]


def settings_of(config: pytest.Config) -> settings.Settings:
    return config.stash[_settings_key]


def kata_of(item: pytest.Item | pytest.FixtureRequest) -> Kata | None:
    node = item.node if isinstance(item, pytest.FixtureRequest) else item
    return catalogue_of(node.config).kata_for_path(node.path)


@pytest.fixture(scope="module")  # module: a stack built once per module needs the files too
def kata_file(request: pytest.FixtureRequest) -> Callable[[str], Path]:
    """Path of a kata's non-Python file (config, SQL, Dockerfile) in the tree under test."""
    kata = kata_of(request)
    if kata is None:
        raise pytest.UsageError(f"{request.node.nodeid}: kata_file is only for tests inside a kata")
    current = settings_of(request.config)

    def resolve(name: str) -> Path:
        if name not in kata.files and name not in kata.support_files:
            raise KeyError(f"{name!r} is not listed in files or support_files of {kata.slug}")
        if name in kata.support_files:
            return kata.kata_dir / name
        return switch.source_file(kata, name, current)

    return resolve


def _refuse_uncatalogued(item: pytest.Item) -> None:
    """Under --solutions, a kata folder missing from the catalogue would silently test the stub."""
    if not settings_of(item.config).solutions or kata_of(item) is not None:
        return
    katas_dir = catalogue_of(item.config).root / "katas"
    if item.path.resolve().is_relative_to(katas_dir.resolve()):
        pytest.fail(
            f"{item.path.parent.relative_to(katas_dir.parent)} has no entry in katas.toml, so "
            "--solutions cannot switch it to solutions/: add its [[kata]] entry",
            pytrace=False,
        )


def _skip_without_tools(item: pytest.Item) -> None:
    """A kata whose tests run a program this machine lacks is skipped, saying how to get it."""
    kata = kata_of(item)
    missing = needs.missing_tools(kata.tools) if kata is not None else []
    if missing:
        pytest.skip("this kata needs tools that are missing:\n  " + "\n  ".join(missing))


def _limit_for(item: pytest.Item) -> float:
    marker = item.get_closest_marker("time_limit")
    if marker is not None:
        return float(marker.args[0])
    kata = kata_of(item)
    return kata.time_limit if kata else catalogue_of(item.config).default_time_limit


def _learner_dirs(item: pytest.Item) -> tuple[Path, ...]:
    kata = kata_of(item)
    current = settings_of(item.config)
    dirs = {p.parent.resolve() for p in current.overrides.values()}
    if kata is not None:
        dirs |= {kata.kata_dir.resolve(), kata.solution_dir.resolve()}
    else:
        dirs.add(item.path.parent.resolve())
    return tuple(dirs)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    _refuse_uncatalogued(item)
    _skip_without_tools(item)
    flight.running(item.name, _limit_for(item))
    with time_limit(_limit_for(item), _learner_dirs(item), f"setup of {item.name}"):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    item.stash[_children_key] = reaper.children()
    flight.running(item.name, _limit_for(item))
    from .shrink_budget import shrink_within  # a plugin module: pytest imports it first (see pytest_plugins)

    with time_limit(_limit_for(item), _learner_dirs(item), item.name), shrink_within(_limit_for(item)):
        return (yield)


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Exempt what start-up built (pytest, plugins, conftests) from every later collection.

    pytest collects garbage at the end of each session (to report unraisable exceptions), and
    a full collection over start-up's objects cost about a fifth of a pure kata's cold run.
    Objects made from here on (the tests, the learner's code) are collected as usual.
    """
    gc.freeze()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    try:
        flight.running(item.name, _limit_for(item))
        with time_limit(_limit_for(item), _learner_dirs(item), f"teardown of {item.name}"):
            return (yield)
    finally:
        if item.get_closest_marker("asyncio") is not None:
            # Collect orphaned asyncio tasks now: their destructors log tracebacks, and on
            # CPython 3.11.7 doing that in the middle of pytest's AST work crashes pytest
            # ("AST constructor recursion depth mismatch").
            gc.collect()
        before = item.stash.get(_children_key, None)
        if before is not None:
            leftovers = reaper.reap(reaper.children() - before)
            if leftovers:
                item.add_report_section(
                    "teardown", "kata", "stopped processes the test left running:\n  "
                    + "\n  ".join(leftovers)
                )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reaper.record_exit_status(int(exitstatus))

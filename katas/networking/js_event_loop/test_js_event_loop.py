"""Tests for the JS event-loop model: every program runs in node and in your EventLoop; orders must match."""

from __future__ import annotations

import inspect
import json
import shutil
import subprocess
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from .js_event_loop import EventLoop

NODE_TIMEOUT = 15  # seconds for one node run (all programs of a batch run in one process)


# --- running JS programs in node -------------------------------------------------------------

# Many programs share ONE node process: each runs in its own function with its own `console`,
# all on the same event loop. Each program only schedules its own callbacks, every queue is
# FIFO, and the loop drains microtasks completely between tasks, so the order of one program's
# lines is the order it prints when run alone (`node program.js`); only the wall time is shared.
NODE_PROLOGUE = """\
const fs = require("fs");
const outputs = {};
function consoleFor(name) {
  const lines = (outputs[name] = []);
  return { log: (...args) => { lines.push(args.join(" ")); } };
}
process.on("exit", () => { fs.writeSync(1, JSON.stringify(outputs)); });
"""


def run_in_node(programs: dict[str, str]) -> dict[str, list[str]]:
    """Run each JS program (its console.log lines captured) in one node process."""
    node = shutil.which("node")  # katas.toml declares tools = ["node"]: the engine skips without it
    assert node is not None
    parts = [NODE_PROLOGUE]
    for name, js in programs.items():
        parts.append(f"(function (console) {{\n{js}\n}})(consoleFor({json.dumps(name)}));\n")
    proc = subprocess.run([node, "-"], input="".join(parts), capture_output=True, text=True, timeout=NODE_TIMEOUT)
    assert proc.returncode == 0, f"node failed (exit {proc.returncode}):\n{proc.stderr}"
    outputs: dict[str, list[str]] = json.loads(proc.stdout)
    return outputs


def run_model(script: Callable[[EventLoop, list[str]], object]) -> list[str]:
    """Run `script(loop, log)` as the program's synchronous part in your EventLoop; the log."""
    loop = EventLoop()
    log: list[str] = []
    loop.run(lambda: script(loop, log))
    return log


def difference(node_lines: list[str], model_lines: list[str]) -> str:
    """The two orders side by side and where they part."""
    at = next(
        (i for i, (a, b) in enumerate(zip(node_lines, model_lines, strict=False)) if a != b),
        min(len(node_lines), len(model_lines)),
    )
    node_there = repr(node_lines[at]) if at < len(node_lines) else "nothing more"
    model_there = repr(model_lines[at]) if at < len(model_lines) else "nothing more"
    return (
        f"  node printed: {node_lines}\n"
        f"  you logged  : {model_lines}\n"
        f"  first difference at position {at}: node {node_there}, you {model_there}"
    )


# --- the scenario table: each program written in JS and, with your API, in Python -------------


@dataclass(frozen=True)
class Scenario:
    name: str
    rule: str = field(repr=False)  # what the scenario teaches, shown when the orders differ
    js: str = field(repr=False)
    py: Callable[[EventLoop, list[str]], object] = field(repr=False)

    def __str__(self) -> str:
        return self.name


def jake_archibald(loop: EventLoop, log: list[str]) -> None:
    log.append("script start")
    loop.set_timeout(lambda: log.append("setTimeout"), 0)
    loop.promise_resolve().then(lambda _: log.append("promise1")).then(lambda _: log.append("promise2"))
    log.append("script end")


def microtasks_share_one_queue(loop: EventLoop, log: list[str]) -> None:
    log.append("1 sync")
    loop.set_timeout(lambda: log.append("6 timeout"), 0)
    loop.queue_microtask(lambda: log.append("3 microtask (queueMicrotask)"))
    loop.promise_resolve().then(lambda _: log.append("4 promise.then")).then(
        lambda _: log.append("5 promise.then chained")
    )
    log.append("2 sync")


def nested_scheduling(loop: EventLoop, log: list[str]) -> None:
    def c_then(_: Any) -> None:
        log.append("C then")
        loop.queue_microtask(lambda: log.append("D nested microtask"))
        loop.set_timeout(lambda: log.append("E timeout from microtask"), 0)

    log.append("A")
    loop.set_timeout(lambda: log.append("B timeout"), 0)
    loop.promise_resolve().then(c_then)
    loop.queue_microtask(lambda: log.append("F qm"))
    log.append("G")


def async_await(loop: EventLoop, log: list[str]) -> None:
    def async2() -> Any:
        log.append("async2")
        return loop.promise_resolve(None)  # an async function returns a (here fulfilled) promise

    def async1() -> None:
        log.append("async1 start")
        # `await p` on a native promise is p.then(<the rest of async1>): one tick (node >= 12)
        loop.promise_resolve(async2()).then(lambda _: log.append("async1 end"))

    def executor(resolve: Callable[[Any], None]) -> None:
        log.append("promise1")
        resolve(None)

    log.append("script start")
    loop.set_timeout(lambda: log.append("setTimeout"), 0)
    async1()
    loop.new_promise(executor).then(lambda _: log.append("promise2"))
    log.append("script end")


def next_tick_before_promises(loop: EventLoop, log: list[str]) -> None:
    loop.set_timeout(lambda: log.append("timeout"), 0)
    loop.promise_resolve().then(lambda _: log.append("promise"))
    loop.process_next_tick(lambda: log.append("nextTick"))
    log.append("sync")


def next_tick_and_microtasks_nested(loop: EventLoop, log: list[str]) -> None:
    def m1(_: Any) -> None:
        log.append("m1")
        loop.process_next_tick(lambda: log.append("tick from m1"))
        loop.queue_microtask(lambda: log.append("m2 from m1"))

    def t1() -> None:
        log.append("t1")
        loop.promise_resolve().then(lambda _: log.append("promise from t1"))
        loop.process_next_tick(lambda: log.append("t2 from t1"))

    loop.promise_resolve().then(m1)
    loop.process_next_tick(t1)


def microtasks_inside_timeouts(loop: EventLoop, log: list[str]) -> None:
    def first() -> None:
        log.append("t1")
        loop.promise_resolve().then(lambda _: log.append("t1 then")).then(lambda _: log.append("t1 then then"))
        loop.queue_microtask(lambda: log.append("t1 microtask"))

    loop.set_timeout(first, 0)
    loop.set_timeout(lambda: log.append("t2"), 0)


def chains_interleave(loop: EventLoop, log: list[str]) -> None:
    a = loop.promise_resolve().then(lambda _: log.append("a1"))
    a.then(lambda _: log.append("a2")).then(lambda _: log.append("a3"))
    loop.promise_resolve().then(lambda _: log.append("b1")).then(lambda _: log.append("b2"))


def values_flow_through_the_chain(loop: EventLoop, log: list[str]) -> None:
    (
        loop.promise_resolve(1)
        .then(lambda v: v + 1)
        .then()  # no callback: the value passes through, one tick later
        .then(lambda v: log.append(f"got {v}"))
    )
    loop.promise_resolve("x").then(lambda v: log.append(f"other got {v}"))


def then_returns_a_promise(loop: EventLoop, log: list[str]) -> None:
    def a1(_: Any) -> Any:
        log.append("a1")
        return loop.promise_resolve("x")

    loop.promise_resolve().then(a1).then(lambda v: log.append(f"a2 got {v}"))
    (
        loop.promise_resolve()
        .then(lambda _: log.append("b1"))
        .then(lambda _: log.append("b2"))
        .then(lambda _: log.append("b3"))
        .then(lambda _: log.append("b4"))
    )


def then_waits_for_a_late_promise(loop: EventLoop, log: list[str]) -> None:
    def wait_for_timer(_: Any) -> Any:
        def executor(resolve: Callable[[Any], None]) -> None:
            def fire() -> None:
                log.append("timer resolves")
                resolve("late")

            loop.set_timeout(fire, 100)

        return loop.new_promise(executor)

    loop.promise_resolve().then(wait_for_timer).then(lambda v: log.append(f"then got {v}"))
    loop.set_timeout(lambda: log.append("timeout 0"), 0)


def timers_registered_out_of_order(loop: EventLoop, log: list[str]) -> None:
    loop.set_timeout(lambda: log.append("c 200ms"), 200)
    loop.set_timeout(lambda: log.append("b 100ms"), 100)
    loop.set_timeout(lambda: log.append("a 0ms"), 0)


def equal_delays_keep_insertion_order(loop: EventLoop, log: list[str]) -> None:
    for name in ("x", "y", "z"):
        loop.set_timeout(partial(log.append, f"{name} 100ms"), 100)
    loop.set_timeout(lambda: log.append("one 1ms"), 1)
    loop.set_timeout(lambda: log.append("zero 0ms"), 0)


def microtask_loop_runs_before_the_next_timer(loop: EventLoop, log: list[str]) -> None:
    count = 0

    def again() -> None:
        nonlocal count
        log.append(f"micro {count}")
        count += 1
        if count < 5:
            loop.queue_microtask(again)

    loop.set_timeout(lambda: log.append("timeout"), 0)
    loop.queue_microtask(again)


def timer_set_inside_a_timer(loop: EventLoop, log: list[str]) -> None:
    def a() -> None:
        log.append("A")
        loop.set_timeout(lambda: log.append("B set by A"), 0)

    loop.set_timeout(a, 0)
    loop.set_timeout(lambda: log.append("C"), 0)


def immediate_inside_a_timer(loop: EventLoop, log: list[str]) -> None:
    def i1() -> None:
        log.append("immediate 1")
        loop.promise_resolve().then(lambda _: log.append("immediate 1 then"))

    def in_timer() -> None:
        loop.set_timeout(lambda: log.append("timeout"), 0)
        loop.set_immediate(i1)
        loop.set_immediate(lambda: log.append("immediate 2"))

    loop.set_timeout(in_timer, 0)


def immediates_before_a_later_timer(loop: EventLoop, log: list[str]) -> None:
    def first() -> None:
        log.append("immediate 1")
        loop.set_immediate(lambda: log.append("immediate 2, queued by immediate 1"))
        loop.process_next_tick(lambda: log.append("nextTick from immediate 1"))

    loop.set_timeout(lambda: log.append("timeout 200ms"), 200)
    loop.set_immediate(first)
    log.append("sync")


def a_promise_resolves_once(loop: EventLoop, log: list[str]) -> None:
    def twice(resolve: Callable[[Any], None]) -> None:
        resolve("first")
        resolve("second")  # ignored: a promise settles once

    def adopt_then_value(resolve: Callable[[Any], None]) -> None:
        late = loop.new_promise(lambda r: loop.set_timeout(lambda: r("from the timer"), 100))
        resolve(late)  # locked in to `late`, though `late` is still pending
        resolve("plain")  # ignored too

    loop.new_promise(twice).then(lambda v: log.append(f"a got {v}"))
    loop.new_promise(adopt_then_value).then(lambda v: log.append(f"b got {v}"))


def several_thens_on_one_promise(loop: EventLoop, log: list[str]) -> None:
    resolvers: list[Callable[[Any], None]] = []
    p = loop.new_promise(resolvers.append)
    p.then(lambda v: log.append(f"first then {v}"))
    p.then(lambda v: log.append(f"second then {v}"))
    loop.queue_microtask(lambda: log.append("microtask queued before resolve"))
    resolvers[0]("v")
    p.then(lambda v: log.append(f"third then, after resolve, {v}"))
    log.append("sync end")


def a_bare_then_costs_a_tick(loop: EventLoop, log: list[str]) -> None:
    loop.promise_resolve("v").then().then(lambda v: log.append(f"after a bare then: {v}"))
    loop.promise_resolve().then(lambda _: log.append("b1")).then(lambda _: log.append("b2"))


SCENARIOS = [
    Scenario(
        "jake_archibald",
        "a then callback never runs synchronously, even on a resolved promise: it is queued as "
        "a microtask; the script is a task, and the microtasks it queued all run when it ends, "
        "before any timer",
        """\
console.log("script start");
setTimeout(function () { console.log("setTimeout"); }, 0);
Promise.resolve().then(function () { console.log("promise1"); })
  .then(function () { console.log("promise2"); });
console.log("script end");""",
        jake_archibald,
    ),
    Scenario(
        "microtasks_share_one_queue",
        "queueMicrotask and promise reactions go to one FIFO microtask queue",
        """\
console.log("1 sync");
setTimeout(() => console.log("6 timeout"), 0);
queueMicrotask(() => console.log("3 microtask (queueMicrotask)"));
Promise.resolve().then(() => console.log("4 promise.then"))
  .then(() => console.log("5 promise.then chained"));
console.log("2 sync");""",
        microtasks_share_one_queue,
    ),
    Scenario(
        "nested_scheduling",
        "a microtask queued by a microtask runs in the same drain; a timer set by a microtask "
        "queues behind the timers already waiting",
        """\
console.log("A");
setTimeout(() => console.log("B timeout"), 0);
Promise.resolve().then(() => {
  console.log("C then");
  queueMicrotask(() => console.log("D nested microtask"));
  setTimeout(() => console.log("E timeout from microtask"), 0);
});
queueMicrotask(() => console.log("F qm"));
console.log("G");""",
        nested_scheduling,
    ),
    Scenario(
        "async_await",
        "`await p` is p.then(rest of the function); the executor of new Promise runs synchronously",
        """\
async function async1() { console.log("async1 start"); await async2(); console.log("async1 end"); }
async function async2() { console.log("async2"); }
console.log("script start");
setTimeout(() => console.log("setTimeout"), 0);
async1();
new Promise((r) => { console.log("promise1"); r(); }).then(() => console.log("promise2"));
console.log("script end");""",
        async_await,
    ),
    Scenario(
        "next_tick_before_promises",
        "process.nextTick callbacks run before promise callbacks, whatever order they were queued",
        """\
setTimeout(() => console.log("timeout"), 0);
Promise.resolve().then(() => console.log("promise"));
process.nextTick(() => console.log("nextTick"));
console.log("sync");""",
        next_tick_before_promises,
    ),
    Scenario(
        "next_tick_and_microtasks_nested",
        "node drains the whole nextTick queue, then the whole microtask queue, and repeats: "
        "a nextTick queued by a microtask waits until the microtask queue is empty",
        """\
Promise.resolve().then(() => {
  console.log("m1");
  process.nextTick(() => console.log("tick from m1"));
  queueMicrotask(() => console.log("m2 from m1"));
});
process.nextTick(() => {
  console.log("t1");
  Promise.resolve().then(() => console.log("promise from t1"));
  process.nextTick(() => console.log("t2 from t1"));
});""",
        next_tick_and_microtasks_nested,
    ),
    Scenario(
        "microtasks_inside_timeouts",
        "the microtask queue is drained completely after every single task: a timer's "
        "microtasks run before the next timer, even one due at the same time",
        """\
setTimeout(() => {
  console.log("t1");
  Promise.resolve().then(() => console.log("t1 then")).then(() => console.log("t1 then then"));
  queueMicrotask(() => console.log("t1 microtask"));
}, 0);
setTimeout(() => console.log("t2"), 0);""",
        microtasks_inside_timeouts,
    ),
    Scenario(
        "chains_interleave",
        "each .then waits for the microtask of the one before, so chains advance one step per turn, interleaved",
        """\
const a = Promise.resolve().then(() => console.log("a1"));
a.then(() => console.log("a2")).then(() => console.log("a3"));
Promise.resolve().then(() => console.log("b1")).then(() => console.log("b2"));""",
        chains_interleave,
    ),
    Scenario(
        "values_flow_through_the_chain",
        "then() resolves its new promise with the callback's return value; with no callback the value passes through",
        """\
Promise.resolve(1).then((v) => v + 1).then().then((v) => console.log("got " + v));
Promise.resolve("x").then((v) => console.log("other got " + v));""",
        values_flow_through_the_chain,
    ),
    Scenario(
        "then_returns_a_promise",
        "a then callback that returns a promise costs two extra microtask ticks: a "
        "NewPromiseResolveThenableJob calls its then, and that then's reaction is another job",
        """\
Promise.resolve().then(() => { console.log("a1"); return Promise.resolve("x"); })
  .then((v) => console.log("a2 got " + v));
Promise.resolve().then(() => console.log("b1")).then(() => console.log("b2"))
  .then(() => console.log("b3")).then(() => console.log("b4"));""",
        then_returns_a_promise,
    ),
    Scenario(
        "then_waits_for_a_late_promise",
        "a chain waits for a promise its callback returns, however late that promise settles",
        """\
Promise.resolve()
  .then(() => new Promise((resolve) => setTimeout(() => {
    console.log("timer resolves"); resolve("late"); }, 100)))
  .then((v) => console.log("then got " + v));
setTimeout(() => console.log("timeout 0"), 0);""",
        then_waits_for_a_late_promise,
    ),
    Scenario(
        "timers_registered_out_of_order",
        "timers run in order of due time (now + delay), not in the order setTimeout was called",
        """\
setTimeout(() => console.log("c 200ms"), 200);
setTimeout(() => console.log("b 100ms"), 100);
setTimeout(() => console.log("a 0ms"), 0);""",
        timers_registered_out_of_order,
    ),
    Scenario(
        "equal_delays_keep_insertion_order",
        "timers due at the same time run in insertion order; node turns a delay below 1 ms "
        "into 1 ms, so setTimeout(f, 0) is setTimeout(f, 1)",
        """\
for (const name of ["x", "y", "z"]) setTimeout(() => console.log(name + " 100ms"), 100);
setTimeout(() => console.log("one 1ms"), 1);
setTimeout(() => console.log("zero 0ms"), 0);""",
        equal_delays_keep_insertion_order,
    ),
    Scenario(
        "microtask_loop_runs_before_the_next_timer",
        "microtasks queued by microtasks run in the same drain: the next timer waits until "
        "the microtask queue is empty",
        """\
setTimeout(() => console.log("timeout"), 0);
let count = 0;
function again() { console.log("micro " + count); count += 1; if (count < 5) queueMicrotask(again); }
queueMicrotask(again);""",
        microtask_loop_runs_before_the_next_timer,
    ),
    Scenario(
        "timer_set_inside_a_timer",
        "a timer set inside a timer callback is due at least 1 ms later: timers already due run first",
        """\
setTimeout(() => {
  console.log("A");
  setTimeout(() => console.log("B set by A"), 0);
}, 0);
setTimeout(() => console.log("C"), 0);""",
        timer_set_inside_a_timer,
    ),
    Scenario(
        "immediate_inside_a_timer",
        "inside a timer callback, setImmediate beats setTimeout(f, 0): the check phase comes "
        "before the loop gets back to the timers phase",
        """\
setTimeout(() => {
  setTimeout(() => console.log("timeout"), 0);
  setImmediate(() => {
    console.log("immediate 1");
    Promise.resolve().then(() => console.log("immediate 1 then"));
  });
  setImmediate(() => console.log("immediate 2"));
}, 0);""",
        immediate_inside_a_timer,
    ),
    Scenario(
        "immediates_before_a_later_timer",
        "with immediates waiting, the loop does not sleep until the next timer: the check phase "
        "runs them first, and an immediate queued by an immediate runs next round, still before "
        "a timer that is not yet due",
        """\
setTimeout(() => console.log("timeout 200ms"), 200);
setImmediate(() => {
  console.log("immediate 1");
  setImmediate(() => console.log("immediate 2, queued by immediate 1"));
  process.nextTick(() => console.log("nextTick from immediate 1"));
});
console.log("sync");""",
        immediates_before_a_later_timer,
    ),
    Scenario(
        "a_promise_resolves_once",
        "resolve works once: later calls are ignored, also while the promise is still waiting "
        "for a promise it was resolved with (it is locked in, not yet fulfilled)",
        """\
new Promise((resolve) => { resolve("first"); resolve("second"); })
  .then((v) => console.log(`a got ${v}`));
new Promise((resolve) => {
  const late = new Promise((r) => setTimeout(() => r("from the timer"), 100));
  resolve(late);
  resolve("plain");
}).then((v) => console.log(`b got ${v}`));""",
        a_promise_resolves_once,
    ),
    Scenario(
        "several_thens_on_one_promise",
        "the reactions of one promise are queued when it is fulfilled, in the order the thens "
        "were called; a then on an already fulfilled promise queues its reaction at once",
        """\
let resolveLater;
const p = new Promise((r) => { resolveLater = r; });
p.then((v) => console.log(`first then ${v}`));
p.then((v) => console.log(`second then ${v}`));
queueMicrotask(() => console.log("microtask queued before resolve"));
resolveLater("v");
p.then((v) => console.log(`third then, after resolve, ${v}`));
console.log("sync end");""",
        several_thens_on_one_promise,
    ),
    Scenario(
        "a_bare_then_costs_a_tick",
        "then() without a callback still queues a reaction: the value passes to the next "
        "promise one microtask later, even on a fulfilled promise",
        """\
Promise.resolve("v").then().then((v) => console.log(`after a bare then: ${v}`));
Promise.resolve().then(() => console.log("b1")).then(() => console.log("b2"));""",
        a_bare_then_costs_a_tick,
    ),
]


@pytest.fixture(scope="module")
def node_output() -> dict[str, list[str]]:
    """What node prints for every scenario (one node process for the whole table)."""
    return run_in_node({s.name: s.js for s in SCENARIOS})


@pytest.mark.stage(2, "the scenario table")
@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_scenario_prints_in_the_same_order_as_node(scenario: Scenario, node_output: dict[str, list[str]]) -> None:
    got = run_model(scenario.py)
    expected = node_output[scenario.name]
    if got != expected:
        pytest.fail(
            f"scenario {scenario.name}: your EventLoop runs the callbacks in another order than "
            f"node v20.\n{difference(expected, got)}\n"
            f"The rule: {scenario.rule}.\n"
            f"The JS program:\n{textwrap.indent(scenario.js, '    ')}\n"
            f"Its Python twin (your API):\n{textwrap.indent(inspect.getsource(scenario.py), '    ')}"
        )


@pytest.mark.stage(1, "timers and the clock")
def test_the_virtual_clock_reads_each_timers_due_time() -> None:
    # node's clock is real, so this one is checked against the contract, not node: now is 0
    # when the script runs, a timer callback sees its due time (now when set + max(1, delay)),
    # and immediates and microtasks run at the time of the callback that queued them
    loop = EventLoop()
    seen: list[tuple[str, int]] = []

    def at(name: str) -> Callable[[], None]:
        return lambda: seen.append((name, loop.now))

    def at_100() -> None:
        at("timeout 100")()
        loop.set_timeout(at("timeout 50, set at 100"), 50)
        loop.set_immediate(at("immediate, set at 100"))
        loop.queue_microtask(at("microtask, set at 100"))

    def script() -> None:
        at("script")()
        loop.set_timeout(at("timeout 0"), 0)
        loop.set_timeout(at("timeout -5"), -5)
        loop.set_timeout(at_100, 100)
        loop.set_timeout(at("timeout 7"), 7)

    loop.run(script)
    expected = [
        ("script", 0), ("timeout 0", 1), ("timeout -5", 1), ("timeout 7", 7), ("timeout 100", 100),
        ("microtask, set at 100", 100), ("immediate, set at 100", 100), ("timeout 50, set at 100", 150),
    ]
    assert seen == expected, (
        "loop.now is the virtual clock: 0 while the script runs; in a timer callback, that "
        "timer's due time (now when it was set + the delay, a delay below 1 counting as 1 ms); "
        "it only moves forward when the loop has nothing to run before the next timer.\n"
        f"  expected (callback, now): {expected}\n  you      (callback, now): {seen}"
    )


# --- random programs from a small grammar, rendered to JS and to Python -----------------------

# Delay "levels" 0-3 as milliseconds. node stamps each timer with the real clock when
# setTimeout runs, so delays 2 and 3 ms registered a millisecond apart could swap under load;
# 100 ms steps keep node's order fixed. 0 and 1 stay: node treats both as 1 ms.
DELAYS = (0, 1, 100, 200)

# A statement: ("log",) | ("microtask", body) | ("tick", body) | ("timeout", delay, body)
#            | ("then", [(body, returns_a_promise), ...])   a Promise.resolve().then chain
#              (a link whose body is None is a bare `.then()`: the value passes through)
# Every callback logs its own label first, so the output shows when each one ran.
Stmt = tuple[Any, ...]


def bodies(depth: int, timers: bool) -> st.SearchStrategy[list[Stmt]]:
    """Statement lists nested up to depth 2. No timer is set inside a timer callback: node
    stamps those with the moment the outer timer really fired, which the virtual clock can't
    know, so their order against other timers would depend on the machine's load."""
    options: list[st.SearchStrategy[Stmt]] = [st.just(("log",))]
    if depth < 2:
        inner = bodies(depth + 1, timers)
        link = st.one_of(st.tuples(inner, st.booleans()), st.just((None, False)))
        chains = st.lists(link, min_size=1, max_size=3)
        # then chains twice over: their interleavings are where the tick counting shows
        options += [chains.map(lambda links: ("then", links))] * 2
        options.append(inner.map(lambda body: ("microtask", body)))
        options.append(inner.map(lambda body: ("tick", body)))
        if timers:
            timeout = st.tuples(st.sampled_from(DELAYS), bodies(depth + 1, timers=False))
            # and timers twice at the top, where they are registered: their order is the point
            options += [timeout.map(lambda t: ("timeout", t[0], t[1]))] * (2 if depth == 0 else 1)
    top = depth == 0
    return st.lists(st.one_of(options), min_size=2 if top else 0, max_size=6 if top else 2)


PROGRAMS = bodies(0, timers=True)


class Renderer:
    """Renders one program to JS and to Python, with the same labels in the same places."""

    def __init__(self) -> None:
        self.labels = 0
        self.functions = 0

    def label(self) -> str:
        self.labels += 1
        return f"L{self.labels}"

    def function(self) -> str:
        self.functions += 1
        return f"f{self.functions}"

    def render(self, body: list[Stmt]) -> tuple[str, str]:
        js, py = self.block(body, entry=False)
        return "\n".join(js), "def script(loop, log):\n" + "\n".join("    " + x for x in py)

    def block(self, body: list[Stmt], entry: bool = True) -> tuple[list[str], list[str]]:
        """A statement list; with `entry`, a callback body that first logs its own label."""
        js: list[str] = []
        py: list[str] = []
        for stmt in [("log",), *body] if entry else body:
            kind = stmt[0]
            if kind == "log":
                name = self.label()
                js.append(f'console.log("{name}");')
                py.append(f'log.append("{name}")')
            elif kind in ("microtask", "tick"):
                fn = self.function()
                inner_js, inner_py = self.block(stmt[1])
                js_call, py_call = (
                    ("queueMicrotask", "queue_microtask") if kind == "microtask"
                    else ("process.nextTick", "process_next_tick")
                )
                js += [f"{js_call}(() => {{", *indent(inner_js, "  "), "});"]
                py += [f"def {fn}():", *indent(inner_py), f"loop.{py_call}({fn})"]
            elif kind == "timeout":
                fn = self.function()
                inner_js, inner_py = self.block(stmt[2])
                js += ["setTimeout(() => {", *indent(inner_js, "  "), f"}}, {stmt[1]});"]
                py += [f"def {fn}():", *indent(inner_py), f"loop.set_timeout({fn}, {stmt[1]})"]
            else:  # a then chain
                js.append("Promise.resolve()")
                chain = "loop.promise_resolve(None)"
                for link, returns_promise in stmt[1]:
                    if link is None:
                        js.append("  .then()")
                        chain += ".then()"
                        continue
                    fn = self.function()
                    inner_js, inner_py = self.block(link)
                    if returns_promise:
                        inner_js = [*inner_js, "return Promise.resolve();"]
                        inner_py = [*inner_py, "return loop.promise_resolve(None)"]
                    js += ["  .then(() => {", *indent(inner_js, "    "), "  })"]
                    py += [f"def {fn}(_):", *indent(inner_py)]
                    chain += f".then({fn})"
                js[-1] += ";"
                py.append(chain)
        return js, py


def indent(lines: list[str], by: str = "    ") -> list[str]:
    return [by + line for line in lines]


@pytest.mark.stage(3, "random programs")
@settings(
    max_examples=2,  # 2 batches of 20 programs: 40 programs, two node runs
    deadline=None,
    database=None,
    phases=[Phase.generate],  # no shrinking (one node run per step): the smallest failure is reported
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(PROGRAMS, min_size=20, max_size=20))
def test_random_programs_print_in_the_same_order_as_node(programs: list[list[Stmt]]) -> None:
    rendered = [Renderer().render(body) for body in programs]
    ours: list[list[str]] = []
    for _, py in rendered:
        namespace: dict[str, Any] = {}
        exec(compile(py, "<generated program>", "exec"), namespace)
        ours.append(run_model(namespace["script"]))
    theirs = run_in_node({f"p{i}": js for i, (js, _) in enumerate(rendered)})
    wrong = [i for i in range(len(rendered)) if ours[i] != theirs[f"p{i}"]]
    if wrong:
        i = min(wrong, key=lambda i: len(rendered[i][0]))  # show the shortest failing program
        js, py = rendered[i]
        pytest.fail(
            f"{len(wrong)} of {len(rendered)} random programs run in another order in your "
            f"EventLoop than in node v20. The shortest:\n{difference(theirs[f'p{i}'], ours[i])}\n"
            f"The JS program:\n{textwrap.indent(js, '    ')}\n"
            f"Its Python twin (your API):\n{textwrap.indent(py, '    ')}\n"
            "Replay it by hand: then callbacks never run synchronously; after the script and "
            "after every callback, drain ALL nextTicks, then ALL microtasks, and again while "
            "either has work; timers by due time, then insertion; a then callback returning a "
            "promise delays its chain by two extra ticks; a bare then() passes the value on, one "
            "tick later."
        )

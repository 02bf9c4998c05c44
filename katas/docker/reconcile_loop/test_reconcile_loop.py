"""Tests for reconcile_loop: the learner's loop runs against the real daemon; docker-py watches."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from dojo.testing import Background, wait_until
from fixtures.docker_tools import DockerScope

from .reconcile_loop import APP_LABEL, VERSION_LABEL, Reconciler, Spec

REPLACED_WITHIN = 2.0  # seconds from a kill to a full set again (0.6 s measured with load 1.5)


@dataclasses.dataclass
class Loop:
    """The learner's reconciler, running in a thread, and what the test needs to watch it."""

    reconciler: Reconciler
    thread: Background[None]
    client: Any

    def replicas(self, state: str | None = "running") -> list[dict[str, Any]]:
        """docker-py's view: the app's containers (sparse), optionally only in `state`."""
        found = self.client.containers.list(
            all=True, sparse=True, filters={"label": f"{APP_LABEL}={self.reconciler.spec.name}"})
        return [c.attrs for c in found if state is None or c.attrs.get("State") == state]

    def wait_for(self, predicate: Any, timeout: float, what: str) -> None:
        def check() -> bool:
            if self.thread.done:
                self.thread.result()  # re-raises what stopped run() (NotImplementedError, ...)
                raise AssertionError("run() returned while it should loop until stop is set")
            return bool(predicate())

        wait_until(check, timeout=timeout, what=what)

    def converge(self, count: int, version: str = "1", timeout: float = 15.0) -> None:
        def done() -> bool:
            every = self.replicas(state=None)
            return len(every) == count and all(
                c.get("State") == "running" and c["Labels"].get(VERSION_LABEL) == version for c in every)

        self.wait_for(done, timeout, f"exactly {count} running replicas of version {version} and no "
                                     f"others (now: {self.describe()})")

    def describe(self) -> str:
        states = [(c.get("State"), c["Labels"].get(VERSION_LABEL)) for c in self.replicas(state=None)]
        return f"{len(states)} container(s), (state, version): {sorted(states)}"


@pytest.fixture
def loop(docker_api: Any, docker_scope: DockerScope, python_base_image: str) -> Iterator[Loop]:
    spec = Spec(name=f"kata-rec-{uuid.uuid4().hex[:8]}", image=python_base_image,
                command=["sleep", "600"], replicas=3, labels=dict(docker_scope.labels))
    reconciler = Reconciler(docker_api, spec)
    stop = threading.Event()
    thread = Background(reconciler.run, stop, 0.1, name="Reconciler.run")
    yield Loop(reconciler, thread, docker_api)
    stop.set()
    thread.thread.join(10)  # the scope's cleanup removes the containers after this


def test_converges_to_the_desired_number_of_replicas(loop: Loop) -> None:
    loop.converge(3)
    for _ in range(5):  # stays there: a settled loop creates and removes nothing
        ids = {c["Id"] for c in loop.replicas(state=None)}
        threading.Event().wait(0.1)  # a pass or two of the loop
        assert {c["Id"] for c in loop.replicas(state=None)} == ids, (
            f"the set of replicas keeps changing although nothing happened: {loop.describe()}")
    labels = loop.replicas()[0]["Labels"]
    assert labels.get(VERSION_LABEL) == "1" and labels.get(APP_LABEL) == loop.reconciler.spec.name


def test_a_killed_replica_is_replaced(loop: Loop, docker_api: Any) -> None:
    loop.converge(3)
    for round_ in (1, 2):
        victim = loop.replicas()[0]["Id"]
        docker_api.containers.get(victim).kill()
        loop.wait_for(
            lambda v=victim: len(loop.replicas()) == 3 and v not in {c["Id"] for c in loop.replicas(None)},
            REPLACED_WITHIN,
            f"kill #{round_}: 3 running replicas again and the dead one removed, within "
            f"{REPLACED_WITHIN:g} s (now: {loop.describe()}). Dead replicas (exited) are not replicas: "
            "remove them and count only the live ones")


def test_scale_up_and_down(loop: Loop) -> None:
    loop.converge(3)
    loop.reconciler.spec = dataclasses.replace(loop.reconciler.spec, replicas=5)
    loop.converge(5)
    loop.reconciler.spec = dataclasses.replace(loop.reconciler.spec, replicas=2)
    try:
        loop.converge(2, timeout=8)
    except AssertionError as exc:
        raise AssertionError(f"scale down from 5 to 2 did not happen: {exc}") from None


def test_rolling_update_never_has_more_than_one_replica_unavailable(loop: Loop) -> None:
    loop.converge(3)
    samples: list[int] = []
    watching = threading.Event()

    def watch() -> None:
        while not watching.is_set():
            samples.append(len(loop.replicas()))

    watcher = Background(watch, name="availability watcher")
    loop.reconciler.spec = dataclasses.replace(loop.reconciler.spec, version="2")
    try:
        loop.converge(3, version="2", timeout=20)
    finally:
        watching.set()
        watcher.result(timeout=10)
    assert samples, "the watcher took no samples"
    assert min(samples) >= 2, (
        f"during the rolling update only {min(samples)} replica(s) were running at one point "
        f"({len(samples)} samples): never more than one replica unavailable. Surge first: create "
        "one of the new version, then remove one old, one at a time")

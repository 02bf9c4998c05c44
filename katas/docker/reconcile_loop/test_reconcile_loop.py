"""Tests for reconcile_loop: the learner's loop against the real daemon; docker-py watches.

Two ways to drive it. As a state machine: the test calls reconcile_once() itself, disturbs the
world between passes as real peers do (a replica killed, one removed behind the loop's back, one
vanishing between the loop's list and its action, a create the daemon refuses) and checks after
every pass what a pass promises. And as a controller: run() in a thread, watched from outside,
alone or with a second loop on the same app. Passes are counted on the loop's own client (how
often it listed the containers), never guessed from the clock.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker  # type: ignore[import-untyped]
import pytest

from dojo.testing import Background, wait_until
from fixtures.docker_tools import DockerScope

from .reconcile_loop import Reconciler, Spec

APP_LABEL = "kata.app"  # the README's contract, not the module's constants
VERSION_LABEL = "kata.version"
DEAD = ("exited", "dead")
REPLACED_WITHIN = 5.0  # seconds from a kill to a full set again, for run() (0.6 s measured)


class WatchedClient:
    """A real docker-py client for the loop; counts its container lists and can act right after one.

    `after_next_list(fn)`: fn(listed) runs once, after the daemon answered the next list and
    before the loop sees the answer: the moment a real peer's action hurts most.
    """

    def __init__(self) -> None:
        self.client = docker.from_env(timeout=60)
        self.lists = 0
        self._after: Callable[[list[dict[str, Any]]], None] | None = None
        real = self.client.api.containers

        def containers(*args: Any, **kwargs: Any) -> Any:
            found = real(*args, **kwargs)
            self.lists += 1
            act, self._after = self._after, None
            if act is not None:
                act(found)
            return found

        self.client.api.containers = containers

    def after_next_list(self, act: Callable[[list[dict[str, Any]]], None]) -> None:
        self._after = act

    def close(self) -> None:
        self.client.close()


@dataclasses.dataclass
class World:
    """The app's containers as docker-py sees them, and the checks every pass must pass."""

    reconciler: Reconciler
    watched: WatchedClient
    docker: Any
    scope: DockerScope
    decoys: list[str]

    @property
    def spec(self) -> Spec:
        return self.reconciler.spec

    def want(self, **changes: Any) -> None:
        self.reconciler.spec = dataclasses.replace(self.reconciler.spec, **changes)

    def containers(self) -> list[dict[str, Any]]:
        found = self.docker.containers.list(
            all=True, sparse=True, filters={"label": f"{APP_LABEL}={self.spec.name}"})
        return [c.attrs for c in found]

    def live(self) -> list[dict[str, Any]]:
        return [c for c in self.containers() if c.get("State") == "running"]

    def describe(self) -> str:
        states = sorted((c.get("State"), c["Labels"].get(VERSION_LABEL)) for c in self.containers())
        return f"{len(states)} container(s), (state, version): {states}"

    def settled(self) -> bool:
        every = self.containers()
        return len(every) == self.spec.replicas and all(
            c.get("State") == "running" and c["Labels"].get(VERSION_LABEL) == self.spec.version
            for c in every)

    def step(self, what: str) -> None:
        """One reconcile_once(), then what any pass promises, whatever came before it."""
        before = {c["Id"]: c for c in self.containers()}
        live_before = sum(c.get("State") == "running" for c in before.values())
        self.reconciler.reconcile_once()
        after = {c["Id"]: c for c in self.containers()}
        live_after = sum(c.get("State") == "running" for c in after.values())
        where = f"after a pass ({what}): {self.describe()}"
        self.check_decoys(where)
        dead = [i for i, c in after.items() if c.get("State") in DEAD]
        assert not dead, f"dead replicas were left behind {where}: a pass removes the dead ones"
        assert live_after >= self.spec.replicas, (
            f"{live_after} running replica(s) for {self.spec.replicas} wanted {where}: a pass creates "
            "the missing ones (count only live replicas: a dead one is not a replica), and an update "
            "removes an old one only once its replacement runs (maxUnavailable=0)")
        assert live_after <= max(live_before, self.spec.replicas + 1), (
            f"{live_after} running replicas, {live_before} before the pass, {self.spec.replicas} "
            f"wanted {where}: an update surges by one replica at a time (maxSurge=1)")
        for new in set(after) - set(before):
            self.check_new_replica(new, where)

    def check_new_replica(self, ctr_id: str, where: str) -> None:
        attrs = self.docker.api.inspect_container(ctr_id)
        labels = attrs["Config"]["Labels"] or {}
        wanted = {**self.spec.labels, APP_LABEL: self.spec.name, VERSION_LABEL: self.spec.version}
        missing = {k: v for k, v in wanted.items() if labels.get(k) != v}
        assert not missing, f"a new replica lacks the labels {missing} {where}"
        assert attrs["HostConfig"].get("Init") is True, (
            f"a new replica runs without init {where}: init=True (docker-init forwards signals and "
            "reaps zombies)")

    def check_decoys(self, where: str) -> None:
        for decoy in self.decoys:
            try:
                self.docker.api.inspect_container(decoy)
            except docker.errors.NotFound:
                raise AssertionError(
                    f"the loop removed a container of another app {where}: select the replicas "
                    f"by the label {APP_LABEL}=<spec.name>, leave everything else alone") from None

    def converge(self, what: str, passes: int = 12) -> None:
        """Pass after pass until the world is the spec; then one more pass changes nothing."""
        for number in range(1, passes + 1):
            self.step(f"{what}, pass {number}")
            if self.settled():
                break
        else:
            raise AssertionError(f"{what}: still not {self.spec.replicas} running replicas of version "
                                 f"{self.spec.version} after {passes} passes: {self.describe()}")
        ids = {c["Id"] for c in self.containers()}
        self.step(f"{what}, settled")
        assert {c["Id"] for c in self.containers()} == ids, (
            f"{what}: a pass over a settled world changed it: {self.describe()}. Nothing to do is "
            "nothing to do")


def spec_for(scope: DockerScope, image: str, replicas: int = 3) -> Spec:
    return Spec(name=f"kata-rec-{uuid.uuid4().hex[:8]}", image=image, command=["sleep", "600"],
                replicas=replicas, labels=dict(scope.labels))


@pytest.fixture
def watched() -> Iterator[WatchedClient]:
    client = WatchedClient()
    yield client
    client.close()


@pytest.fixture
def world(docker_api: Any, docker_scope: DockerScope, python_base_image: str,
          watched: WatchedClient) -> World:
    # Containers of another app, one running and one exited: not the loop's to touch.
    other = f"kata-other-{uuid.uuid4().hex[:8]}"
    running = docker_scope.run(python_base_image, command=["sleep", "600"], labels={APP_LABEL: other})
    exited = docker_scope.run(python_base_image, command=["true"], labels={APP_LABEL: other})
    spec = spec_for(docker_scope, python_base_image)
    return World(Reconciler(watched.client, spec), watched, docker_api, docker_scope,
                 [running.id, exited.id])


@pytest.mark.stage(1, "repair and scale")
def test_each_pass_repairs_a_replica_killed_or_removed_behind_its_back(world: World) -> None:
    world.converge("from nothing to 3 replicas")
    world.docker.containers.get(world.live()[0]["Id"]).kill()
    world.step("one replica was killed (it is exited now)")
    world.docker.containers.get(world.live()[0]["Id"]).remove(force=True)
    world.step("one replica was removed behind the loop's back")
    for victim in world.live()[:2]:
        world.docker.containers.get(victim["Id"]).kill()
    world.step("two replicas were killed")
    world.converge("after the repairs")


@pytest.mark.stage(1, "repair and scale")
def test_scaling_up_down_to_zero_and_back(world: World, python_base_image: str,
                                          tmp_path: Path) -> None:
    # An image with a VOLUME: every replica gets an anonymous volume, which must go with it.
    (tmp_path / "Dockerfile").write_text(f"FROM {python_base_image}\nVOLUME /data\n")
    image, _log = world.scope.build(tmp_path)
    world.want(image=image.id, replicas=1)
    world.converge("a spec of one replica of an image with a VOLUME")
    volumes = {m["Name"] for c in world.containers() for m in c.get("Mounts", []) if m.get("Name")}
    world.want(replicas=4)
    world.converge("scaled up from 1 to 4")
    world.want(replicas=0)
    world.converge("scaled down to 0")
    left = [v for v in volumes if _volume_exists(world.docker, v)]
    assert not left, (f"removed replicas left their anonymous volumes {left} behind: remove with "
                      "v=True (docker rm -v), or every replacement leaks a volume")
    world.want(replicas=2)
    world.converge("scaled up from 0 to 2")


def _volume_exists(client: Any, name: str) -> bool:
    try:
        client.volumes.get(name)
        return True
    except docker.errors.NotFound:
        return False


@pytest.mark.stage(2, "updates and races")
def test_a_rolling_update_keeps_every_replica_available_pass_by_pass(world: World) -> None:
    world.converge("3 replicas of version 1")
    world.want(version="2")
    world.step("version 2 wanted")
    world.step("version 2 wanted, second pass")
    olds = [c for c in world.live() if c["Labels"].get(VERSION_LABEL) == "1"]
    news = [c for c in world.live() if c["Labels"].get(VERSION_LABEL) == "2"]
    assert olds and news, (f"two passes into the update there should be replicas of both versions, "
                           f"one replaced per pass: {world.describe()}")
    world.docker.containers.get(olds[0]["Id"]).kill()  # an old replica dies mid-update
    world.docker.containers.get(news[0]["Id"]).kill()  # and a new one
    world.step("an old and a new replica died mid-update")
    world.converge("the rest of the update")
    world.want(version="3", replicas=2)
    world.converge("version 3 and 2 replicas at once")


@pytest.mark.stage(2, "updates and races")
def test_a_container_vanishing_between_the_list_and_the_action_is_not_an_error(world: World) -> None:
    world.converge("3 replicas")
    victim = world.live()[0]["Id"]
    world.docker.containers.get(victim).kill()

    def remove_it(listed: list[dict[str, Any]]) -> None:
        world.docker.containers.get(victim).remove(force=True)  # an operator's `docker rm`

    world.watched.after_next_list(remove_it)
    try:
        world.reconciler.reconcile_once()
    except docker.errors.NotFound as exc:
        raise AssertionError(
            f"a dead replica removed by someone else between the loop's list and its remove made the "
            f"pass fail ({exc}): list with sparse=True (a full list inspects each container) and "
            "treat NotFound on remove as done") from None
    world.step("the pass after")
    world.converge("after the race")


@pytest.mark.stage(3, "the controller loop")
def test_a_failed_pass_is_reported_and_retried(world: World, python_base_image: str,
                                               capsys: pytest.CaptureFixture[str],
                                               caplog: pytest.LogCaptureFixture) -> None:
    world.want(image="Not A Valid/Image!")  # the daemon refuses to create it
    stop = threading.Event()
    thread = Background(world.reconciler.run, stop, 0.05, name="Reconciler.run")
    try:
        start = world.watched.lists
        wait_until(lambda: world.watched.lists >= start + 3 or thread.done, timeout=10,
                   what="three passes of run() while every create fails")
        if thread.done:
            thread.result()
            raise AssertionError("run() returned: a failed pass is reported and retried, not the end")
        captured = capsys.readouterr()
        assert captured.out or captured.err or caplog.records, (
            "passes failed (the daemon refused every create) and run() said nothing: report a failed "
            "pass (print or log it), then retry on the next")
        world.want(image=python_base_image)
        wait_until(world.settled, timeout=15,
                   what=f"3 replicas once the spec was fixed (now: {world.describe()})")
    finally:
        stop.set()
        thread.thread.join(10)


@pytest.mark.stage(3, "the controller loop")
def test_run_waits_on_stop_between_passes(world: World) -> None:
    stop = threading.Event()
    thread = Background(world.reconciler.run, stop, 3600, name="Reconciler.run")
    try:
        wait_until(lambda: world.settled() or thread.done, timeout=15,
                   what=f"the first pass to create 3 replicas (now: {world.describe()})")
        first = world.watched.lists
        threading.Event().wait(0.5)  # an hour's interval: no second pass may come in this window
        assert world.watched.lists == first, (
            f"with interval=3600 the loop listed the containers {world.watched.lists - first} more "
            "time(s) within half a second: wait `interval` between passes, or it hammers the daemon")
    finally:
        stop.set()
    wait_until(lambda: thread.done, timeout=10,
               what="run() to return once stop is set (wait on the event, don't sleep the interval)")
    thread.result()


# -- the loop as a controller: run() in a thread --------------------------------------------------


@dataclasses.dataclass
class Loop:
    """The learner's reconciler, running in a thread, and what the test needs to watch it."""

    world: World
    thread: Background[None]

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        def check() -> bool:
            if self.thread.done:
                self.thread.result()  # re-raises what stopped run() (NotImplementedError, ...)
                raise AssertionError("run() returned while it should loop until stop is set")
            return bool(predicate())

        wait_until(check, timeout=timeout, what=what)

    def converge(self, timeout: float = 15.0) -> None:
        spec = self.world.spec
        self.wait_for(self.world.settled, timeout,
                      f"exactly {spec.replicas} running replicas of version {spec.version} and no "
                      f"others (now: {self.world.describe()})")

    def let_it_pass(self, passes: int = 3) -> None:
        target = self.world.watched.lists + passes
        self.wait_for(lambda: self.world.watched.lists >= target, 10, f"{passes} more passes")


@pytest.fixture
def loop(world: World) -> Iterator[Loop]:
    stop = threading.Event()
    thread = Background(world.reconciler.run, stop, 0.1, name="Reconciler.run")
    yield Loop(world, thread)
    stop.set()
    thread.thread.join(10)  # the scope's cleanup removes the containers after this


@pytest.mark.stage(3, "the controller loop")
def test_converges_and_then_leaves_the_replicas_alone(loop: Loop) -> None:
    loop.converge()
    ids = {c["Id"] for c in loop.world.containers()}
    loop.let_it_pass()
    assert {c["Id"] for c in loop.world.containers()} == ids, (
        f"the set of replicas keeps changing although nothing happened: {loop.world.describe()}")


@pytest.mark.stage(3, "the controller loop")
def test_a_killed_replica_is_replaced(loop: Loop, docker_api: Any) -> None:
    loop.converge()
    for round_ in (1, 2):
        victim = loop.world.live()[0]["Id"]
        docker_api.containers.get(victim).kill()
        loop.wait_for(
            lambda v=victim: (len(loop.world.live()) == 3  # type: ignore[misc]
                              and v not in {c["Id"] for c in loop.world.containers()}),
            REPLACED_WITHIN,
            f"kill #{round_}: 3 running replicas again and the dead one removed (now: "
            f"{loop.world.describe()}). Dead replicas (exited) are not replicas: remove them and "
            "count only the live ones")


@pytest.mark.stage(3, "the controller loop")
def test_scale_up_and_down(loop: Loop) -> None:
    loop.converge()
    loop.world.want(replicas=5)
    loop.converge()
    loop.world.want(replicas=2)
    try:
        loop.converge(timeout=10)
    except AssertionError as exc:
        raise AssertionError(f"scale down from 5 to 2 did not happen: {exc}") from None


@pytest.mark.stage(4, "no downtime, two loops")
def test_rolling_update_never_has_a_replica_unavailable(loop: Loop) -> None:
    loop.converge()
    samples: list[int] = []
    watching = threading.Event()

    def watch() -> None:
        while not watching.is_set():
            samples.append(len(loop.world.live()))

    watcher = Background(watch, name="availability watcher")
    loop.world.want(version="2")
    try:
        loop.converge(timeout=20)
    finally:
        watching.set()
        watcher.result(timeout=10)
    assert samples, "the watcher took no samples"
    assert min(samples) >= 3, (
        f"during the rolling update only {min(samples)} replica(s) were running at one point "
        f"({len(samples)} samples): never more than one replica unavailable, and here none "
        "(maxUnavailable=0). Surge first: create one of the new version, then remove one old")
    assert max(samples) <= 4, (
        f"during the rolling update {max(samples)} replicas ran at once: one extra at most (maxSurge=1)")


@pytest.mark.stage(4, "no downtime, two loops")
def test_two_loops_on_the_same_app_settle_on_the_same_replicas(loop: Loop) -> None:
    second_client = WatchedClient()
    second = Reconciler(second_client.client, loop.world.spec)
    stop = threading.Event()
    thread = Background(second.run, stop, 0.1, name="second Reconciler.run")
    try:
        loop.converge(timeout=20)
        ids = {c["Id"] for c in loop.world.containers()}
        loop.let_it_pass()
        target = second_client.lists + 3
        wait_until(lambda: second_client.lists >= target or thread.done, 10, "the second loop's passes")
        assert not thread.done, "the second loop's run() returned"
        assert loop.world.settled() and {c["Id"] for c in loop.world.containers()} == ids, (
            f"two loops on the same app keep changing the replicas: {loop.world.describe()}. Both "
            "see the same world; a container another actor removed first is not an error")
    finally:
        stop.set()
        thread.thread.join(10)
        second_client.close()

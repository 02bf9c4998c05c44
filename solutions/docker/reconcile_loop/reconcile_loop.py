"""A reconcile loop on real Docker: keep N replicas of a labelled container running, roll updates."""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from typing import Any

import docker  # type: ignore[import-untyped]

APP_LABEL = "kata.app"  # selects the replicas: every container with this label = spec.name
VERSION_LABEL = "kata.version"  # which spec.version a replica was created from
LIVE = ("created", "running", "restarting")  # states that count as a replica; others are dead


@dataclass(frozen=True)
class Spec:
    """The desired state: `replicas` containers of `image` running `command`, at `version`.

    `labels` go on every container as well (the tests use them to clean up).
    """

    name: str
    image: str
    command: list[str]
    replicas: int
    version: str = "1"
    labels: dict[str, str] = field(default_factory=dict)


class Reconciler:
    """Drives the actual state (containers) towards `self.spec`, one small step at a time.

    Another thread may replace `self.spec` at any moment (scale, update); each pass reads it once.

    >>> r = Reconciler(docker.from_env(), Spec("web", "python:3.11-slim", ["sleep", "600"], 3))
    >>> stop = threading.Event()
    >>> threading.Thread(target=r.run, args=(stop,)).start()   # 3 replicas appear and stay
    """

    def __init__(self, client: Any, spec: Spec) -> None:
        self.client = client
        self.spec = spec

    def actual(self) -> list[Any]:
        """Every container (running or not) labelled APP_LABEL=spec.name.

        Use `sparse=True`: a full list inspects each container and fails if one vanishes meanwhile.
        A sparse container has .id and .attrs["State"] ("running", "exited", ...) and .attrs["Labels"].
        """
        # all=True: the dead must be seen to be cleaned up; the label is the selector
        return list(self.client.containers.list(
            all=True, sparse=True, filters={"label": f"{APP_LABEL}={self.spec.name}"}))

    def reconcile_once(self) -> None:
        """One pass: observe, compare with the spec, act.

        * remove dead replicas (state not in LIVE);
        * create replicas while there are fewer live ones than spec.replicas (with init=True, the
          spec's labels plus APP_LABEL and VERSION_LABEL);
        * rolling update: while live replicas of another version remain, surge by one (create one
          of spec.version if the total is not above spec.replicas), else remove one old replica;
          never fewer than spec.replicas running (maxSurge=1, maxUnavailable=0);
        * remove extras of the current version above spec.replicas.
        A container that disappears under you (NotFound) is not an error: the next pass sees it.
        """
        spec = self.spec  # one consistent desired state for the whole pass
        live, current, old = [], [], []
        for ctr in self.actual():
            if ctr.attrs.get("State") not in LIVE:
                self._remove(ctr)
                continue
            live.append(ctr)
            version = (ctr.attrs.get("Labels") or {}).get(VERSION_LABEL)
            (current if version == spec.version else old).append(ctr)
        # Level-triggered: act on the difference as it is now, whatever events led here.
        for _ in range(spec.replicas - len(live)):
            self._create(spec)  # refill after a death, or scale up
        if old:
            # Surge first (maxSurge=1, maxUnavailable=0): one new replica, then one old goes.
            if len(live) > spec.replicas:
                self._remove(old.pop())  # the surge replica runs: an old one (any) may go
            elif len(live) == spec.replicas:
                self._create(spec)
        else:
            for ctr in current[spec.replicas:]:  # scale down: the extras go
                self._remove(ctr)

    def _create(self, spec: Spec) -> None:
        labels = {**spec.labels, APP_LABEL: spec.name, VERSION_LABEL: spec.version}
        # init: docker-init forwards signals, so a replica stops at once when removed
        self.client.containers.run(spec.image, spec.command, detach=True, init=True, labels=labels)

    def _remove(self, ctr: Any) -> None:
        # another actor (a test, an operator, a second loop) may have removed it first
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            ctr.remove(force=True, v=True)

    def run(self, stop: threading.Event, interval: float = 0.1) -> None:
        """Reconcile every `interval` seconds until `stop` is set.

        A periodic resync, not only events: a pass can miss a change (a container that died a
        moment after it was listed), and only the next look at the world repairs that.
        """
        while not stop.is_set():
            try:
                self.reconcile_once()
            except docker.errors.DockerException as exc:
                # a controller survives a bad pass (daemon busy, a race): it retries on the next
                print(f"reconcile: pass failed, retrying: {exc}")
            stop.wait(interval)

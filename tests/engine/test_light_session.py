"""Every pytest process stays light: a pure kata's session loads no CLI and no service client.

The engine's modules that run inside pytest (dojo/README.md lists them) must not import rich,
typer or the `kata` command's modules, and the services layer imports a client only when a test
asks for its service: a learner's run of a pure kata pays for none of them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PURE_KATA = "katas/concurrency/rw_lock"  # no service, no Hypothesis
# (module, why it must stay out of a pure kata's session)
HEAVY = {
    "rich": "the CLI's terminal output", "typer": "the CLI", "click": "the CLI (under typer)",
    "dojo.cli": "the CLI", "dojo.learner": "the CLI's learner commands", "dojo.drill": "the CLI's drills",
    "dojo.verify": "the maintainer check", "dojo.running.runner": "the maintainer check",
    "dojo.mutation": "the maintainer check",
    "dojo.running.warm": "the warm server (it imports the session, not the reverse)",
    "dojo.running.launch": "the CLI's launchers",
    "docker": "the Docker client", "testcontainers": "the container backend",
    "psycopg": "the Postgres client", "redis": "the Redis client", "hypothesis": "a kata that uses no Hypothesis",
}
SESSION = """
import json, sys, pytest
code = pytest.main(["--solutions", sys.argv[1], "-q", "-p", "no:cacheprovider"])
print("MODULES=" + json.dumps(sorted(sys.modules)))
"""


def test_a_pure_katas_session_loads_no_cli_and_no_service_client() -> None:
    done = subprocess.run([sys.executable, "-c", SESSION, PURE_KATA], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
    line = next((x for x in done.stdout.splitlines() if x.startswith("MODULES=")), None)
    assert line is not None, done.stdout + done.stderr
    loaded = json.loads(line.removeprefix("MODULES="))
    heavy = {m: why for m, why in HEAVY.items() if any(x == m or x.startswith(m + ".") for x in loaded)}
    assert not heavy, f"a pure kata's pytest session imported {heavy}: import them lazily where they are used"
    assert "dojo.pytest_plugin" in loaded and "fixtures.plugin" in loaded, "the session did run the engine"

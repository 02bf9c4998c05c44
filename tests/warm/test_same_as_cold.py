"""Real katas run warm give each test the outcome a cold pytest gives it (benchmarks/warm_matches_cold.py
does this for every kata)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from dojo.catalogue import Kata, find_root, load
from dojo.running import warm
from dojo.running.runner import run_kata
from dojo.running.warm_client import WarmPytest

pytestmark = [
    pytest.mark.skipif(not warm.can_fork(), reason="the warm server needs fork"),
    pytest.mark.time_limit(600),
]
ROOT = find_root(Path(__file__).parent)
# a pure kata, one with Hypothesis, one with asyncio and aiohttp
KATAS = ["scope_closures", "dataclass_tricks", "async_fanout"]


@pytest.fixture(scope="module")
def real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WarmPytest]:
    catalogue = load(ROOT / "katas.toml", check_files=False)
    topics = sorted({catalogue.get(name).kata_dir.parent for name in KATAS})
    # a socket of our own: never take over a `kata watch` running in this repository
    sock = tmp_path_factory.mktemp("warm") / "warm.sock"
    runner = WarmPytest(ROOT, {**os.environ, "KATA_SOLUTIONS": "0"}, topics, sock_path=sock)
    runner.ensure()
    assert runner.wait_ready(), (ROOT / ".kata" / "warm.log").read_text()
    yield runner
    runner.close()


def warm_outcomes(runner: WarmPytest, kata: Kata, solutions: bool, tmp_path: Path) -> dict[str, str]:
    report = tmp_path / "report.json"
    args = [str(kata.kata_dir), "-p", "no:cacheprovider", "-q", f"--kata-report={report}",
            *(["--solutions"] if solutions else [])]
    env = {**runner.env, "KATA_SOLUTIONS": "1" if solutions else "0"}
    with open(tmp_path / "output.txt", "w") as sink:
        code = warm.run(runner.sock_path, args, cwd=ROOT, env=env, timeout=300,
                        stdout=sink.fileno(), stderr=sink.fileno())
    assert code is not None, "the warm server answered"
    return {k: v["outcome"] for k, v in json.loads(report.read_text()).items()}


@pytest.mark.parametrize("solutions", [False, True], ids=["learner", "solutions"])
@pytest.mark.parametrize("name", KATAS)
def test_warm_and_cold_agree_test_by_test(real_server: WarmPytest, name: str, solutions: bool,
                                          tmp_path: Path):
    kata = load(ROOT / "katas.toml", check_files=False).get(name)
    hot = warm_outcomes(real_server, kata, solutions, tmp_path)
    cold = {o.nodeid: o.outcome for o in run_kata(kata, solutions=solutions).outcomes}
    assert hot, "the warm run reported its tests"
    assert hot == cold, f"warm and cold differ on {kata.slug}:\n warm {hot}\n cold {cold}"

"""How much of a kata's suite a known mistake costs before it is judged: tests run to the first
failure in file order, against with the tests that carry the mistake's phrase first
(`--kata-first`, what `kata verify` passes). Counts, not seconds, so the machine's load can't
skew it; the wall times are printed beside them.

    python benchmarks/mistakes_first_tests.py [KATA ...]   (default: three katas of different kinds)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from dojo.catalogue import load
from dojo.mistakes import load_gallery
from dojo.running.runner import run_kata

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ["js_event_loop", "wsgi_server", "bearer_tokens"]


def cost(kata, mistake, first: bool) -> tuple[int, float, bool]:  # type: ignore[no-untyped-def]
    """Tests run, seconds, and whether the first failure carried the phrase."""
    with tempfile.TemporaryDirectory() as tmp:
        wrong = Path(tmp) / Path(mistake.replaces).name
        wrong.write_text(mistake.text(), encoding="utf-8")
        args = ("--maxfail=1", *((f"--kata-first={mistake.expect}",) if first else ()))
        started = time.perf_counter()
        run = run_kata(kata, solutions=True, overrides={mistake.replaces: wrong}, extra_args=args)
        seconds = time.perf_counter() - started
    failed = [o for o in run.outcomes if o.outcome in ("failed", "error")]
    told = bool(failed) and mistake.expect.lower() in (run.output + failed[0].message + failed[0].details).lower()
    return len([o for o in run.outcomes if o.phase != "collect"]), seconds, told


def main(names: list[str]) -> None:
    catalogue = load(ROOT / "katas.toml")
    for name in names or DEFAULT:
        kata = catalogue.get(name)
        totals = {False: [0, 0.0, 0], True: [0, 0.0, 0]}
        gallery = load_gallery(kata)
        for mistake in gallery:
            for first in (False, True):
                tests, seconds, told = cost(kata, mistake, first)
                totals[first][0] += tests
                totals[first][1] += seconds
                totals[first][2] += told
        (a_tests, a_s, a_told), (b_tests, b_s, b_told) = totals[False], totals[True]
        print(f"{kata.slug}: {len(gallery)} mistakes; tests run to the first failure "
              f"{a_tests} -> {b_tests} (x{b_tests / max(a_tests, 1):.2f}); the first failure names "
              f"the cause {a_told} -> {b_told} times (else the whole suite runs); "
              f"wall {a_s:.0f} s -> {b_s:.0f} s (x{b_s / max(a_s, 1e-9):.2f})", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

"""What judging a known mistake costs: the old way (tests that carry the phrase first, stop at the
first failure, and when that failure doesn't name the cause, run the whole suite again) against
one run that stops at the first failure naming the cause (`--kata-stop-at`, what `kata verify`
passes now; in file order again only if none did). Tests run are counted, so the machine's load
can't skew the ratio; wall times beside.

    python benchmarks/mistakes_stop_at.py [KATA ...]   (default: pipeline, mini_shell, bearer_tokens)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from dojo.catalogue import Kata, load
from dojo.mistakes import Mistake, load_gallery
from dojo.running.runner import RunResult, run_kata

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ["pipeline", "mini_shell", "bearer_tokens"]


def _run(kata: Kata, mistake: Mistake, args: tuple[str, ...]) -> RunResult:
    with tempfile.TemporaryDirectory() as tmp:
        wrong = Path(tmp) / Path(mistake.replaces).name
        wrong.write_text(mistake.text(), encoding="utf-8")
        return run_kata(kata, solutions=True, overrides={mistake.replaces: wrong}, extra_args=args)


def _tests(run: RunResult) -> int:
    return len([o for o in run.outcomes if o.phase != "collect"])


def _names_cause(mistake: Mistake, run: RunResult) -> bool:
    failed = [o for o in run.outcomes if o.outcome in ("failed", "error")]
    return bool(failed) and mistake.expect.lower() in (run.output + failed[0].message + failed[0].details).lower()


def old_way(kata: Kata, mistake: Mistake) -> int:
    first = _run(kata, mistake, ("--maxfail=1", f"--kata-first={mistake.expect}"))
    return _tests(first) if _names_cause(mistake, first) else _tests(first) + _tests(_run(kata, mistake, ()))


def new_way(kata: Kata, mistake: Mistake) -> int:
    first = _run(kata, mistake, (f"--kata-first={mistake.expect}", f"--kata-stop-at={mistake.expect}"))
    failed = [o for o in first.outcomes if o.outcome in ("failed", "error")]
    told = any(mistake.expect.lower() in (o.nodeid + o.message + o.details).lower() for o in failed)
    return _tests(first) if told else _tests(first) + _tests(_run(kata, mistake, ()))


def main(names: list[str]) -> None:
    catalogue = load(ROOT / "katas.toml")
    for name in names or DEFAULT:
        kata = catalogue.get(name)
        gallery = load_gallery(kata)
        counts, seconds = [0, 0], [0.0, 0.0]
        for mistake in gallery:
            for index, way in enumerate((old_way, new_way)):
                started = time.perf_counter()
                counts[index] += way(kata, mistake)
                seconds[index] += time.perf_counter() - started
        print(f"{kata.slug}: {len(gallery)} mistakes; tests run {counts[0]} -> {counts[1]} "
              f"(x{counts[1] / max(counts[0], 1):.2f}); wall {seconds[0]:.0f} s -> {seconds[1]:.0f} s "
              f"(x{seconds[1] / max(seconds[0], 1e-9):.2f})", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

"""Wall time of `pytest --solutions` on one pure kata, divided by bare pytest on one empty test.

Usage: python benchmarks/kata_vs_bare_pytest.py [KATA_DIR] [--rounds N]
Target (issue 2): at most 1.5.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _timing import ROOT, best_of, pytest_cmd

DEFAULT_KATA = "katas/concurrency/bounded_queue"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kata", nargs="?", default=DEFAULT_KATA)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "test_empty.py"
        empty.write_text("def test_nothing():\n    pass\n")
        (Path(tmp) / "pytest.ini").write_text("[pytest]\n")
        times = best_of(
            {
                "bare pytest, one empty test": pytest_cmd(str(empty), "-c", str(Path(tmp) / "pytest.ini")),
                f"pytest --solutions {args.kata}": pytest_cmd("--solutions", str(ROOT / args.kata)),
            },
            rounds=args.rounds,
        )
    bare, kata = times.values()
    for name, seconds in times.items():
        print(f"{name:45s} {seconds:6.2f} s (best of {args.rounds})")
    print(f"ratio kata / bare: {kata / bare:.2f} (target <= 1.5)")


if __name__ == "__main__":
    main()

"""`--kata-first=TEXT`: the tests that carry TEXT run first; the others keep their order after them.

`kata verify` judges a known mistake by its first failure (pytest stops there) and wants the
failure whose message names the cause. That phrase is nearly always in the failing test's own
source (its assertion message) or in its parameters (a scenario's rule), so those tests go to the
front: the mistake is judged after one test instead of after every test that comes before it.
"""

from __future__ import annotations

import inspect
import re

import pytest

_JOINED_LITERALS = re.compile(r"""["']\s*\n\s*[rbfu]*["']""")  # "...the loop "\n    "does not..."


def _normalise(text: str) -> str:
    return " ".join(_JOINED_LITERALS.sub("", text).lower().split())


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("kata").addoption(
        "--kata-first",
        default=None,
        metavar="TEXT",
        help="run first the tests whose source or parameters contain TEXT (case-insensitive)",
    )


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    text = config.getoption("kata_first")
    if not text:
        return
    wanted = _normalise(text)
    sources: dict[object, str] = {}

    def carries(item: pytest.Item) -> bool:
        function = getattr(item, "function", None)
        if function is not None and function not in sources:
            try:
                sources[function] = _normalise(inspect.getsource(function))
            except (OSError, TypeError):
                sources[function] = ""
        params = getattr(getattr(item, "callspec", None), "params", {})
        shown = " ".join(repr(getattr(v, "__dict__", v)) for v in params.values())
        return wanted in sources.get(function, "") or wanted in _normalise(shown)

    items.sort(key=lambda item: not carries(item))  # stable: the rest keep their order

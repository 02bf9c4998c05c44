"""The engine's layers point one way: `fixtures` (the services plugin) is built on `dojo`, and
no module of `dojo` imports `fixtures`, not even by name at run time."""

from __future__ import annotations

import ast
from pathlib import Path

DOJO = Path(__file__).resolve().parents[2] / "dojo"


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("fixtures."):
            found.add(node.value)  # sys.modules.get("fixtures.backends"): an arrow no reader sees
    return found


def test_no_engine_module_imports_the_services_fixtures() -> None:
    upward = {
        str(path.relative_to(DOJO.parent)): sorted(name for name in _imports(path) if name.split(".")[0] == "fixtures")
        for path in sorted(DOJO.rglob("*.py"))
    }
    assert {module: names for module, names in upward.items() if names} == {}

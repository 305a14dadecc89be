"""The Python snippets of README.md and docs/*.md run as written.

Each ```python block is executed in a fresh namespace.  A block that imports a module
which is not installed here (torch, onnxruntime, tensorflow, ...) is skipped, so the
porting snippets, which assert agreement with those frameworks, run where they are
installed (e.g. the oracle environment of tests/test_live.py).
"""

from __future__ import annotations

import ast
import importlib.util
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def snippets() -> list:
    out = []
    for path in DOCUMENTS:
        for i, match in enumerate(BLOCK.finditer(path.read_text())):
            line = path.read_text().count("\n", 0, match.start()) + 1
            out.append(pytest.param(match.group(1), id=f"{path.relative_to(ROOT)}:{line}:{i}"))
    return out


def imported_modules(code: str) -> set[str]:
    """Top-level names of every module the code imports."""
    names = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


SNIPPETS = snippets()


def test_the_documents_have_snippets():
    assert len(SNIPPETS) >= 8


@pytest.mark.parametrize("code", SNIPPETS)
def test_snippet_runs(code):
    missing = sorted(m for m in imported_modules(code) if importlib.util.find_spec(m) is None)
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    exec(compile(code, "<snippet>", "exec"), {"__name__": "__snippet__"})

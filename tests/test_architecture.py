"""The layers of docs/architecture.md, enforced on the import statements of every module.

Each module of the package belongs to one layer; a layer may import only the layers
listed for it in ALLOWED.  Imports are read from the source (the whole module, imports
inside functions included), so a rule broken on any code path fails here.
"""

from __future__ import annotations

import ast
import functools
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Which layers each layer may import (itself included where listed).
ALLOWED: dict[str, frozenset[str]] = {
    "conventions": frozenset(),
    "canonical": frozenset({"conventions"}),
    "core": frozenset({"conventions", "core"}),
    "xla": frozenset({"conventions", "core", "xla"}),
    "kernels": frozenset({"conventions", "core", "kernels"}),
    "ops": frozenset({"conventions", "canonical", "core", "xla", "kernels"}),
    "api": frozenset({"conventions", "canonical", "core", "ops", "api"}),
    "tools": frozenset({"conventions", "canonical", "core", "xla", "kernels", "ops", "api", "tools"}),
    "main": frozenset({"tools"}),
}


def layer_of(module: str) -> str:
    """The layer of a module of the package (dotted name under jax_roialign)."""
    parts = module.split(".")
    assert parts[0] == "jax_roialign", module
    if len(parts) == 1:
        return "api"  # the package's __init__: the public surface
    head = parts[1]
    if head in ("conventions", "canonical", "core", "xla", "kernels", "ops", "tools"):
        return head
    if head == "__main__":
        return "main"
    return "api"  # multiscale, checked, compat, module_config, flax, haiku


@functools.cache
def package_modules() -> dict[str, pathlib.Path]:
    """{dotted module name: source file} of every module of the package, kernels/ included."""
    modules = {}
    for base, prefix in ((ROOT / "jax_roialign", "jax_roialign"), (ROOT / "kernels", "jax_roialign.kernels")):
        for path in sorted(base.rglob("*.py")):
            relative = path.relative_to(base).with_suffix("")
            parts = [p for p in relative.parts if p != "__init__"]
            modules[".".join([prefix, *parts])] = path
    return modules


def imported_modules(module: str, path: pathlib.Path) -> set[str]:
    """The package modules that module imports anywhere in its source (relative imports resolved)."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # "from pkg import name": the submodule pkg.name where there is one, else pkg itself.
            modules = package_modules()
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return {name for name in found if name in package_modules()}


MODULES = package_modules()


def test_every_module_has_a_layer():
    assert {layer_of(m) for m in MODULES} <= set(ALLOWED)
    assert {"core", "xla", "kernels", "ops", "tools", "api"} <= {layer_of(m) for m in MODULES}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_follow_the_layers(module):
    layer = layer_of(module)
    bad = sorted(m for m in imported_modules(module, MODULES[module]) if layer_of(m) not in ALLOWED[layer])
    assert not bad, f"{module} ({layer}) may import only {sorted(ALLOWED[layer])}, but imports {bad}"


def test_importing_the_op_loads_no_tooling():
    """`import jax_roialign` and the modules users import load nothing of the tooling wing."""
    code = (
        "import sys, jax_roialign, jax_roialign.compat, jax_roialign.checked, jax_roialign.kernels\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('jax_roialign.tools'))\n"
        "print(loaded)\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr

"""The package stands in layers: a lower layer never imports a higher one, and no two modules import each other.

Every import that runs counts: at module level and inside functions (a lazy import is still a dependency:
it runs on the first call, and a loop through it is still a loop). Imports under ``if TYPE_CHECKING:`` do
not count: they never run, so they can neither load a higher layer nor close a loop; they only name types
for annotations (``metrics`` annotates with the Decision it counts, for example). The only modules left
out are the deprecated aliases at the old top-level paths, which by design import their new, higher home.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "biorouter"

# Lowest first. A module may import its own layer and any layer listed before it, never one after it.
# Layers in one tuple are siblings: they may not import each other either.
LAYERS: list[tuple[str, ...]] = [
    ("core",),  # top-level helpers: errors, files, lru, offline, settings, yamlfile, metrics
    ("governance",),
    ("routing",),
    ("classify", "costs", "hardware"),
    ("serving",),
    ("workers",),
    ("proxy",),
    ("testing",),
    ("cli",),
    ("main",),  # biorouter/__init__.py (lazy public API) and __main__.py
]

# Old paths that the docs or a proxy config named (README: biorouter.profiles, biorouter.resources.detect();
# litellm callbacks: biorouter.guard.proxy_guard). Every other module moved without an alias.
DEPRECATED_ALIASES = {"biorouter.profiles", "biorouter.resources", "biorouter.guard"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every biorouter module ``name`` imports, wherever the import statement sits."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    type_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test) in {"TYPE_CHECKING", "typing.TYPE_CHECKING"}
        for statement in node.body
        for inner in ast.walk(statement)
    }
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            # "from biorouter.routing import decision" depends on the module, not only the package
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and target != "biorouter":
                found.add(target)
    return found


def _layer(module: str) -> str:
    parts = module.split(".")
    if module == "biorouter" or module == "biorouter.__main__":
        return "main"
    if len(parts) == 2 and not (PACKAGE / parts[1]).is_dir():
        return "core"
    return parts[1]


def _rank(layer: str) -> int:
    for rank, group in enumerate(LAYERS):
        if layer in group:
            return rank
    raise AssertionError(f"biorouter/{layer}/ is in no layer: add it to LAYERS in {__file__}")


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) - DEPRECATED_ALIASES for name, path in modules.items()}


def test_every_subpackage_says_what_lives_there_and_what_it_may_import() -> None:
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        assert doc, f"{init} has no docstring"
        if init.parent.name in {"governance", "routing", "classify", "costs", "hardware", "serving"}:
            assert "may import" in doc.lower(), f"{init}: the docstring does not say what the package may import"


def test_lower_layers_never_import_higher_ones() -> None:
    wrong = []
    for module, targets in sorted(_graph().items()):
        if module in DEPRECATED_ALIASES:
            continue
        layer = _layer(module)
        for target in sorted(targets):
            other = _layer(target)
            if other == layer:
                continue
            if _rank(other) >= _rank(layer):
                wrong.append(f"{module} ({layer}) imports {target} ({other})")
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)


def test_no_import_cycles_between_modules() -> None:
    graph = {m: t for m, t in _graph().items() if m not in DEPRECATED_ALIASES}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("old", sorted(DEPRECATED_ALIASES))
def test_old_paths_still_import_with_a_deprecation_warning(old: str) -> None:
    import importlib
    import sys

    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=old.replace(".", r"\.") + " moved to"):
        module = importlib.import_module(old)
    assert module.__name__.startswith("biorouter.")
    assert module.__name__ != old  # the new module itself, so every name (and monkeypatching) still works

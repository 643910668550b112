"""The package's floors: every project import (module level or inside a function) points to the same
floor or a lower one, and no set of modules imports itself in a circle.

Floors, lowest first (README "Layout"): core < critique < generation < worlds < pipeline < toy_models
< study < the driver and CLI at the top. A function-level import counts like any other, so hiding an
import in a function body cannot dodge a circle.
"""
from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "scrit_utils"
FLOORS = ("core", "critique", "generation", "worlds", "pipeline", "toy_models", "study")
TOP = len(FLOORS)  # driver.py, cli.py, eval_cli.py, __init__.py


def modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        parts = p.relative_to(PKG.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = p
    return out


def floor(module: str) -> int:
    parts = module.split(".")
    return FLOORS.index(parts[1]) if len(parts) > 2 or (len(parts) == 2 and parts[1] in FLOORS) else TOP


def edges(mods: dict[str, Path]) -> dict[str, set[str]]:
    """module -> project modules it imports (``from pkg import mod`` resolves to the module)."""
    out: dict[str, set[str]] = {}
    for name, path in mods.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name.split(".")[0] == "scrit_utils"}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                    base = base[: len(base) - node.level + 1]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                if mod.split(".")[0] != "scrit_utils":
                    continue
                for a in node.names:
                    targets.add(f"{mod}.{a.name}" if f"{mod}.{a.name}" in mods else mod)
        out[name] = {t for t in targets if t in mods and t != name}
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _is_package_init_of(src: str, dst: str) -> bool:
    # a subpackage's __init__ may re-export its own modules (same floor by construction)
    return src == dst.rsplit(".", 1)[0]


def test_no_import_points_up_a_floor():
    graph = edges(modules())
    up = sorted(f"{s} (floor {FLOORS[floor(s)] if floor(s) < TOP else 'top'}) -> {d} "
                f"(floor {FLOORS[floor(d)] if floor(d) < TOP else 'top'})"
                for s, ds in graph.items() for d in ds if floor(d) > floor(s))
    assert not up, "imports pointing up a floor:\n" + "\n".join(up)


def test_no_import_circles():
    graph = edges(modules())
    assert not cycles(graph), f"import circles: {cycles(graph)}"


def test_every_module_sits_on_a_floor():
    # the top floor holds only entry points: the `scrit` command, its subcommand modules and the run driver
    top_level = sorted(n for n, p in modules().items() if p.parent == PKG and p.name != "__init__.py")
    stray = [n for n in top_level if n not in ("scrit_utils.cli", "scrit_utils.driver") and not n.endswith("_cli")]
    assert not stray, f"modules outside every floor (move them into a subpackage): {stray}"


def test_cycle_finder_finds_a_circle():
    # the checker itself: a -> b -> c -> a is reported, a chain is not
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []

"""Notebooks 01-04 define no stage logic of their own: each calls its stage's ``run`` and displays
what it returns, so ``scrit run`` (the notebooks) and the sweeps (``run()``) cannot disagree."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
#: notebook -> (its stage module, the module attributes a notebook may use: naming and running the stage)
STAGE_OF = {
    "01_data.py": ("data", {"STAGE", "stage", "run"}),
    "02_self_critique.py": ("self_critic", {"stage", "run"}),
    "03_self_validation.py": ("validation", {"stage", "enabled_checks", "run"}),
    "04_training.py": ("training", {"stages", "run"}),
}


def pipeline_uses(source: str) -> dict[str, set[str]]:
    """``{module: {attribute, ...}}`` for every ``scrit_utils.pipeline`` module the code imports and uses."""
    tree = ast.parse(source)
    mods = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
            and n.module == "scrit_utils.pipeline" for a in n.names}
    uses: dict[str, set[str]] = {m: set() for m in mods}
    for n in ast.walk(tree):
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in mods:
            uses[n.value.id].add(n.attr)
    return uses


@pytest.mark.parametrize("name", sorted(STAGE_OF))
def test_notebook_only_runs_its_stage_and_displays(name):
    module, allowed = STAGE_OF[name]
    uses = pipeline_uses((NOTEBOOKS / name).read_text())
    assert set(uses) == {module}, f"{name} uses pipeline modules {sorted(uses)}; only {module} (its stage)"
    assert "run" in uses[module], f"{name} does not call {module}.run"
    extra = uses[module] - allowed
    assert not extra, f"{name} calls {module}.{sorted(extra)}: stage logic belongs in {module}.run / report"


def test_the_check_sees_a_repeated_step():
    src = "from scrit_utils.pipeline import common, data\nrep = data.run(cfg)\nsols = data.generate_solutions(cfg, st, ps)\n"
    assert pipeline_uses(src) == {"common": set(), "data": {"run", "generate_solutions"}}

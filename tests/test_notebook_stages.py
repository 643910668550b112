"""Notebooks 01-06 define no stage logic of their own: each calls its stage's function
(``<stage>.run``, ``studies.scaling`` / ``ablations``) and displays what it returns, so ``scrit run``
(the notebooks) and the sweeps (which call ``run()``) cannot disagree."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
#: notebook -> {pipeline or study module: the attributes the notebook may use (naming its stages, the one
#: function that computes and reports them)}; the first attribute listed for a module is that function
STAGE_OF = {
    "01_data.py": {"data": ("run", "STAGE", "stage")},
    "02_self_critique.py": {"self_critic": ("run", "stage")},
    "03_self_validation.py": {"validation": ("run", "stage", "enabled_checks")},
    "04_training.py": {"loop": ("run",), "training": ("stages",)},
    "05_scaling_analysis.py": {"studies": ("scaling",), "sweeps": ("scaling_stage",)},
    "06_ablations.py": {"studies": ("ablations", "budget_text"), "sweeps": ("ablation_stage", "ablation_size")},
}


#: study modules a notebook may use freely: they only draw or explain what a stage returned
DISPLAY = {"figures", "interpret", "study_report"}


def pipeline_uses(source: str) -> dict[str, set[str]]:
    """``{module: {attribute, ...}}`` for every ``scrit_utils.pipeline`` / ``scrit_utils.study`` module the code
    imports and uses, except the study's display helpers (figures, interpret, claims' tables)."""
    tree = ast.parse(source)
    mods = {a.asname or a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
            and n.module in ("scrit_utils.pipeline", "scrit_utils.study") for a in n.names} - DISPLAY
    uses: dict[str, set[str]] = {m: set() for m in mods}
    for n in ast.walk(tree):
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in mods:
            uses[n.value.id].add(n.attr)
    return uses


@pytest.mark.parametrize("name", sorted(STAGE_OF))
def test_notebook_only_runs_its_stage_and_displays(name):
    allowed = STAGE_OF[name]
    uses = pipeline_uses((NOTEBOOKS / name).read_text())
    assert set(uses) == set(allowed), f"{name} uses pipeline modules {sorted(uses)}; expected {sorted(allowed)}"
    main = next(m for m, attrs in allowed.items() if attrs[0] in ("run", "scaling", "ablations"))
    assert allowed[main][0] in uses[main], f"{name} does not call {main}.{allowed[main][0]}"
    for mod, attrs in allowed.items():
        extra = uses[mod] - set(attrs)
        assert not extra, f"{name} calls {mod}.{sorted(extra)}: stage logic belongs in the stage's function"


def test_the_check_sees_a_repeated_step():
    src = "from scrit_utils.pipeline import common, data\nrep = data.run(cfg)\nsols = data.generate_solutions(cfg, st, ps)\n"
    assert pipeline_uses(src) == {"common": set(), "data": {"run", "generate_solutions"}}

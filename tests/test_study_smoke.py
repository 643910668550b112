"""Notebooks 05-06 on the smoke profile through `scrit run` (papermill): every sweep and ablation
code path with real models, then a second run that is served from the stage cache."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scrit_utils.core import config
from scrit_utils.study import results_check
from scrit_utils.toy_models.build import is_complete

REPO = Path(__file__).resolve().parents[1]
SMOKE = config.load("configs/smoke.yaml")
MODELS = [SMOKE.models.critic, *(g.path for g in SMOKE.models.generators), *SMOKE.sweeps.model_sizes]
BUDGET_S = float(os.environ.get("SCRIT_STUDY_SMOKE_BUDGET_S", "420"))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not all(is_complete(config.resolve_path(m)) for m in MODELS),
        reason=f"committed toy base models {MODELS} not built yet (scrit build-base-models)",
    ),
]


def _run(tmp: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "scrit_utils.cli", "run", "--profile", "configs/smoke.yaml",
           "--set", f"run.artifacts_dir={tmp / 'artifacts'}", "--set", f"run.results_dir={tmp / 'results'}",
           "--set", 'run.notebooks=["05", "06"]',
           # the headroom path: "models" holds the critic's own name (toy-0.3m), so the "variant" is the critic itself
           "--set", "sweeps.headroom_builds=[models]"]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)


def _csv(path: Path) -> list[dict]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_study_notebooks_05_06_smoke(tmp_path):
    t0 = time.time()
    first = _run(tmp_path)
    wall = time.time() - t0
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]
    assert wall <= BUDGET_S, f"05-06 smoke took {wall:.0f} s (budget {BUDGET_S:.0f} s)"
    res = tmp_path / "results"
    figs, tabs = res / "figures" / "smoke", res / "tables" / "smoke"
    for name in ("05_data_scaling", "05_gain_over_base", "05_model_size", "05_rounds", "06_ablations"):
        for ext in ("png", "pdf"):
            assert (figs / f"{name}.{ext}").stat().st_size > 1000, name
    for name in ("05_data_scaling", "05_model_size", "05_rounds", "05_trends", "05_gains", "06_ablations",
                 "06_ablation_gains", "06_ablation_sizes", "06_paper_comparison", "05_preregistered_claims",
                 "06_arms_matched", "06_natural_vs_injected"):
        assert (tabs / f"{name}.csv").exists() and (tabs / f"{name}.md").exists(), name
    assert not (tabs / "06_preregistered_claims.csv").exists()  # one claims table (05's), not a copy per notebook

    scal = _csv(tabs / "05_data_scaling.csv")
    points = json.loads(next((tmp_path / "artifacts" / "05_scaling").glob("*/points.json")).read_text())
    measured = {(p["arm"], p["x"]) for p in points if p["study"] == "data_size" and p["metrics"]}
    for mode in SMOKE.sweeps.critic_modes:
        assert (mode, 0) in measured
        for x in SMOKE.sweeps.data_sizes:
            if (mode, x) not in measured:
                continue
            cell = [r for r in scal if r["arm"] == mode and float(r["x"]) == x]
            assert {r["metric"] for r in cell} >= {"cc_mean", "cc_acc_wrong", "cc_acc_mix", "cc_acc_own",
                                                    "ei_f1_strict", "ei_f1_original"}, (mode, x)
    base = [r for r in scal if float(r["x"]) == 0 and r["metric"] == "cc_mean"]
    assert all(float(r["ci_low"]) <= float(r["mean"]) <= float(r["ci_high"]) for r in base)
    assert all(int(r["n_seeds"]) == 1 for r in base)  # the base critic is one evaluation, not one per seed
    # every measured point carries per-item scores (re-scored from its critiques, checked against metrics.json)
    assert all(p["items"] for p in points if p["metrics"])
    abl_points = json.loads(next((tmp_path / "artifacts" / "06_ablations").glob("*/points.json")).read_text())
    # a point is trained exactly when validated examples were available (tiny smoke data: not always)
    for p in points + abl_points:
        assert bool(p["train_stage"]) == (p["n_examples"] > 0) or p["x"] == 0 or p["arm"].startswith("base:")
        if p["train_stage"]:
            assert p["metrics"] and p["sft_steps"] == SMOKE.sweeps.sft_max_steps  # fixed step budget
    assert any(p["train_stage"] for p in abl_points)  # no_validation keeps every parsed critique
    ms = _csv(tabs / "05_model_size.csv")
    assert {r["arm"] for r in ms} >= {f"base:{m}" for m in SMOKE.sweeps.model_sizes}
    rounds = {float(r["x"]) for r in _csv(tabs / "05_rounds.csv")}
    assert 0.0 in rounds
    # every round that had validated data (and so was trained) is in the table; a round whose
    # regenerated critiques all failed validation has nothing to train on and is left out
    for r in range(1, SMOKE.sweeps.rounds + 1):
        pr = [p for p in points if p["study"] == "rounds" and p["x"] == r]
        if pr and all(p["n_examples"] > 0 for p in pr):
            assert float(r) in rounds, r
    abl = {r["variant"] for r in _csv(tabs / "06_ablation_sizes.csv")}
    assert {"baseline", "no_validation", "only_direct_critic", "only_answer", "only_verdict", "easier_first",
            "harder_first", "ratio_0.75", "ratio_0.25"} <= abl
    assert any(a.startswith("easiest_family") for a in abl) and any(a.startswith("single_generator") for a in abl)

    comp = _csv(tabs / "06_paper_comparison.csv")
    assert any(r["claim"] == "SCRIT beats the base critic" and r["metric"] == "cc_mean" for r in comp)
    assert all(r["verdict"].split(" (")[0] in ("reproduced", "not reproduced", "inconclusive", "not measured")
               for r in comp)
    assert all(r["mde"] for r in comp if r["verdict"] != "not measured")
    readme = (res / SMOKE.sweeps.readme).read_text()
    heads = [l for l in readme.splitlines() if l.startswith("## ")]
    assert heads[:2] == ["## Pre-registered claims (study v3)", "## Bottom line"]
    assert "not claimable (one build" in readme  # smoke has one base build: no claim can carry build variance
    assert "### Natural vs injected errors" in readme
    # the claim sets' make-up, from the benchmark's own summary: natural errors only (#24 "Done means")
    # the headroom points (sweeps.headroom_builds) and their table: the variant's base and SCRIT, and the gain difference
    head = _csv(tabs / "06_headroom.csv")
    assert [r["critic"] for r in head] == ["the build's critic", "headroom variant",
                                           "gain difference (build's critic - variant)"], head
    assert {p["arm"] for p in points if p["study"] == "headroom"} == {"base:models", "scrit:models"}
    assert "### SCRIT's gain and the headroom" in readme
    assert "### The benchmark's claim sets" in readme and "**injected items in the claim sets: 0**" in readme
    assert "ei_f1_original" not in {r["metric"] for r in _csv(tabs / "06_paper_comparison.csv")}  # no paper number
    assert "loop, notebook 04" not in readme  # notebook 04 demonstrates the loop; it is not a second claim
    # the diagnosed points (the base critic, SCRIT and bug injection at their top size) carry the injected-error
    # items; SCRIT's is a trained critic, read from its training stage (an upstream of the diagnostic's key)
    diag = [p for p in points if p.get("items_injected")]
    trained_diag = {p["arm"] for p in diag if p["x"]}
    assert "contrastive" in trained_diag and trained_diag <= {"contrastive", "bug_injection"}
    assert any(p["x"] == 0 for p in diag)
    assert all(i.startswith("injected:") for p in diag for i in p["items_injected"]["wrong"]["ids"])
    assert "| SCRIT beats the base critic | CC-Acc, mean of 3 scenarios (%) |" in readme
    # one run, clean notebooks (no progress bars, warnings or machine paths), each ending with its reading
    assert results_check.problems(res) == []
    timing = (res / SMOKE.sweeps.timing).read_text()
    assert "| sweep_train |" in timing  # at least the ablation points were trained
    assert "| sweep_eval |" in timing and "06_ablations" in timing

    t1 = time.time()
    again = _run(tmp_path)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "05_scaling_analysis: cached" in again.stdout and "06_ablations: cached" in again.stdout
    assert time.time() - t1 <= max(0.1 * wall, 30)

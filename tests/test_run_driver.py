"""The run driver: notebook discovery/selection, jupytext conversion, failure reporting."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scrit_utils import driver as run

REPO = Path(__file__).resolve().parents[1]


def test_discover_and_select():
    nbs = run.discover()
    assert {"01", "02", "03", "04"} <= set(nbs)
    nums = ["01", "02", "03", "04"]
    assert run.select(nums, ["03"], None, None) == ["03"]
    assert run.select(nums, ["2,3"], None, None) == ["02", "03"]
    assert run.select(nums, None, "02", None) == ["02", "03", "04"]
    assert run.select(nums, None, "02", "03") == ["02", "03"]
    with pytest.raises(run.RunError, match="--only 07"):
        run.select(nums, ["07"], None, None)


@pytest.mark.parametrize("num", ["00", "01", "02", "03", "04", "05", "06"])
def test_notebooks_convert_with_interactive_default_parameters(num):
    nb = run.to_notebook(run.discover()[num])
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    defaults: dict = {}
    exec(params[0].source, defaults)  # the parameters cell is plain assignments
    assert defaults["write_results"] is False  # interactive runs never overwrite the committed results
    if num == "00":  # builds from the study profile's world; its inputs are the committed ones
        assert defaults["profile"] == "configs/toy.yaml" and defaults["table_stem"] is None
        assert (REPO / defaults["bench_dir"] / "summary.json").exists()
        assert all((REPO / "models" / g).is_dir() for g in defaults["bench_generators"])
    else:  # notebook_env.load picks the study's profile when its stages are cached, else smoke
        assert defaults["profile"] is None and defaults["overrides"] == []
        assert "notebook_env.load(profile, overrides, " in nb.cells[params and nb.cells.index(params[0]) + 1].source
    # the notebook ends with its reading of the result, written by the package from the numbers
    assert "interpretation" in nb.cells[-1].metadata.get("tags", []) and "interpret." in nb.cells[-1].source
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert sum(c.cell_type == "markdown" for c in nb.cells) >= 3  # a narrative, not just code
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


def test_notebook_without_parameters_cell_is_an_error(tmp_path):
    p = tmp_path / "09_x.py"
    p.write_text("# %%\nprint(1)\n")
    with pytest.raises(run.RunError, match="parameters"):
        run.to_notebook(p)


@pytest.mark.slow
def test_failing_notebook_stops_the_run_with_its_error(tmp_path):
    # an unreadable generator model makes notebook 01 fail inside a cell
    cmd = [sys.executable, "-m", "scrit_utils.cli", "run", "--profile", "configs/smoke.yaml",
           "--set", f"run.artifacts_dir={tmp_path / 'a'}", "--set", f"run.results_dir={tmp_path / 'r'}",
           "--set", "models.generators=[{name: nope, path: /nonexistent/model}]"]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert r.returncode != 0
    assert "01_data: FAILED" in r.stdout and "/nonexistent/model" in r.stdout, r.stdout[-3000:]
    assert "02_self_critique" not in r.stdout  # stopped at the first failure
    assert (tmp_path / "r" / "runs" / "smoke" / "01_data.ipynb").exists()


@pytest.mark.slow
def test_bad_profile_key_fails_before_any_notebook(tmp_path):
    r = subprocess.run([sys.executable, "-m", "scrit_utils.cli", "run", "--profile", "configs/smoke.yaml",
                        "--set", "training.lr=1"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "training.lr: unknown key" in r.stderr


def test_a_notebook_about_to_run_removes_only_its_own_old_outputs(tmp_path):
    from scrit_utils.core import config

    cfg = config.load("configs/smoke.yaml", [f"run.results_dir={tmp_path}"])
    figs, tabs = tmp_path / "figures" / "smoke", tmp_path / "tables" / "smoke"
    for d in (figs, tabs):
        d.mkdir(parents=True)
    for p in (figs / "05_old_figure.png", tabs / "05_trends.csv", figs / "04_training_loss.png", tmp_path / "tables" / "base_models.csv"):
        p.write_text("x")
    gone = run.remove_outputs(cfg, "05")
    assert sorted(p.name for p in gone) == ["05_old_figure.png", "05_trends.csv"]
    assert (figs / "04_training_loss.png").exists() and (tmp_path / "tables" / "base_models.csv").exists()


def test_timing_report_totals_this_runs_notebooks_and_the_venv(tmp_path, monkeypatch):
    from scrit_utils.core import config
    from scrit_utils.study import readme as study_readme

    cfg = config.load("configs/smoke.yaml", [f"run.results_dir={tmp_path}"])
    venv = tmp_path / "install_seconds"
    monkeypatch.setattr(study_readme, "VENV_TIMING", str(venv))
    monkeypatch.setenv(run.RUN_SHA_ENV, "a" * 40)
    run.write_record(cfg, "01_data", "a" * 40, 60.0, "ran")
    run.write_record(cfg, "02_self_critique", "b" * 40, 999.0, "ran")  # an older run's entry: not in the total
    path = study_readme.write_timing(cfg, [])
    text = path.read_text()
    assert "run `aaaaaaaaaaaa`: 1 of 2, 60 s (1.0 min)" in text and "venv" not in text
    # the notebook that wrote the report finishes after writing it; the driver then refreshes the section
    run.write_record(cfg, "06_ablations", "a" * 40, 120.0, "ran")
    venv.write_text("300 2026-12-03T19:00:00Z\n")
    study_readme.refresh_notebook_section(cfg)
    again = path.read_text()
    assert again.startswith(text.split(study_readme.NOTEBOOK_SECTION)[0])  # stage tables kept as written
    assert "06_ablations" in again and "2 of 3, 180 s (3.0 min)" in again
    assert "took 300 s; with it, 8.0 min" in again and again.count(study_readme.NOTEBOOK_SECTION) == 1

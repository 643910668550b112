"""Notebooks opened outside `scrit run` (issue #27): `profile = None` reads the study's cache when this
notebook's stages are in it and otherwise runs the smoke profile, saying which and why; results go to
results/interactive/ unless asked; papermill runs the .py notebooks through a jupytext pipe; and the
driver's setup cell comes after the title."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from scrit_utils import driver
from scrit_utils.core import notebook_env
from scrit_utils.core.config import REPO_ROOT
from scrit_utils.core.provenance import RUN_SHA_ENV
from scrit_utils.pipeline import data


@pytest.fixture
def interactive(monkeypatch):
    monkeypatch.delenv(RUN_SHA_ENV, raising=False)


def _study_profile(tmp_path: Path, monkeypatch) -> Path:
    """The study profile with its cache in tmp_path (empty until a test finishes a stage there)."""
    p = tmp_path / "study.yaml"
    p.write_text(f"include: {REPO_ROOT / notebook_env.STUDY_PROFILE}\nrun:\n  artifacts_dir: {tmp_path / 'artifacts'}\n")
    monkeypatch.setattr(notebook_env, "STUDY_PROFILE", str(p))
    return p


def test_no_study_cache_picks_the_smoke_profile_and_says_why(tmp_path, monkeypatch, interactive):
    _study_profile(tmp_path, monkeypatch)
    said = []
    cfg = notebook_env.load(None, [], data.stage, say=said.append)
    assert cfg.run.name == "smoke" and cfg.run.results_dir == notebook_env.INTERACTIVE_RESULTS
    assert said[0].startswith("profile = None -> configs/smoke.yaml") and "01_data/" in said[0]
    assert "is not in" in said[0] and str(tmp_path / "artifacts") in said[0]
    assert said[1].startswith("results go to results/interactive/")
    assert said[2].startswith("profile smoke: stage 01_data/")


def test_a_cached_study_stage_is_read(tmp_path, monkeypatch, interactive):
    study = _study_profile(tmp_path, monkeypatch)
    from scrit_utils.core import config

    st = data.stage(config.load(study))
    st.finish(counts={})  # what a finished `make study` leaves: the stage's manifest in the cache
    said = []
    cfg = notebook_env.load(None, [], data.stage, say=said.append)
    assert cfg.run.name == "toy-v3" and cfg.run.results_dir == notebook_env.INTERACTIVE_RESULTS  # make study's
    assert said[0].startswith(f"profile = None -> {study}: the study's finished stages are in the cache")
    assert said[-1] == f"profile toy-v3: stage 01_data/{st.hash}: read from the cache (finished earlier)"


def test_write_results_and_an_explicit_results_dir_are_kept(interactive):
    said = []
    assert notebook_env.load("configs/smoke.yaml", [], write_results=True, say=said.append).run.results_dir == "results"
    cfg = notebook_env.load("configs/smoke.yaml", ["run.results_dir=/tmp/elsewhere"], say=said.append)
    assert cfg.run.results_dir == "/tmp/elsewhere" and said == []


def test_under_scrit_run_the_drivers_parameters_are_used_as_given(monkeypatch):
    monkeypatch.setenv(RUN_SHA_ENV, "a" * 40)
    said = []
    cfg = notebook_env.load("configs/smoke.yaml", ["training.max_steps=2"], data.stage, say=said.append)
    assert cfg.run.results_dir == "results" and cfg.training.max_steps == 2
    assert len(said) == 1 and said[0].startswith("profile smoke: stage 01_data/")
    assert notebook_env.results_root(False) == "results"
    with pytest.raises(ValueError, match="scrit run passes a profile"):
        notebook_env.load(None, [], data.stage)


def test_status_line_stays_true_after_the_stage_finished(tmp_path):
    from scrit_utils.core import config

    cfg = config.load("configs/smoke.yaml", [f"run.artifacts_dir={tmp_path}"])
    st = data.stage(cfg)
    assert notebook_env.stage_status(cfg, st).endswith(": computed now (not in the cache)")
    st.finish(counts={})
    assert notebook_env.stage_status(cfg, st).endswith(": read from the cache (finished earlier)")


@pytest.mark.parametrize("num", ["00", "01", "02", "03", "04", "05", "06"])
def test_setup_cell_comes_after_the_title_and_before_the_code(num):
    nb = driver.with_setup(driver.to_notebook(driver.discover()[num]))
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith(f"# {num}")
    assert driver.SETUP_TAG in nb.cells[1].metadata["tags"]
    assert "parameters" in nb.cells[2].metadata.get("tags", [])
    assert driver.TEARDOWN_TAG in nb.cells[-1].metadata["tags"]  # stops worker processes; dropped from the saved copy


def _tree_digest(root: Path, skip: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.is_relative_to(skip)}


@pytest.mark.slow
def test_fresh_clone_runs_notebook_01_with_the_interactive_default(tmp_path):
    """A copy of what a clone of this tree holds (tracked and not-ignored files: no artifacts/, no
    results/interactive/), notebook 01 run as notebooks/README.md says, through jupytext and papermill:
    it picks the smoke profile, writes to results/interactive/ and leaves the committed results alone."""
    clone = tmp_path / "clone"
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO_ROOT,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for f in filter(None, files):
        src = REPO_ROOT / f
        if src.is_file():
            (clone / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, clone / f)
    assert not (clone / "artifacts").exists()
    before = _tree_digest(clone / "results", clone / "results" / "interactive")
    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if k != RUN_SHA_ENV}
    env.update(PYTHONPATH=str(clone), OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")  # the copy's package
    out = tmp_path / "01_data.ipynb"
    cmd = (f"{bin_dir / 'jupytext'} --to ipynb --set-kernel - notebooks/01_data.py -o - | "
           f"{bin_dir / 'papermill'} - {out}")
    r = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=clone, env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    nb = nbformat.read(str(out), as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "profile = None -> configs/smoke.yaml" in text and "results go to results/interactive/" in text
    assert "profile smoke: stage 01_data/" in text
    assert (clone / "artifacts" / "01_data").is_dir()  # the copy's package ran, with the copy as its root
    assert (clone / "results" / "interactive" / "figures" / "smoke" / "01_solutions.png").exists()
    assert _tree_digest(clone / "results", clone / "results" / "interactive") == before

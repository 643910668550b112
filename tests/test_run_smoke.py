"""End-to-end: `scrit run --profile configs/smoke.yaml` (notebooks 01-04 through papermill),
a second run that skips every stage, and a SIGKILL mid-generation followed by a resume."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scrit_utils.core import config
from scrit_utils.toy_models.build import is_complete
from scrit_utils.pipeline import data, self_critic, training, validation
from scrit_utils.core.records import read_jsonl

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
# The budget for the smoke study on 2 cores; raise it only on a slower machine.
BUDGET_S = float(os.environ.get("SCRIT_SMOKE_BUDGET_S", "180"))
SMOKE = config.load("configs/smoke.yaml")
MODELS = [SMOKE.models.critic, *(g.path for g in SMOKE.models.generators)]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not all(is_complete(config.resolve_path(m)) for m in MODELS),
        reason=f"committed toy base models {MODELS} not built yet (scrit build-base-models)",
    ),
]


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", PYTHONUNBUFFERED="1")
    return env


def _run_study(tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [PY, "-m", "scrit_utils.cli", "run", "--profile", "configs/smoke.yaml",  # == `scrit run`
           "--set", f"run.artifacts_dir={tmp / 'artifacts'}", "--set", f"run.results_dir={tmp / 'results'}", *extra]
    return subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=900)


def _cfg(tmp: Path) -> config.StudyConfig:
    return config.load("configs/smoke.yaml", [f"run.artifacts_dir={tmp / 'artifacts'}", f"run.results_dir={tmp / 'results'}"])


def _all_stages(cfg):
    return [*data.stages(cfg), *self_critic.stages(cfg), *validation.stages(cfg), *training.stages(cfg)]


def test_smoke_study_end_to_end_then_cached(tmp_path):
    t0 = time.time()
    first = _run_study(tmp_path)
    wall = time.time() - t0
    assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]
    assert wall <= BUDGET_S, f"smoke study took {wall:.0f} s (budget {BUDGET_S:.0f} s)"
    cfg = _cfg(tmp_path)
    stages = _all_stages(cfg)
    assert all(st.done for st in stages), [st.name for st in stages if not st.done]
    for nb in ("01_data", "02_self_critique", "03_self_validation", "04_training"):
        assert (tmp_path / "results" / "runs" / "smoke" / f"{nb}.ipynb").exists()
        assert f"{nb}: done" in first.stdout
    # what each stage produced
    counts = {st.name: st.manifest["counts"] for st in stages}
    assert counts["01_data"]["solutions_correct"] > 0 and counts["01_data"]["solutions_incorrect"] > 0
    assert counts["02_self_critique"]["critiques"] == counts["02_self_critique"]["pairs"] > 0
    assert counts["03_self_validation"]["sft_examples"] > 0
    assert counts["04_train"]["steps"] == cfg.training.max_steps
    trained = training.trained_model_dir(training.train_stage(cfg))
    assert (trained / "model.safetensors").exists() and (trained / "config.json").exists()
    metrics = json.loads((training.eval_trained_stage(cfg).dir / "metrics.json").read_text())
    assert {"base", "trained", "provenance"} <= set(metrics)
    assert metrics["provenance"]["profile"] == "smoke" and metrics["provenance"]["git_sha"]
    figs = tmp_path / "results" / "figures" / "smoke"
    assert (figs / "01_solutions.png").exists() and (figs / "03_self_validation.pdf").exists()
    sft = validation.load_sft(validation.stage(cfg))
    assert all("Reference" not in ex.completion for ex in sft)
    # gated check (i) over the same stage-02 critiques (cached): the same critiques pass, for fewer generations
    on = ["validation.answer_matches_reference=true", "validation.verdict_matches_label=true", 'ablations.variants=["baseline"]']
    runs = {}
    for scope in ("all", "gated"):
        c = config.load("configs/smoke.yaml", [f"run.artifacts_dir={tmp_path / 'artifacts'}",
                                               f"run.results_dir={tmp_path / 'results'}", *on,
                                               f"validation.direct_check_scope={scope}"])
        st03 = validation.run(c, tables=False).stage
        runs[scope] = (st03.manifest["counts"], [r["passed"] for r in read_jsonl(st03.dir / "validation.jsonl")])
    assert runs["gated"][1] == runs["all"][1]
    assert runs["gated"][0]["direct_checks_run"] < runs["all"][0]["direct_checks_run"]

    mtimes = {st.name: st.manifest_path.stat().st_mtime_ns for st in stages}
    second = _run_study(tmp_path)
    assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-4000:]
    assert "(0 ran, 4 cached)" in second.stdout, second.stdout
    for nb in ("01_data", "02_self_critique", "03_self_validation", "04_training"):
        assert f"{nb}: cached" in second.stdout
    assert {st.name: st.manifest_path.stat().st_mtime_ns for st in _all_stages(cfg)} == mtimes


_STAGE01 = """
import sys
from scrit_utils.core import config
from scrit_utils.pipeline import data
cfg = config.load("configs/smoke.yaml", sys.argv[1:])
data.run(cfg, tables=False)
"""


def test_kill_mid_generation_then_resume(tmp_path):
    killed_dir, clean_dir = tmp_path / "killed", tmp_path / "clean"
    ov = lambda d: [f"run.artifacts_dir={d}", f"run.results_dir={d}"]  # noqa: E731
    cfg = config.load("configs/smoke.yaml", ov(killed_dir))
    st = data.stage(cfg)
    partial = st.dir / "all_solutions.jsonl.partial"
    sampled = cfg.world.arith.n_problems * cfg.generation.solve.n * len(cfg.models.generators)
    assert sampled >= 4 * cfg.generation.batch_size  # several chunks, so the kill lands mid-stage
    expected = sampled + (2 * cfg.world.arith.n_problems if cfg.world.arith.world_solutions else 0)

    proc = subprocess.Popen([PY, "-c", _STAGE01, *ov(killed_dir)], cwd=REPO, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    n_at_kill = 0
    while time.time() < deadline:
        if partial.exists():
            n_at_kill = sum(1 for _ in partial.open("rb"))
            if n_at_kill >= 1:
                break
        if proc.poll() is not None:
            pytest.fail(f"stage finished before it could be killed: {proc.stderr.read()[-2000:]}")
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stderr.close()
    assert 0 < n_at_kill < sampled
    assert not st.done and partial.exists() and not (st.dir / "all_solutions.jsonl").exists()

    # resume in a fresh process, and an uninterrupted run elsewhere for comparison
    for d in (killed_dir, clean_dir):
        r = subprocess.run([PY, "-c", _STAGE01, *ov(d)], cwd=REPO, env=_env(), capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
    resumed = read_jsonl(st.dir / "all_solutions.jsonl")
    clean = read_jsonl(data.stage(config.load("configs/smoke.yaml", ov(clean_dir))).dir / "all_solutions.jsonl")
    ids = [r["id"] for r in resumed]
    assert len(ids) == len(set(ids)) == expected  # nothing lost, nothing duplicated
    assert {r["id"]: r for r in resumed} == {r["id"]: r for r in clean}  # same text as an uninterrupted run
    assert st.done and json.loads(st.manifest_path.read_text())["counts"]["solutions_all"] == expected

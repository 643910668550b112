"""Pilot: run the whole base-model recipe on one size and measure the model at the end of each phase.

Trains ``--size`` with the profile's recipe (``base_models.recipe`` if the profile sets one, else
:data:`scrit_utils.toy_models.build.RECIPE`) into a scratch dir, stopping at every phase boundary to
measure it on a small pilot benchmark of the profile's world on the dev split (correct and wrong solutions
sampled from ``--bench-profile``'s ``world.arith.benchmark_generators``: natural errors, as the study's
benchmarks since issue #24; the injected-error diagnostic is written beside them): greedy and sampled solve accuracy,
fluke rate, CC-Acc and checked-value accuracy without / with the reference, own step accuracy and
headroom (:func:`scrit_utils.worlds.base_eval.evaluate_base_model`), plus one critique per mode to
read. Used to choose the v2 recipe (models/README.md). Usage::

    .venv/bin/python scripts/pilot_recipe.py --profile configs/base_models/v2_world.yaml \\
        --size toy-150k --steps-scale 0.5 --out /tmp/pilot_recipe
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
from pathlib import Path

import torch

from scrit_utils.core import config
from scrit_utils.toy_models import build as bm
from scrit_utils.toy_models.cli import config_from_profile
from scrit_utils.generation import SamplingParams
from scrit_utils.pipeline import benchmark_eval as critic_eval
from scrit_utils.worlds import arith_bench
from scrit_utils.toy_models import base_eval

COLUMNS = ("solve_acc", "sampled_solve", "both_labels", "fluke_rate", "cc_mix_noref", "cc_mix_ref",
           "checked_acc_error_noref", "checked_acc_error_ref", "own_step_acc_error", "headroom")


def _snapshot(cfg: bm.BuildConfig, size: str, dest: Path) -> Path:
    """The weights of the last checkpoint as a loadable model dir."""
    run = bm._Run(cfg, size)
    run.model.save_pretrained(str(dest), safe_serialization=True)
    run.tok.save_pretrained(str(dest))
    return dest


def _show_critiques(model_dir: Path, bench: Path) -> None:
    items = arith_bench.critique_items(bench)["mix_data"]
    be = arith_bench._backend(model_dir)
    for mode in ("direct", "contrastive"):
        cfg = critic_eval.CriticEvalConfig(mode=mode, variant="compact", progress=False,
                                           params=SamplingParams(max_new_tokens=arith_bench.CRITIQUE_MAX_NEW))
        wrong = [it for it in items if "\\boxed{" + str(it["problem"].answer) + "}" not in it["solution"]][:1]
        row = critic_eval.run_critiques(be, base_eval._eval_items("mix_data", wrong), cfg, scenario="pilot")[0]
        print(f"--- {mode} critique of a wrong solution:\n{wrong[0]['solution']}\n>>>\n{row['text']}\n", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", required=True)
    ap.add_argument("--size", required=True)
    ap.add_argument("--steps-scale", type=float, default=1.0)
    ap.add_argument("--per-class", type=int, default=40, help="pilot benchmark items per class")
    ap.add_argument("--bench-profile", default="configs/toy.yaml",
                    help="profile whose world.arith.benchmark_generators sample the pilot benchmark's solutions")
    ap.add_argument("--n-solve", type=int, default=100)
    ap.add_argument("--out", default="/tmp/pilot_recipe")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="resume a previous pilot in --out instead of starting over")
    ap.add_argument("--init-from", default=None, help="start from this model dir's weights at the end of phase 1 "
                    "(a previous pilot's <size>-<phase1> snapshot with the same phase 1): skips phase 1")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    d = config_from_profile(a.profile)
    d.update(out_dir=a.out, sizes=[a.size], jobs=1, threads=a.threads, steps_scale=a.steps_scale)
    cfg = bm.config_from_dict(d)
    out = Path(a.out)
    if not a.keep:
        for p in (out / a.size, out / f"{a.size}.ckpt", out / "bench"):
            shutil.rmtree(p, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    if not (out / bm.TOKENIZER_DIR).exists():
        shutil.copytree(Path("models") / bm.TOKENIZER_DIR, out / bm.TOKENIZER_DIR)  # the committed tokenizer
    bench = out / "bench"
    if not (bench / "summary.json").exists():
        gens = config.load(a.bench_profile).world.arith.benchmark_generators
        arith_bench.write_toy_benchmarks(bench, cfg.seed, a.per_class, generators=gens, config=cfg.world, split="dev")
    if a.init_from:  # a checkpoint at the end of phase 1, so the loop starts phase 2 with a fresh AdamW
        from safetensors.torch import load_file

        run = bm._Run(cfg, a.size)
        run.model.load_state_dict(load_file(str(Path(a.init_from) / "model.safetensors")), strict=False)
        run.step = run.bounds[0][1]
        run.save_ckpt(torch.optim.AdamW(run.model.parameters()), 0.0)
    run = bm._Run(cfg, a.size)
    print(json.dumps({"size": a.size, "steps": run.total, "phases": run.bounds}), flush=True)
    for phase, (_, hi) in zip(cfg.recipe, run.bounds):
        if run.step >= hi:
            continue
        last = hi == run.total
        done = bm.train_one(dataclasses.replace(cfg, ckpt_every=hi if not last else cfg.ckpt_every), a.size,
                            progress=False, stop_after=None if last else hi)
        model_dir = done if done is not None else _snapshot(cfg, a.size, out / f"{a.size}-{phase.name}")
        log = json.loads((model_dir / "train_log.json").read_text()) if done else bm._Run(cfg, a.size).log
        losses = {k: v for k, v in log[-1].items() if k.startswith("loss_") and v is not None}
        r = base_eval.evaluate_base_model(model_dir, bench, seed=cfg.seed, n_solve=a.n_solve, config=cfg.world,
                                            verdict_rules=(None,))
        print(json.dumps({"phase": phase.name, "step": hi, **losses, **{c: round(r[c], 1) for c in COLUMNS}}),
              flush=True)
        _show_critiques(model_dir, bench)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

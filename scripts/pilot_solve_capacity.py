"""Pilot: how many solve steps a base size needs before it solves the world (greedy accuracy curve).

Trains one size on solve batches only (the recipe's first phase, its lr and warm-up, run for
``--steps``) into a scratch dir and prints greedy solve accuracy on held-out ``benchmark``-split
problems every ``--every`` steps. Used to size the v2 recipe's compute-scaled step count
(models/README.md). Usage::

    .venv/bin/python scripts/pilot_solve_capacity.py --profile configs/base_models/v2_world.yaml \\
        --size toy-66k --steps 4000 --every 1000 --out /tmp/pilot
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
from pathlib import Path

import torch

from scrit_utils.toy_models import build as bm
from scrit_utils.toy_models.cli import config_from_profile
from scrit_utils.generation import GenerationRequest, SamplingParams
from scrit_utils.critique.grading import is_equivalent
from scrit_utils.critique.parsing import extract_last_boxed
from scrit_utils.worlds import arith, arith_bench


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", required=True)
    ap.add_argument("--size", required=True)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--every", type=int, default=1000)
    ap.add_argument("--n-solve", type=int, default=200)
    ap.add_argument("--out", default="/tmp/pilot_solve")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    d = config_from_profile(a.profile)
    d.update(out_dir=a.out, sizes=[a.size], jobs=1, threads=a.threads)
    base = bm.config_from_dict(d)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if not (out / bm.TOKENIZER_DIR).exists():
        shutil.copytree(Path("models") / bm.TOKENIZER_DIR, out / bm.TOKENIZER_DIR)  # the committed tokenizer
    solve = dataclasses.replace(base.recipe[0], share=1.0)
    probs = arith.generate_problems(base.seed, a.n_solve, "benchmark", base.world, stream="toy-eval-solve")
    # one run of --steps (its own warm-up + cosine); a crash-style stop at each checkpoint is evaluated
    cfg = dataclasses.replace(base, recipe=(solve,), steps_base=a.steps, steps_exponent=0.0, ckpt_every=a.every,
                              n_seed_contrastive=0, n_seed_copy=0, n_seed_direct=0)
    shutil.rmtree(out / a.size, ignore_errors=True)
    shutil.rmtree(out / f"{a.size}.ckpt", ignore_errors=True)
    for upto in range(a.every, a.steps + 1, a.every):
        done = bm.train_one(cfg, a.size, progress=False, stop_after=upto if upto < a.steps else None)
        model_dir = out / a.size
        if done is None:  # stopped at a checkpoint: weights from it, into a scratch model dir
            run = bm._Run(cfg, a.size)
            model_dir = out / f"{a.size}-at-{upto}"
            run.model.save_pretrained(str(model_dir), safe_serialization=True)
            run.tok.save_pretrained(str(model_dir))
            log = run.log
        else:
            log = json.loads((model_dir / "train_log.json").read_text())
        be = arith_bench._backend(model_dir)
        texts = be.generate([GenerationRequest(id=p.id, messages=arith.solve_messages(p)) for p in probs],
                            SamplingParams(max_new_tokens=arith_bench.SOLVE_MAX_NEW), progress=False)
        acc = 100 * sum(is_equivalent(extract_last_boxed(t), p.answer) for t, p in zip(texts, probs)) / len(probs)
        print(json.dumps({"size": a.size, "steps": upto, "solve_loss": log[-1]["loss_solve"], "greedy_solve": acc}),
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

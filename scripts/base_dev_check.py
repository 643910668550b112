#!/usr/bin/env python
"""Are freshly built base models competent? A quick check on the dev split only (never the benchmark split).

For each model dir (``--models DIR --sizes ...``), on ``--n`` dev-split problems of the profile's world:

- ``solve``: greedy solve accuracy (the final boxed answer);
- ``inject_ok``: the bug-injection instruction (the v3 bases learn it, issue #24 item 3): the share of correct
  solutions the model rewrites between the injection markers with a different final answer;
- ``cc_ref`` / ``cc_noref``: critique-correction accuracy with / without the reference on a balanced set (the
  reference solution and one injected-error solution per problem; injected errors are the quick dev stand-in
  for natural ones), and ``parsed``: the share of those critiques the parser reads.

These are build checks, not study numbers: they decide whether a build is usable, on problems no claim reads.
Usage (about a minute per model on 2 cores)::

    .venv/bin/python scripts/base_dev_check.py --models models/v3/seed0 --sizes toy-66k toy-150k toy-409k toy-709k
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def check(model_dir: Path, n: int, world, seed: int) -> dict:
    from scrit_utils.critique import prompts
    from scrit_utils.critique.grading import is_equivalent
    from scrit_utils.critique.parsing import extract_last_boxed, parse_critique
    from scrit_utils.generation import GenerationRequest, SamplingParams
    from scrit_utils.generation.transformers_backend import TransformersBackend
    from scrit_utils.pipeline import benchmark_eval as critic_eval
    from scrit_utils.pipeline.self_critic import extract_injected
    from scrit_utils.worlds import arith

    be = TransformersBackend(str(model_dir), batch_size=128, device="cpu")
    probs = arith.generate_problems(seed, n, "dev", world, stream="base-dev-check")
    greedy = SamplingParams(max_new_tokens=160)
    texts = be.generate([GenerationRequest(id=p.id, messages=arith.solve_messages(p)) for p in probs], greedy,
                        progress=False)
    solve = sum(is_equivalent(extract_last_boxed(t), p.answer) for t, p in zip(texts, probs)) / n
    refs = [arith.reference_solution(p) for p in probs]
    inj_req = [GenerationRequest(id=p.id, messages=prompts.bug_injection_messages(p.question, r.text, "compact"))
               for p, r in zip(probs, refs)]
    inj = be.generate(inj_req, SamplingParams(max_new_tokens=200), progress=False)
    inject_ok = 0
    for t, p in zip(inj, probs):
        body = extract_injected(t)
        inject_ok += bool(body) and not is_equivalent(extract_last_boxed(body), p.answer)
    rng = random.Random(f"{seed}/base-dev-check")
    items = []
    for p, r in zip(probs, refs):
        for sol, ok in ((r, True), (arith.inject_error(p, rng), False)):
            items.append({"id": f"{sol.id}/{ok}", "task": "arith", "question": p.question, "gt": p.answer,
                          "solution": sol.text, "original_correct": ok, "reference_solution": r.text})
    out = {"model": str(model_dir), "n": n, "solve": round(100 * solve, 1), "inject_ok": round(100 * inject_ok / n, 1)}
    for mode, tag in (("contrastive", "ref"), ("direct", "noref")):
        cfg = critic_eval.CriticEvalConfig(mode=mode, variant="compact", params=SamplingParams(max_new_tokens=320),
                                           seed=seed, progress=False)
        rows = critic_eval.run_critiques(be, items, cfg, scenario="mix")
        out[f"cc_{tag}"] = round(100 * sum(r["corrected_correct"] for r in rows) / len(rows), 1)
        out[f"parsed_{tag}"] = round(100 * sum(parse_critique(r["text"]).verdict is not None for r in rows)
                                     / len(rows), 1)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", required=True, help="folder of the build (models/v3/seed0)")
    ap.add_argument("--sizes", nargs="+", required=True)
    ap.add_argument("--profile", default=str(REPO / "configs" / "toy.yaml"), help="the world (world.arith)")
    ap.add_argument("--n", type=int, default=100, help="dev problems")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    import torch

    from scrit_utils.core import config

    torch.set_num_threads(a.threads)
    world = config.load(a.profile).world.arith
    for s in a.sizes:
        print(json.dumps(check(Path(a.models) / s, a.n, world, a.seed)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

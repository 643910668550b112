#!/usr/bin/env python
"""One study point's evaluation, timed three ways side by side in one run (issue #28: the evaluations' generation).

A sweep point's evaluation (:func:`scrit_utils.pipeline.training.evaluate`, what ``sweep_eval`` and stage 04 run)
critiques the profile's items in each scenario (deliberately incorrect, balanced, the base critic's own solutions,
ProcessBench-style): a few hundred greedy critiques per set. The three paths, on the same items:

- **static**: the core's settings (``make study``): static batches in one process, set after set;
- **speed keys, set by set**: the profile's ``run.generation_workers`` and ``generation.max_num_seqs``, each set
  its own call (the code before ``training.prefetch_critiques``);
- **speed keys, one queue**: the same keys, every set's critiques in one queue (``prefetch_critiques``).

The items are the profile's: its benchmark and base evaluation are built once with static batches in a scratch
artifacts folder (``--artifacts`` keeps them between runs; a few minutes the first time), and the critic evaluated is
the profile's (standing in for a trained point). Prints seconds, critiques/s, the ratios, and how many critiques
differ from the static path's (greedy: none expected beyond float rounding).

Usage (alone on the machine; about 5 minutes, 8 more the first time)::

    .venv/bin/python scripts/bench_eval.py --artifacts /tmp/bench_eval_artifacts
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def critiques(stage_dir: Path) -> dict:
    return {(f.name, r["id"]): r["text"] for f in sorted(stage_dir.glob("critiques_*.jsonl"))
            for r in map(json.loads, f.read_text().splitlines()) if r}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default=str(REPO / "configs" / "toy-v3-full.yaml"),
                    help="the speed keys' profile (default: toy-v3-full, make study's world and critic plus the keys)")
    ap.add_argument("--artifacts", default=None, help="scratch artifacts folder for the items (default: a temporary one)")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="profile overrides for every path")
    a = ap.parse_args(argv)

    from scrit_utils.core import artifacts, config
    from scrit_utils.generation.process_pool import shutdown_pools
    from scrit_utils.pipeline import common, training

    tmp = tempfile.TemporaryDirectory(prefix="bench_eval_")
    arts = a.artifacts or tmp.name
    keys = config.load(a.profile, [*a.set, f"run.artifacts_dir={arts}"])
    static = config.load(a.profile, [*a.set, f"run.artifacts_dir={arts}", "run.generation_workers=1",
                                     "generation.max_num_seqs=null"])
    if (keys.run.generation_workers, keys.generation.max_num_seqs) == (1, None):
        raise SystemExit(f"{a.profile} sets neither run.generation_workers nor generation.max_num_seqs")
    print(f"critic {keys.models.critic}; speed keys: run.generation_workers={keys.run.generation_workers}, "
          f"generation.max_num_seqs={keys.generation.max_num_seqs}; items from the static base evaluation in {arts}")
    common.setup_torch(static)
    base_st = training.eval_base_stage(static)
    training.run_eval_stage(static, base_st, static.models.critic, "base")  # cached after the first run
    common.release_backends()

    paths = {"static (make study)": (static, True), "speed keys, set by set": (keys, False),
             "speed keys, one queue": (keys, True)}
    prefetch = training.prefetch_critiques
    res = {}
    with tempfile.TemporaryDirectory(prefix="bench_eval_points_") as root:
        for name, (cfg, queue) in paths.items():
            training.prefetch_critiques = prefetch if queue else (lambda *args, **kw: None)
            common.setup_torch(cfg)
            st = artifacts.stage(f"bench_{len(res)}", cfg, ("run.seed",), "bench", root=Path(root))
            if cfg is keys:  # warm-up, untimed: each worker loads the critic (the static path loads it in its call)
                common.make_backend(cfg, cfg.models.critic).generate_many([[]], common.sampling(cfg.generation.evaluation))
            t = time.perf_counter()
            training.evaluate(cfg, st, cfg.models.critic, "trained", base_st=base_st)
            secs = time.perf_counter() - t
            res[name] = (secs, critiques(st.dir))
            common.release_backends()
    training.prefetch_critiques = prefetch
    shutdown_pools()
    ref_secs, ref = res["static (make study)"]
    for name, (secs, texts) in res.items():
        diff = sum(texts.get(k) != v for k, v in ref.items())
        print(f"{name:<24}: {secs:7.1f} s, {len(texts) / secs:6.1f} critiques/s = {ref_secs / secs:4.2f}x static; "
              f"{diff} of {len(ref)} critiques differ from static")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())

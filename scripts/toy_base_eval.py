"""Write the toy benchmarks (once) and measure base models -> results/tables/base_models.{csv,md}.

Usage::

    .venv/bin/python scripts/toy_base_eval.py --profile configs/base_models/v2_world.yaml --models models \
        --bench data/toy_benchmarks_v2 --generators toy-66k toy-150k --sizes toy-66k toy-150k toy-409k toy-709k

``--profile`` gives the seed and the world (``world.arith``); without it the world is ``ArithConfig()``'s.

The same steps run inside notebooks/00_base_models.py; this script is for running them in the
background while other work shares the CPU.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from scrit_utils.worlds import arith_bench
from scrit_utils.toy_models import base_eval


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default=None, help="profile YAML: run.seed and world.arith (as the builder reads them)")
    ap.add_argument("--models", default="models")
    ap.add_argument("--bench", default="data/toy_benchmarks")
    ap.add_argument("--generators", nargs="*", default=["toy-66k", "toy-150k"])
    ap.add_argument("--sizes", nargs="+", required=True)
    ap.add_argument("--per-class", type=int, default=100)
    ap.add_argument("--n-solve", type=int, default=300)
    ap.add_argument("--sample-temperature", type=float, default=1.0, help="temperature of the sampled-solve columns")
    ap.add_argument("--seed", type=int, default=None, help="default: the profile's run.seed, else 0")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--table", default="results/tables/base_models")
    ap.add_argument("--bench-only", action="store_true")
    ap.add_argument("--wait", action="store_true", help="wait for each model dir to be complete (poll)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    bench = Path(a.bench)
    from scrit_utils.toy_models import build as bm
    from scrit_utils.toy_models.cli import config_from_profile

    build = bm.config_from_dict(config_from_profile(a.profile))
    world, seed = build.world, build.seed if a.seed is None else a.seed

    def wait_for(names):
        from scrit_utils.toy_models.build import is_complete

        while a.wait and not all(is_complete(Path(a.models) / n) for n in names):
            time.sleep(20)

    wait_for(a.generators)
    if not (bench / "summary.json").exists():
        t = time.time()
        gens = {g: str(Path(a.models) / g) for g in a.generators}
        s = arith_bench.write_toy_benchmarks(bench, seed, a.per_class, generators=gens, config=world)
        print(f"benchmarks written in {time.time() - t:.0f} s: {json.dumps(s['origins'])}", flush=True)
    if a.bench_only:
        return 0
    rows = []
    for size in a.sizes:
        p = Path(a.models) / size
        wait_for([size])
        r = base_eval.base_model_row(p, bench, seed=seed, n_solve=a.n_solve, config=world,
                                       sample_temperature=a.sample_temperature)
        print(json.dumps(r), flush=True)
        rows.append(r)
        rows.sort(key=lambda x: x["n_params"])
        base_eval.write_base_model_table(rows, a.table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python
"""Generation through the study's resumable path with 1 vs N worker processes, side by side in one run.

The study's critic and settings from the profile (default ``configs/toy-v3-full.yaml``: the v3 critic of build 0,
batches of 128, continuous batching at 512 rows; ``--set`` overrides keys, e.g. ``generation.max_num_seqs=null``), its
prompts (``scripts/bench_generation.py``'s: sampled contrastive and greedy direct critiques), generated through
:func:`scrit_utils.pipeline.common.generate_resumable` as the stages call it, once with ``run.generation_workers:
1`` (one process, the profile's torch threads) and once with ``--workers`` processes (the threads split between
them). Prints critiques/s of each, the ratio, and whether the texts are identical (exit status 1 if not).

Usage (under the shared CPU lock; about 2 minutes)::

    flock /tmp/scrit-heavy.lock .venv/bin/python scripts/bench_workers.py --n 512
    flock /tmp/scrit-heavy.lock .venv/bin/python scripts/bench_workers.py --n 1024 --set generation.max_num_seqs=null
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))  # the sibling benchmark's helpers: import bench_generation


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default=str(REPO / "configs" / "toy-v3-full.yaml"))
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="profile overrides for both runs")
    ap.add_argument("--n", type=int, default=512, help="critiques per mode")
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args(argv)

    from scrit_utils.core import config
    from scrit_utils.core.records import ResumableJsonl
    from scrit_utils.pipeline import common

    import bench_generation as bg
    base = config.load(a.profile, a.set)
    world, _ = bg.study_world(Path(a.profile))
    modes = {"sampled contrastive": (True, common.sampling(base.generation.critique)),
             "greedy direct": (False, common.sampling(base.generation.evaluation))}
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        for label, (contrastive, params) in modes.items():
            reqs = bg.critique_requests(a.n, 0, world, contrastive=contrastive)
            res = {}
            for w in (1, a.workers):
                cfg = config.load(a.profile, [*a.set, f"run.generation_workers={w}"])
                common.setup_torch(cfg)
                be = common.make_backend(cfg, cfg.models.critic, cache=False)
                # warm-up, untimed: every worker loads its model and builds its thread pools
                if w > 1:
                    be.generate_many([reqs[8 * i:8 * i + 8] for i in range(w)], params)
                else:
                    be.generate(reqs[:8], params, progress=False)
                out = ResumableJsonl(Path(tmp) / f"{label}-{w}.jsonl")
                t = time.perf_counter()
                common.generate_resumable(be, out, reqs, item_id=lambda r: r.id, request=lambda r: r,
                                          record=lambda r, x: {"id": r.id, "text": x}, params=params,
                                          chunk_size=cfg.generation.batch_size, desc=f"{label} x{w}")
                res[w] = (time.perf_counter() - t, {r["id"]: r["text"] for r in out.records()})
                if hasattr(be, "shutdown"):
                    be.shutdown()
            (t1, x1), (tn, xn) = res[1], res[a.workers]
            same = x1 == xn
            ok &= same
            print(f"{label}: 1 process {a.n / t1:.1f} critiques/s, {a.workers} processes {a.n / tn:.1f} critiques/s "
                  f"= {t1 / tn:.2f}x; texts identical: {same}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Synthetic study points with per-item scores (the format of scrit_utils.study.sweeps' rows).

Every critic answers the same items; an item is right when the item's fixed difficulty ``u_i`` is
below the critic's accuracy ``p`` (so critics are correlated item by item, as real ones are), and
an SFT seed flips a small random share of its items. ProcessBench items get a label and a predicted
step consistent with the hit. Used by tests/test_study_report.py and for reviewing the figures.
"""
from __future__ import annotations

import numpy as np

SETS = ("wrong", "mix", "own")


def critic_items(p: float, u: dict, rng, flip: float = 0.0) -> dict:
    """Per-item data of one critic with accuracy ``p`` (0..1) on the shared difficulties ``u``."""
    out = {}
    for s in SETS:
        hit = u[s] < p
        if flip:
            hit ^= rng.random(hit.size) < flip
        out[s] = {"ids": [f"{s}/{i}" for i in range(hit.size)], "task": ["arith"] * hit.size, "ok": hit.astype(int).tolist()}
    hit = u["pb"] < p
    if flip:
        hit ^= rng.random(hit.size) < flip
    n = hit.size
    label = [-1 if i % 2 else i % 4 for i in range(n)]
    pred = [(lab + 1 if lab >= 0 else -1) if h else (1 if lab == -1 else -1) for lab, h in zip(label, hit)]
    out["processbench"] = {"ids": [f"pb/{i}" for i in range(n)], "task": ["arith"] * n, "ok": hit.astype(int).tolist(),
                           "label": label, "pred": pred}
    return out


def study(gain: float = 0.03, n: int = 120, seeds=(0, 1, 2), flip: float = 0.03, seed: int = 0,
          data_sizes=(16, 32, 64, 128), ablation_effect: float = -0.10) -> list[dict]:
    """Rows of a whole study: SCRIT's accuracy rises by ``gain`` per data-size level from a base of 0.4."""
    rng = np.random.default_rng(seed)
    u = {s: rng.random(n) for s in (*SETS, "pb")}
    rows = []

    def add(study_, arm, x, s, p, ev, n_ex=0, fl=flip):
        rows.append({"study": study_, "arm": arm, "x": float(x), "seed": s, "n_examples": n_ex, "note": "",
                     "eval_stage": ev, "train_stage": None if n_ex == 0 else ev, "metrics": {},
                     "items": critic_items(p, u, rng, fl if n_ex else 0.0), "train_log": []})

    base = 0.4
    for mode, g in (("contrastive", gain), ("direct", gain / 3), ("bug_injection", -gain)):
        for s in seeds:
            add("data_size", mode, 0, s, base, "base", fl=0.0)
            for lvl, x in enumerate(data_sizes, start=1):
                add("data_size", mode, x, s, base + g * lvl, f"{mode}/{x}/{s}", x)
    for j, params in enumerate((1e5, 2e5, 4e5)):
        for s in seeds:
            add("model_size", f"base:models/toy-{j}", params, s, 0.3 + 0.05 * j, f"mbase{j}", fl=0.0)
            add("model_size", f"scrit:models/toy-{j}", params, s, 0.3 + 0.05 * j + 0.04 * (j + 1), f"m{j}/{s}", 64)
    for s in seeds:
        add("rounds", "scrit", 0, s, base, "base", fl=0.0)
        for r in (1, 2, 3):
            add("rounds", "scrit", r, s, base + 2 * gain + 0.01 * r, f"r{r}/{s}", 64)
        add("ablation", "baseline", 64, s, base + 2 * gain, f"abl/base/{s}", 64)
        add("ablation", "no_validation", 64, s, base + 2 * gain + ablation_effect, f"abl/nv/{s}", 64)
        add("ablation", "ratio_0.25", 64, s, base + 2 * gain, f"abl/r25/{s}", 64)
    return rows

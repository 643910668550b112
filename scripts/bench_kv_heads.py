#!/usr/bin/env python
"""How much faster the study's critic would decode with grouped-query attention (fewer KV heads).

Decode on the 2-core machine is bound by reading the KV cache (``scripts/bench_generation.py``: the attention
reads every cached position of every row each step; the weights are a few MB). Real Qwen2.5 models share one
KV head among several query heads (0.5B: 14 query / 2 KV heads; 7B: 28 / 4); the toy bases use one KV head per
query head. This bench measures, in one process, the study's batched backend on the critic's shape with
``num_key_value_heads`` = 4 (today), 2 and 1: the GQA variants are the trained critic with its key and value
projections mean-pooled over each group of heads (the usual GQA initialisation), so the texts are of realistic
length; they are not trained and are not meant to critique well. By default no row stops at end-of-text, so
every variant makes the same decode steps over the same cache lengths (the variants' texts differ, and a longer
text costs more per token). Printed: new tokens/s per variant and its ratio to the first variant. It decides nothing by itself: a base recipe with fewer KV heads would have to be built
and pass the base-model table before a study used it.

Usage (under the shared CPU lock; about 5 minutes)::

    flock /tmp/scrit-heavy.lock .venv/bin/python scripts/bench_kv_heads.py
    flock /tmp/scrit-heavy.lock .venv/bin/python scripts/bench_kv_heads.py --n 256 --kv-heads 4 1
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


def pooled_copy(src: Path, kv_heads: int, dest: Path) -> Path:
    """``src`` with its key/value projections mean-pooled to ``kv_heads`` heads, saved as safetensors."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(src), dtype=torch.float32)
    cfg = model.config
    heads, d = cfg.num_key_value_heads, cfg.hidden_size // cfg.num_attention_heads
    if heads % kv_heads:
        raise SystemExit(f"{kv_heads} KV heads do not divide the model's {heads}")
    state = model.state_dict()
    g = heads // kv_heads
    for name in list(state):
        if ".k_proj." in name or ".v_proj." in name:
            w = state[name]
            state[name] = w.reshape(kv_heads, g, d, *w.shape[1:]).mean(dim=1).reshape(kv_heads * d, *w.shape[1:])
    cfg.num_key_value_heads = kv_heads
    new = AutoModelForCausalLM.from_config(cfg)
    new.load_state_dict(state)
    new.save_pretrained(str(dest), safe_serialization=True)
    AutoTokenizer.from_pretrained(str(src)).save_pretrained(str(dest))
    if (src / "generation_config.json").exists():
        (dest / "generation_config.json").write_text((src / "generation_config.json").read_text())
    return dest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(REPO / "models" / "toy-409k"), help="the critic whose shape is measured")
    ap.add_argument("--profile", default=str(REPO / "configs" / "toy.yaml"), help="world and generation settings")
    ap.add_argument("--n", type=int, default=256, help="greedy direct critiques per variant")
    ap.add_argument("--kv-heads", type=int, nargs="+", default=[4, 2, 1])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2, help="timed runs per variant; the best is reported")
    ap.add_argument("--stop-at-eos", dest="full_length", action="store_false",
                    help="let rows stop at end-of-text (default: every row makes max_new_tokens, so the variants, whose "
                         "texts differ, do the same work)")
    a = ap.parse_args(argv)

    import torch

    from scrit_utils.generation import SamplingParams
    from scrit_utils.generation.transformers_backend import TransformersBackend

    torch.set_num_threads(a.threads)
    import bench_generation as bg
    world, gen = bg.study_world(Path(a.profile))
    reqs = bg.critique_requests(a.n, 0, world, contrastive=False)
    ev = gen["evaluation"]
    params = SamplingParams(max_new_tokens=ev["max_new_tokens"], temperature=0.0)
    size = gen["batch_size"]
    base = None
    with tempfile.TemporaryDirectory() as tmp:
        for kv in a.kv_heads:
            path = pooled_copy(Path(a.model), kv, Path(tmp) / f"kv{kv}")
            backend = TransformersBackend(str(path), batch_size=size, device="cpu")
            if a.full_length:  # no row stops early: every variant makes the same decode steps over the same lengths
                backend.eos_ids = {-1}
            bg.in_chunks(backend, reqs[:8], params, size)  # warm-up
            best, texts = float("inf"), []
            for _ in range(a.repeats):
                t = time.perf_counter()
                texts = bg.in_chunks(backend, reqs, params, size)
                best = min(best, time.perf_counter() - t)
            new = sum(len(x) for x in backend.tokenizer(texts, add_special_tokens=False)["input_ids"])
            rate = new / best
            base = base or rate
            print(f"kv_heads={kv}: {len(texts)} critiques, {new} new tokens in {best:.1f} s = {rate:,.0f} tokens/s "
                  f"({rate / base:.2f}x the first variant)", flush=True)
            del backend
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python
"""Critique-generation throughput on the study's critic and prompts, and where its limit is.

One run, one process, one loaded model (default ``models/v3/seed0/toy-409k``, the v3 study's critic), the
study's prompts and decoding settings read from the profile (default ``configs/toy-v3-full.yaml``: ``make
study``'s world, critic and decoding, plus the speed keys ``generation.max_num_seqs`` and ``run.generation_workers``
that the core leaves off so that it reproduces its committed run):

- **sampled** (stage 02's contrastive critiques, with the reference): ``generation.critique``
  (T=0.7, 320 new tokens); **greedy** (stages 03/04's direct critiques, no reference):
  ``generation.evaluation`` (288 new tokens). Problems come from the profile's world
  (``world.arith``) on the benchmark split; every other student solution carries an
  injected error.
- the requests go over in chunks of ``generation.batch_size`` (128), as the study's resumable
  stages hand them over (:func:`scrit_utils.pipeline.common.generate_resumable`): with continuous
  batching (``generation.max_num_seqs``, or ``--max-num-seqs``) ``backend.parallel`` chunks per call.

Paths timed (best of ``--repeats`` runs after an untimed warm-up):

- **6959ce8**: the batched backend as committed at 6959ce8, imported from ``git archive`` of
  that commit into a temporary package (``--old-ref``), so the ratio is against the old code
  measured in this same run;
- **current**: :class:`~scrit_utils.generation.transformers_backend.TransformersBackend` of this tree, with
  the profile's continuous batching (:mod:`~scrit_utils.generation.continuous`);
- **static**: the same backend with static batches (shown when the current path batches continuously;
  its texts must equal the current path's);
- **workers**: the study's backend as :func:`scrit_utils.pipeline.common.make_backend` builds it with
  ``run.generation_workers`` (``--workers``) worker processes, the threads split between them (texts
  equal the current path's);
- **HF generate**: ``model.generate`` (greedy) on the backend's own left-padded batches;
- **naive**: one prompt at a time through ``model.generate`` (greedy, a prefix of ``--naive-n``),
  whose texts the batched greedy texts must equal.

And the limits, measured in the same process: a float32 matmul peak (1024-2048 square) and a
decode-sized one (rows x hidden x hidden), and the memory bandwidth of a 400 MB reduction. The
achieved rates are printed as shares of them: GFLOP/s counts ``2 x weights`` per new token plus
the attention's ``4 x layers x hidden x cached length`` (the padded length each step really
reads; the continuous path is counted with the static batches' lengths, an approximation), and KV-cache
bytes read per second (every decode step reads each live row's keys and
values once, in float32). On a 2-core machine decode sits at a few percent of the matmul peak
and about half the memory bandwidth: the attention's tiny per-(row, head) products, which read
the whole cache every step, not the weights' arithmetic, set the pace.

Usage (under the shared CPU lock; 2-4 minutes)::

    flock /tmp/scrit-heavy.lock .venv/bin/python scripts/bench_generation.py
    flock /tmp/scrit-heavy.lock .venv/bin/python scripts/bench_generation.py --n 256 --repeats 2 --naive-n 16
    flock /tmp/scrit-heavy.lock .venv/bin/python scripts/bench_generation.py --max-num-seqs 256 --skip-old
    # the v3 study's critic (one KV head) against 6959ce8 on the v2 critic: code and model together
    flock /tmp/scrit-heavy.lock .venv/bin/python scripts/bench_generation.py --old-model models/toy-409k
    # the v2 study as it was measured before
    flock /tmp/scrit-heavy.lock .venv/bin/python scripts/bench_generation.py --profile configs/toy.yaml --model models/toy-409k

Exit status 1 when a batched greedy text differs from the naive loop's, or a continuous or worker text from
the current path's.
"""
from __future__ import annotations

import argparse
import importlib
import os
import random
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def old_package(ref: str, dest: Path) -> str:
    """``scrit_utils`` of commit ``ref`` unpacked under ``dest`` as package ``scrit_utils_<ref>``; its name."""
    name = f"scrit_utils_{ref}"
    blob = subprocess.run(["git", "-C", str(REPO), "archive", ref, "scrit_utils"], check=True,
                          capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(blob)) as tar:
        tar.extractall(dest, filter="data")
    (dest / "scrit_utils").rename(dest / name)
    sys.path.insert(0, str(dest))
    return name


def study_world(profile: Path):
    """The profile's arithmetic world (``world.arith``, its ``include:`` chain resolved) and its ``generation`` section."""
    from scrit_utils.core import config
    from scrit_utils.worlds import arith

    cfg = config.load(profile)
    w = cfg.world.arith
    keys = ("min_steps", "max_steps", "max_start", "max_addend", "max_factor", "max_value")
    return arith.ArithConfig(**{k: getattr(w, k) for k in keys}, ops=tuple(w.ops)), config.to_dict(cfg.generation)


def critique_requests(n: int, seed: int, world, contrastive: bool):
    """``n`` critique requests in the study's compact prompts; odd items critique an error-injected solution."""
    from scrit_utils.generation import GenerationRequest, derive_seed
    from scrit_utils.worlds import arith

    probs = arith.generate_problems(seed, n, "benchmark", world, stream="bench-generation")
    rng = random.Random(seed)
    reqs = []
    for i, p in enumerate(probs):
        sol = arith.inject_error(p, rng) if i % 2 else arith.reference_solution(p)
        msgs = arith.contrastive_messages(p, sol.text) if contrastive else arith.direct_messages(p, sol.text)
        reqs.append(GenerationRequest(id=sol.id, messages=msgs, seed=derive_seed(seed, "bench", sol.id, 0)))
    return reqs


def in_chunks(backend, reqs, params, size: int) -> list[str]:
    """The requests in consecutive chunks of ``size``, as the study's stages hand them over
    (:func:`scrit_utils.pipeline.common.generate_resumable`): ``backend.parallel`` chunks per call where the
    backend takes several (continuous batching), else one ``generate`` call per chunk."""
    par = max(1, int(getattr(backend, "parallel", 1)))
    chunks = [reqs[i:i + size] for i in range(0, len(reqs), size)]
    out: list[str] = []
    for g in range(0, len(chunks), par):
        if par > 1:
            out += [t for texts in backend.generate_many(chunks[g:g + par], params) for t in texts]
        else:
            out += backend.generate(chunks[g], params, progress=False)
    return out


def hf_generate(backend, reqs, params, size: int) -> None:
    """Greedy ``model.generate`` over the backend's own length-sorted, left-padded batches of each chunk."""
    import torch

    with torch.inference_mode():
        for c in range(0, len(reqs), size):
            ids = backend.encode(reqs[c:c + size])
            for b in backend.plan_batches([len(x) for x in ids], params.max_new_tokens):
                x, m = backend._left_pad([ids[i] for i in b])
                backend.model.generate(x, attention_mask=m, max_new_tokens=params.max_new_tokens, do_sample=False,
                                       temperature=None, top_p=None, top_k=None, eos_token_id=sorted(backend.eos_ids),
                                       pad_token_id=backend.pad_id)


def limits(threads: int, hidden: int, rows: int) -> dict:
    """Float32 matmul peaks (large square; decode-sized ``rows x hidden x hidden``) and memory bandwidth, this process."""
    import torch

    torch.set_num_threads(threads)

    def best(fn, flops, reps):
        fn()
        b = 0.0
        for _ in range(reps):
            t = time.perf_counter()
            fn()
            b = max(b, flops / (time.perf_counter() - t))
        return b

    peak = max(best(lambda a=torch.randn(n, n), b=torch.randn(n, n): torch.mm(a, b), 2 * n ** 3, 5) for n in (1024, 2048))
    x, w = torch.randn(rows, hidden), torch.randn(hidden, hidden)
    small = best(lambda: [torch.mm(x, w) for _ in range(100)], 100 * 2 * rows * hidden * hidden, 5)
    big = torch.randn(100_000_000)
    bw = best(lambda: big.sum(), big.numel() * 4, 5)
    return {"peak": peak / 1e9, "small": small / 1e9, "bw": bw / 1e9}


def work(backend, reqs, texts, size: int, max_new: int) -> tuple[float, float]:
    """(FLOPs, KV-cache bytes read) of generating ``texts``, with the padded cache lengths the steps read.

    Per chunk (one batch, sorted longest prompt first and left-padded to it), the step that makes
    token ``t`` of a row reads ``longest prompt + t`` cached positions of that row in every layer.
    """
    cfg = backend.model.config
    layers, hidden = cfg.num_hidden_layers, cfg.hidden_size
    kv = cfg.num_key_value_heads * (hidden // cfg.num_attention_heads)
    weights = sum(p.numel() for n, p in backend.model.named_parameters() if "embed_tokens" not in n)
    if getattr(cfg, "tie_word_embeddings", False):
        weights += backend.model.lm_head.weight.numel()
    new = [len(x) for x in backend.tokenizer(texts, add_special_tokens=False)["input_ids"]]
    flops = bytes_ = 0.0
    for c in range(0, len(reqs), size):
        ids = backend.encode(reqs[c:c + size])
        width = max(len(x) for x in ids)
        for g in new[c:c + size]:
            steps = min(g + 1, max_new)  # the eos step too
            ctx = steps * width + steps * (steps + 1) / 2  # sum over steps of the cached length read
            flops += 2 * weights * steps + 4 * layers * hidden * ctx
            bytes_ += 2 * layers * kv * 4 * ctx  # keys and values, float32
    return flops, bytes_


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(REPO / "models" / "v3" / "seed0" / "toy-409k"),
                    help="checkpoint dir (default: the v3 study's critic, build 0)")
    ap.add_argument("--profile", default=str(REPO / "configs" / "toy-v3-full.yaml"),
                    help="world and generation settings (default: the v3 study with its speed keys)")
    ap.add_argument("--max-num-seqs", type=int, default=None,
                    help="live rows of continuous batching for the current path (default: the profile's "
                         "generation.max_num_seqs; 0 = static batches)")
    ap.add_argument("--n", type=int, default=256, help="critiques per mode (sampled contrastive, greedy direct)")
    ap.add_argument("--naive-n", type=int, default=24, help="greedy critiques for the one-at-a-time loop (a prefix)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (the study uses 2)")
    ap.add_argument("--naive-threads", type=int, default=1, help="torch threads for the naive loop (1 is its fastest)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=2, help="timed runs per path; the best is reported")
    ap.add_argument("--warmup", type=int, default=8, help="prompts generated untimed by each path first")
    ap.add_argument("--old-ref", default="6959ce8", help="commit whose backend is the baseline")
    ap.add_argument("--old-model", default=None,
                    help="the baseline's own checkpoint (default: --model). With the v2 critic here and the v3 critic as "
                         "--model, the ratio is the study's generation speed, code and model together (texts differ)")
    ap.add_argument("--workers", type=int, default=None,
                    help="generation worker processes for the study path (default: the profile's "
                         "run.generation_workers; 1 = no such path)")
    ap.add_argument("--skip-old", action="store_true")
    ap.add_argument("--skip-hf", action="store_true")
    a = ap.parse_args(argv)

    import torch

    from scrit_utils.generation import SamplingParams
    from scrit_utils.generation.transformers_backend import NaiveTransformersBackend, TransformersBackend

    torch.set_num_threads(a.threads)
    world, gen = study_world(Path(a.profile))
    from scrit_utils.core import config as study_config

    study_cfg = study_config.load(a.profile)
    size = int(gen["batch_size"])
    live_rows = gen.get("max_num_seqs") if a.max_num_seqs is None else (a.max_num_seqs or None)
    modes = {
        "sampled": (True, SamplingParams(max_new_tokens=gen["critique"]["max_new_tokens"],
                                         temperature=gen["critique"]["temperature"], top_p=gen["critique"]["top_p"])),
        "greedy": (False, SamplingParams(max_new_tokens=gen["evaluation"]["max_new_tokens"])),
    }
    current = TransformersBackend(a.model, device="cpu", batch_size=size, max_num_seqs=live_rows)
    model, tok = current.model, current.tokenizer
    backends = {"current": current}
    if live_rows:  # this tree's static batches: what continuous batching adds
        backends["static"] = TransformersBackend(a.model, device="cpu", batch_size=size, _loaded=(model, tok))
    workers = study_cfg.run.generation_workers if a.workers is None else a.workers
    if workers > 1:  # the study's backend as make_backend builds it: worker processes of one thread each
        from scrit_utils.generation.process_pool import ProcessPoolBackend

        backends["workers"] = ProcessPoolBackend("transformers", {"model": a.model, "batch_size": size,
                                                                  "max_num_seqs": live_rows}, workers=workers,
                                                 threads=max(1, a.threads // workers))
    tmp = tempfile.TemporaryDirectory(prefix="bench_gen_")
    if not a.skip_old:
        old = importlib.import_module(old_package(a.old_ref, Path(tmp.name)) + ".generation.transformers_backend")
        if a.old_model:  # the baseline on its own model: the study as it was (code and critic)
            backends[a.old_ref] = old.TransformersBackend(a.old_model, device="cpu", batch_size=size)
        else:
            backends[a.old_ref] = old.TransformersBackend(a.model, device="cpu", batch_size=size, _loaded=(model, tok))
    naive = NaiveTransformersBackend(a.model, _loaded=(model, tok))
    cfg = model.config
    lim = limits(a.threads, cfg.hidden_size, size)
    print(f"model {a.model} ({sum(p.numel() for p in model.parameters()) / 1e3:.0f}k params, d{cfg.hidden_size} x "
          f"{cfg.num_hidden_layers}), {a.n} critiques per mode in chunks of {size}, current path "
          f"{f'continuous at {live_rows} rows' if live_rows else 'static batches'}, torch threads {a.threads}, "
          f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"limits in this process: matmul peak {lim['peak']:.0f} GFLOP/s (1024-2048 square), decode-sized "
          f"{size}x{cfg.hidden_size}x{cfg.hidden_size} {lim['small']:.0f} GFLOP/s, memory bandwidth {lim['bw']:.1f} GB/s")

    def timed(fn):
        best, out = None, None
        for _ in range(max(1, a.repeats)):
            t = time.perf_counter()
            out = fn()
            dt = time.perf_counter() - t
            best = dt if best is None else min(best, dt)
        return out, best

    results: dict = {}
    for mode, (contrastive, params) in modes.items():
        reqs = critique_requests(a.n, a.seed, world, contrastive)
        for name, b in backends.items():
            reg = sys.modules[type(b).__module__.rsplit(".", 1)[0] + ".kv_cache"]._register_kv_cache_attention
            reg()  # each path runs with its own registered attention function (they share the name)
            if name == "workers":  # every worker loads its model and builds its thread pool
                b.generate_many([reqs[:a.warmup]] * workers, params)
            else:
                b.generate(reqs[:a.warmup], params, progress=False)
            texts, secs = timed(lambda: in_chunks(b, reqs, params, size))
            # what this path's model did (the worker processes hold the current path's model)
            flops, kvb = work(current if name == "workers" else b, reqs, texts, size, params.max_new_tokens)
            results[mode, name] = (texts, secs)
            print(f"{mode:7} {name:>8}: {len(reqs) / secs:7.1f} critiques/s ({secs:6.2f} s), "
                  f"{flops / secs / 1e9:5.1f} GFLOP/s = {100 * flops / secs / 1e9 / lim['peak']:4.1f}% of the matmul peak, "
                  f"KV reads {kvb / secs / 1e9:5.1f} GB/s = {100 * kvb / secs / 1e9 / lim['bw']:3.0f}% of the bandwidth")
        if not contrastive and not a.skip_hf:
            _, secs = timed(lambda: hf_generate(current, reqs, params, size))
            results[mode, "hf"] = (None, secs)
            print(f"{mode:7} {'HF generate':>8}: {len(reqs) / secs:7.1f} critiques/s ({secs:6.2f} s), same batches")
        if not contrastive:
            torch.set_num_threads(a.naive_threads)
            naive.generate(reqs[:a.warmup], params, progress=False)
            ntexts, nsecs = timed(lambda: naive.generate(reqs[:a.naive_n], params, progress=False))
            torch.set_num_threads(a.threads)
            results[mode, "naive"] = (ntexts, nsecs)
            print(f"{mode:7} {'naive':>8}: {a.naive_n / nsecs:7.1f} critiques/s (one prompt at a time, "
                  f"{a.naive_threads} thread)")

    ok = True
    print("summary:")
    for mode in modes:
        n_cur = len(results[mode, "current"][0])
        rate = {k[1]: (a.naive_n if k[1] == "naive" else n_cur) / v[1] for k, v in results.items() if k[0] == mode}
        for path in ("current", "workers"):
            if path in rate:
                parts = [f"{rate[path] / rate[k]:.2f}x {k}" for k in ("static", a.old_ref, "hf", "naive") if k in rate]
                print(f"  {mode}: {path} = " + ", ".join(parts))
        for other in ("static", "workers") + (() if a.old_model else (a.old_ref,)):
            if (mode, other) in results:
                same = sum(x == y for x, y in zip(results[mode, "current"][0], results[mode, other][0]))
                ok = ok and (other == a.old_ref or same == n_cur)
                print(f"  {mode}: texts identical to {other}'s: {same}/{n_cur}")
        if (mode, "naive") in results:
            ntexts = results[mode, "naive"][0]
            same = sum(x == y for x, y in zip(ntexts, results[mode, "current"][0]))
            ok = ok and same == len(ntexts)
            print(f"  {mode}: texts identical to the naive loop's: {same}/{len(ntexts)}")
    tmp.cleanup()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""SFT throughput of the study's critic: TRL ``SFTTrainer`` as the study runs it vs a plain HF ``Trainer``.

What one run prints (issue #28):

- **study (6959ce8) path**: TRL's ``SFTTrainer`` with the profile's ``SFTConfig`` as
  :func:`scrit_utils.pipeline.training.sft_config` builds it (prompt/completion data, loss on
  the completion only, ``packing=False``: each batch padded to its longest example); the script
  checks those settings are still the 6959ce8 ones before it labels the run so;
- **HF's own**: a plain ``transformers.Trainer`` on the same examples, pre-tokenized, with the
  prompt's labels set to -100 and the same batch size, learning rate and schedule;
- any **candidate** path (``--candidates``), each as a ratio against the study path;
- for each: optimizer steps/s, trained tokens/s (non-padding tokens), the loss of each step (the
  curves must match: same data order, same loss), and achieved GFLOP/s as a share of a float32
  matrix-multiply peak measured in the same process (:func:`matmul_peak`). FLOPs are counted as
  ``6 x parameters x tokens`` plus the attention's ``12 x layers x hidden x length`` per token
  over the *padded* batch the step really computes, and over the real tokens (the useful share).

The examples are the study's SFT format built from the profile's world (default ``configs/toy-v3.yaml``,
``make study``'s, and its critic, the v3 build-0 toy-409k): the direct critic prompt (no reference) on a problem's reference or
error-injected solution, and its ground-truth critique as the completion (stage 03 trains on
the critic's own validated critiques of the same prompts; their lengths are alike).

Usage (under the shared CPU lock; a few minutes)::

    flock /tmp/scrit-heavy.lock .venv/bin/python scripts/bench_sft.py                  # toy-409k, 12 steps of 32
    flock /tmp/scrit-heavy.lock .venv/bin/python scripts/bench_sft.py --steps 20 --threads 2
    # the study's SFT as it was (6959ce8's padded path on the v2 critic) against this tree's on the v3 critic
    flock /tmp/scrit-heavy.lock .venv/bin/python scripts/bench_sft.py --old-model models/toy-409k

Timing skips the first ``--warmup`` steps of each path (thread pools, allocator, compilation).
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def matmul_peak(threads: int, sizes=(1024, 2048), repeats: int = 5) -> float:
    """Best float32 GFLOP/s of square matmuls on ``threads`` threads (the same process's peak)."""
    import torch

    torch.set_num_threads(threads)
    best = 0.0
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.mm(a, b)
        for _ in range(repeats):
            t = time.perf_counter()
            torch.mm(a, b)
            best = max(best, 2 * n ** 3 / (time.perf_counter() - t) / 1e9)
    return best


def study_world(profile: Path):
    """The profile's arithmetic world (``world.arith``, its ``include:`` chain resolved) as an :class:`ArithConfig`."""
    sys.path.insert(0, str(REPO / "scripts"))
    import bench_generation

    return bench_generation.study_world(profile)[0]


def sft_examples(n: int, seed: int, world):
    """``n`` SFT examples in the study's format (direct prompt -> ground-truth critique), half of wrong solutions."""
    from scrit_utils.core.records import SFTExample
    from scrit_utils.worlds import arith

    probs = arith.generate_problems(seed, n, "train", world, stream="bench-sft")
    rng = random.Random(seed)
    out = []
    for i, p in enumerate(probs):
        sol = arith.inject_error(p, rng) if i % 2 else arith.reference_solution(p)
        steps = arith.split_steps(sol.text)
        out.append(SFTExample(id=f"bench-{i}", prompt=arith.direct_messages(p, sol.text),
                              completion=arith.ground_truth_critique(p, steps), label_correct=not i % 2))
    return out


class StepClock:
    """A ``TrainerCallback`` recording each optimizer step's wall time and logged loss."""

    def __new__(cls):
        from transformers import TrainerCallback

        class _Clock(TrainerCallback):
            def __init__(self):
                self.t: list[float] = []
                self.loss: list[float] = []

            def on_step_begin(self, args, state, control, **kw):
                self._t0 = time.perf_counter()

            def on_step_end(self, args, state, control, **kw):
                self.t.append(time.perf_counter() - self._t0)

            def on_log(self, args, state, control, logs=None, **kw):
                if logs and "loss" in logs:
                    self.loss.append(float(logs["loss"]))

        return _Clock()


def padded_tokens(trainer, steps: int) -> tuple[int, int, int]:
    """(real tokens, padded tokens, sum of squared padded lengths) over the first ``steps`` batches."""
    real = padded = sq = 0
    for i, batch in enumerate(trainer.get_train_dataloader()):
        if i >= steps:
            break
        ids = batch["input_ids"]
        mask = batch.get("attention_mask")
        real += int(mask.sum()) if mask is not None else ids.numel()
        padded += ids.numel()
        bounds = batch.get("cu_seq_lens_q")
        if bounds is not None:  # padding-free: one row of concatenated examples, each attends over itself
            sq += int((bounds.diff().long() ** 2).sum())
        else:
            sq += ids.shape[0] * ids.shape[1] ** 2
    return real, padded, sq


def run_path(name: str, make, steps: int, warmup: int, flops_per_token: float, attn_coef: float):
    """Train ``steps`` steps with the trainer ``make()`` builds; returns a result dict."""
    trainer = make()
    clock = StepClock()
    trainer.add_callback(clock)
    real, padded, sq = padded_tokens(trainer, steps)
    trainer.train()
    t = clock.t[warmup:steps]
    secs = sum(t)
    frac = len(t) / steps
    work = (flops_per_token * padded + attn_coef * sq) * frac  # what the padded steps compute
    useful = flops_per_token * real * frac
    return {"name": name, "s_per_step": secs / len(t), "tok_s": real * frac / secs, "gflops": work / secs / 1e9,
            "useful_gflops": useful / secs / 1e9, "loss": clock.loss[:steps], "padding": 1 - real / padded}


def load_profile(profile: Path, overrides: list[str]):
    try:
        from scrit_utils.core import config
    except ImportError:  # before the core/ move
        from scrit_utils import config
    return config.load(profile, overrides)


def study_trainer(cfg, examples, out: Path, **extra):
    """TRL's SFTTrainer exactly as stage 04 builds it (``training.sft_config``), plus ``extra`` SFTConfig fields."""
    from trl import SFTTrainer

    from scrit_utils.pipeline import training

    model, tok = training.load_critic(cfg)
    args = training.sft_config(cfg, out)
    for k, v in extra.items():
        setattr(args, k, v)
    return SFTTrainer(model=model, args=args, train_dataset=training.to_dataset(examples), processing_class=tok)


def check_study_settings(cfg, out: Path) -> None:
    """The settings that make the study path the 6959ce8 one (a changed sft_config is not the old path)."""
    from scrit_utils.pipeline import training

    args = training.sft_config(cfg, out)
    want = {"packing": False, "padding_free": False, "completion_only_loss": True, "torch_compile": False}
    got = {k: getattr(args, k, None) for k in want}
    if got != want:
        raise SystemExit(f"training.sft_config no longer builds the 6959ce8 SFTConfig: {got} != {want}")


def hf_trainer(cfg, examples, out: Path):
    """A plain transformers ``Trainer`` on TRL's own tokenization and labels of the same examples (-100 off the completion)."""
    import torch
    from transformers import Trainer, TrainingArguments

    sft = study_trainer(cfg, examples, out)
    ds = sft.train_dataset.remove_columns([c for c in sft.train_dataset.column_names
                                           if c not in ("input_ids", "labels")])
    pad = sft.processing_class.pad_token_id

    def collate(rows):
        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        labels = torch.full_like(ids, -100)
        for i, r in enumerate(rows):
            n = len(r["input_ids"])
            ids[i, :n] = torch.tensor(r["input_ids"])
            mask[i, :n] = 1
            labels[i, :n] = torch.tensor(r["labels"])  # TRL's own: -100 off the completion
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}

    a = sft.args
    args = TrainingArguments(output_dir=str(out), learning_rate=a.learning_rate, max_steps=a.max_steps,
                             per_device_train_batch_size=a.per_device_train_batch_size,
                             gradient_accumulation_steps=a.gradient_accumulation_steps, warmup_steps=a.warmup_steps,
                             lr_scheduler_type=a.lr_scheduler_type, weight_decay=a.weight_decay,
                             max_grad_norm=a.max_grad_norm, logging_steps=1, seed=a.seed, data_seed=a.data_seed,
                             report_to="none", save_strategy="no", use_cpu=True, dataloader_num_workers=0,
                             remove_unused_columns=False)
    return Trainer(model=sft.model, args=args, train_dataset=ds, data_collator=collate)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default=str(REPO / "configs" / "toy-v3.yaml"),
                    help="study profile (training, models.critic, world); default make study's")
    ap.add_argument("--model", default=None, help="critic model (default: the profile's models.critic)")
    ap.add_argument("--steps", type=int, default=12, help="optimizer steps per path")
    ap.add_argument("--warmup", type=int, default=2, help="first steps of each path left out of the timing")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--candidates", nargs="*", default=["padding-free"], help="extra paths: " + ", ".join(CANDIDATES))
    ap.add_argument("--old-model", default=None,
                    help="train the study (6959ce8) path on this checkpoint instead (the v2 critic: the study's SFT "
                         "as it was, code and critic; the losses then differ)")
    ap.add_argument("--skip-hf", action="store_true")
    ap.add_argument("--workers", type=int, default=0, metavar="N",
                    help="also train the last candidate in N processes on one thread each, side by side, and print "
                         "their summed tokens/s (run.training_workers: the sweeps' points train so)")
    ap.add_argument("--torch-profile", default=None, metavar="PATH", help="print torch.profiler's top ops of this path "
                    "(study or a candidate's name) and exit")
    a = ap.parse_args(argv)

    import torch

    torch.set_num_threads(a.threads)
    # the study path is 6959ce8's padded TRL trainer whatever the profile sets; the padding-free candidate switches
    # training.padding_free on itself
    overrides = [f"training.max_steps={a.steps}", "training.logging_steps=1", "training.padding_free=false"]
    if a.model:
        overrides.append(f"models.critic={a.model}")
    cfg = load_profile(Path(a.profile), overrides)
    bs = cfg.training.per_device_train_batch_size * cfg.training.gradient_accumulation_steps
    examples = sft_examples(bs * a.steps, a.seed, study_world(Path(a.profile)))
    peak = matmul_peak(a.threads)

    from transformers import AutoConfig

    mc = AutoConfig.from_pretrained(cfg.models.critic)
    tmp = tempfile.TemporaryDirectory(prefix="bench_sft_")
    out = Path(tmp.name)
    check_study_settings(cfg, out)
    probe = study_trainer(cfg, examples, out)
    n_params = sum(p.numel() for p in probe.model.parameters())
    del probe
    flops_tok = 6.0 * n_params
    attn_coef = 12.0 * mc.num_hidden_layers * mc.hidden_size / 2  # causal: half of the score/value products
    print(f"model {cfg.models.critic} ({n_params / 1e3:.0f}k params), {a.steps} steps of {bs} examples, "
          f"torch threads {a.threads}, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"float32 matmul peak in this process: {peak:.0f} GFLOP/s ({a.threads} threads, 1024-2048 square)")

    paths = [("study (6959ce8): TRL SFTTrainer, padded batches", lambda: study_trainer(cfg, examples, out))]
    costs = {}  # a path's (FLOPs per token, attention coefficient) where its model is not the profile's critic
    if a.old_model:
        old_cfg = load_profile(Path(a.profile), overrides + [f"models.critic={a.old_model}"])
        paths[0] = (f"study (6959ce8) on {Path(a.old_model).name} (old critic)", lambda: study_trainer(old_cfg, examples, out))
        oc = AutoConfig.from_pretrained(a.old_model)
        probe = study_trainer(old_cfg, examples, out)
        costs[paths[0][0]] = (6.0 * sum(p.numel() for p in probe.model.parameters()),
                              12.0 * oc.num_hidden_layers * oc.hidden_size / 2)
        del probe
    if not a.skip_hf:
        paths.append(("HF Trainer, same tokens and collation", lambda: hf_trainer(cfg, examples, out)))
    for c in a.candidates:
        if c not in CANDIDATES:
            raise SystemExit(f"unknown candidate {c!r}; known: {', '.join(CANDIDATES)}")
        paths.append((CANDIDATES[c][0], lambda c=c: CANDIDATES[c][1](cfg, examples, out)))
    if a.torch_profile:
        from torch.profiler import ProfilerActivity, profile

        tr = study_trainer(cfg, examples, out) if a.torch_profile == "study" else CANDIDATES[a.torch_profile][1](
            cfg, examples, out)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            tr.train()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
        return 0
    results = []
    for name, make in paths:
        torch.manual_seed(a.seed)
        r = run_path(name, make, a.steps, a.warmup, *costs.get(name, (flops_tok, attn_coef)))
        results.append(r)
    if a.workers > 1:
        results.append(worker_paths(a, cfg, examples, flops_tok, attn_coef))
    base = results[0]
    print(f"timed steps {a.warmup + 1}..{a.steps} of each path:")
    for r in results:
        same = "same losses" if r["loss"] == base["loss"] else (
            "max |loss diff| %.2e" % max((abs(x - y) for x, y in zip(r["loss"], base["loss"])), default=float("nan")))
        print(f"{r['name']:<52}: {r['s_per_step']:6.3f} s/step, {r['tok_s']:8.0f} tokens/s = {r['tok_s'] / base['tok_s']:4.2f}x "
              f"the study path; {r['gflops']:5.1f} GFLOP/s computed = {100 * r['gflops'] / peak:4.1f}% of peak "
              f"({100 * r['useful_gflops'] / peak:4.1f}% on real tokens, {100 * r['padding']:.0f}% padding); {same}")
    print("losses (study path):", " ".join(f"{x:.4f}" for x in base["loss"]))
    tmp.cleanup()
    return 0


def _worker(a, cfg, examples, flops_tok, attn_coef, barrier, queue) -> None:
    """One training worker: the last candidate's trainer on one thread, started with the others (``barrier``)."""
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="bench_sft_w_") as tmp:
        name, make = CANDIDATES[a.candidates[-1]] if a.candidates else (None, None)
        trainer = make(cfg, examples, Path(tmp)) if make else study_trainer(cfg, examples, Path(tmp))
        barrier.wait()
        torch.manual_seed(a.seed)
        queue.put(run_path(name or "study", lambda: trainer, a.steps, a.warmup, flops_tok, attn_coef))


def worker_paths(a, cfg, examples, flops_tok: float, attn_coef: float) -> dict:
    """``--workers`` processes on one thread each, each training the same steps at the same time; their tokens/s
    and GFLOP/s summed (each worker's timed steps overlap the others': a barrier starts them together)."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(a.workers), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(a, cfg, examples, flops_tok, attn_coef, barrier, queue))
             for _ in range(a.workers)]
    for p in procs:
        p.start()
    rs = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    name = f"{rs[0]['name'].split(' (')[0]}: {a.workers} processes x 1 thread"
    return {"name": name, "s_per_step": max(r["s_per_step"] for r in rs) / a.workers,
            "tok_s": sum(r["tok_s"] for r in rs), "gflops": sum(r["gflops"] for r in rs),
            "useful_gflops": sum(r["useful_gflops"] for r in rs), "loss": rs[0]["loss"], "padding": rs[0]["padding"]}


class _Dir:
    """The one thing the trainer builders use of a stage: ``path(name)`` under a directory."""

    def __init__(self, root: Path):
        self.root = root

    def path(self, name: str) -> Path:
        return self.root / name


def padding_free_trainer(cfg, examples, out: Path, *keys: str):
    from scrit_utils.core import config
    from scrit_utils.pipeline import training

    cfg = config.load_dict(config.to_dict(cfg), cfg.source, ["training.padding_free=true", *keys])  # the study's keys
    trainer, _ = training.make_trainer(cfg, _Dir(out), examples)
    if not trainer.args.padding_free:
        raise SystemExit("training.padding_free fell back to the padded trainer (an example longer than max_length?)")
    return trainer


CANDIDATES: dict = {
    "padding-free": ("padding-free (training.padding_free): TRL + per-example SDPA", padding_free_trainer),
    "unfused-loss": ("padding-free + training.fused_lm_head=false",
                     lambda cfg, ex, out: padding_free_trainer(cfg, ex, out, "training.fused_lm_head=false")),
}


if __name__ == "__main__":
    sys.exit(main())

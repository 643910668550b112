"""Build the toy world's base "instruct" models: tiny Qwen2 models trained from scratch.

Each base is a ``Qwen2ForCausalLM`` (from a ``Qwen2Config``) with the project's toy
tokenizer (:mod:`scrit_utils.toy_tokenizer`), saved with ``save_pretrained(safe_serialization=True)``
plus tokenizer and generation config, so every HF tool (and the project's backends) loads it.

Training recipe (plain torch loop, loss on target tokens only, AdamW + warm-up + cosine):

- **solve** batches: fresh ``train``-split problems -> reference solution (infinite stream);
- **seed** batches: the seed of ground-truth critiques, :func:`scrit_utils.worlds.arith.seed_critiques`
  (default 3000 direct + 3000 contrastive on disjoint ``seed``-split problems, 50% injected-wrong
  students) -- the ONLY place ground-truth step labels are used;
- **drill** batches: the compare drill (:func:`scrit_utils.worlds.arith.drill_lines`): step-critique
  lines whose loss is only on the verdict word, so the critic learns to write ``wrong`` itself.

Schedule: phase 1 (first ``drill_phase`` = 35% of the main steps) is solving only, so the model
learns to copy operands and to compute before anything else; phase 2 mixes drill / solve / direct
seed / contrastive seed 15/35/20/30; one warm-up + cosine schedule spans phases 1-2. Phase 3 (the
critique phase, ``verdict_mix_steps`` = 400, fresh AdamW at 1e-3 with cosine decay) mixes
5/15/40/40. Phase 4 (``critique_steps`` = 600, fresh AdamW at 1e-3, cosine) mixes 0/10/30/60, so the
critic learns to copy the reference: before it toy-0.3m copied so poorly that with-reference CC mix
was 15.5% (PB F1 0.37); after it 75.5% (0.85), while without reference it is 23.5% (0.49). Verdict tokens get ``verdict_weight`` x loss, and the two compared values on a
critique's ``wrong`` line get ``copy_weight`` (10) x loss: without it a model that can solve writes
its own value in the student's slot and never sees a mismatch (measured: 0 of 80 wrong lines
copied, PB F1 0.02-0.06 at every size; with it toy-0.2m copied 71/80 and reached F1 0.88, in a
world with values <= 99).
Phase 5 (``reference_steps``, 0 by default: only recorded; toy-0.6m 800, fresh AdamW at 1e-3,
cosine, mix 10/10/25/55) is for a size that solves well enough to *compute* its checked values and
corrections rather than copy them from the reference (toy-0.6m after phase 4: CC mix 42.5 both
ways). Its contrastive pool gains ``copy_seed_n`` = 3000 contrastive seed critiques from
``copy_world`` (values up to 9999, which the model never learned to compute, so copying is the only
way to get them right); in contrastive targets the reference-determined tokens (checked values, the
correction's numbers) get ``ref_weight`` (10) x loss, and verdict tokens ``reference_verdict_weight``
(10) x, because a critic that copies both values must still compare them.
A phase 0 (``drill_only_steps``, drill alone from scratch) exists but is off: the skill it taught
was undone as soon as solving started.

Restartable per model: a model dir with ``build_info.json`` marked complete is skipped; a run
that dies resumes from ``<dir>.ckpt/`` (saved every ``ckpt_every`` steps; data batches are a pure
function of (seed, model, step), so a resumed run sees the same batches). A dir whose main phases
are done (e.g. built before phase 4 or 5 existed) gets only the tune phases it lacks.

Usage::

    from scrit_utils.base_models import BuildConfig, build_base_models
    build_base_models(BuildConfig(out_dir="models", sizes=("toy-0.1m",)))
    # CLI:  scrit build-base-models --profile configs/toy.yaml   |   --out models --sizes toy-0.1m
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from scrit_utils import prompts
from scrit_utils.records import atomic_write_text, write_json
from scrit_utils.worlds import arith

TOKENIZER_DIR = "tokenizer"
# the two compared values of a ground-truth critique line whose verdict is "wrong"
_WRONG_LINE_VALUES = re.compile(arith.COMPARED_VALUES_RE.pattern + " " + arith.VERDICT_WRONG)


@dataclass(frozen=True)
class SizeSpec:
    name: str
    hidden: int
    layers: int
    heads: int
    intermediate: int
    steps: int  # main-phase steps (after the drill-only phase)
    lr: float = 2e-3
    critique_steps: int | None = None  # phase-4 steps (None = BuildConfig.critique_steps)
    reference_steps: int | None = None  # phase-5 steps (None = BuildConfig.reference_steps)
    reference_mix: tuple[float, float, float, float] | None = None  # phase-5 mixture (None = BuildConfig's)
    reference_verdict_weight: float | None = None  # phase-5 verdict weight (None = BuildConfig's)


#: the shipped sizes (parameter counts are printed in models/README.md)
SIZES: dict[str, SizeSpec] = {
    s.name: s
    for s in (
        # after phase 4 it almost never wrote ` wrong` (PB F1 0.00 / 0.02 without / with reference): phase 5 with
        # more drill and a larger verdict weight taught it (0.13 / 0.56; models/README.md, item 9)
        SizeSpec("toy-0.1m", hidden=64, layers=2, heads=4, intermediate=128, steps=1500,
                 reference_steps=1000, reference_mix=(0.3, 0.1, 0.2, 0.4), reference_verdict_weight=20.0),
        SizeSpec("toy-0.2m", hidden=80, layers=3, heads=4, intermediate=160, steps=1500),
        SizeSpec("toy-0.3m", hidden=96, layers=3, heads=4, intermediate=192, steps=1500),
        # copying the reference is learned later at this size (phase-4 contrastive loss 0.068 after 600 steps,
        # where toy-0.3m had 0.025; with-reference no better than without), so phase 4 is twice as long
        # it also solves well enough (37%) to compute its checked values and corrections instead of copying them
        # from the reference, so with a reference it was no better than without: phase 5 teaches the copy
        SizeSpec("toy-0.6m", hidden=128, layers=3, heads=4, intermediate=256, steps=1500, lr=1.5e-3,
                 critique_steps=1200, reference_steps=800),
    )
}


@dataclass(frozen=True)
class BuildConfig:
    out_dir: str = "models"
    sizes: tuple[str, ...] = tuple(SIZES)
    seed: int = 0
    world: arith.ArithConfig = field(default_factory=arith.ArithConfig)
    vocab_size: int = 384
    n_seed_per_mode: int = 3000  # ground-truth critiques per format (direct, contrastive)
    seed_wrong_fraction: float = 0.5
    steps_scale: float = 1.0  # multiply every size's step count (tests use tiny values)
    max_steps: int | None = None  # hard cap on steps (tests)
    solve_batch: int = 32
    seed_batch: int = 16
    drill_batch: int = 24  # sequences of drill_lines_per_seq lines each
    drill_lines_per_seq: int = 6
    drill_only_steps: int = 0  # phase 0: compare drill alone (off: on a fresh model it is undone once solving starts)
    drill_phase: float = 0.35  # share of main steps in phase 1 (solve only by default: arithmetic first)
    phase1_mix: tuple[float, float] = (0.0, 1.0)  # drill, solve
    phase2_mix: tuple[float, float, float, float] = (0.15, 0.35, 0.2, 0.3)  # drill, solve, direct, contrastive
    verdict_weight: float = 2.0
    copy_weight: float = 10.0  # loss weight of the two compared values on a critique's "wrong" line
    # phase 3 (critique phase) on the phase-1/2 weights: optional drill alone, then a critique-heavy mix
    verdict_drill_steps: int = 0  # phase 3: drill alone on the trained model
    verdict_mix_steps: int = 400  # phase 3: then this critique-heavy mixture (copy_weight applies)
    verdict_drill_batch: int = 40
    verdict_drill_lr: float = 2e-3
    verdict_mix_lr: float = 1e-3
    verdict_mix: tuple[float, float, float, float] = (0.05, 0.15, 0.4, 0.4)  # drill, solve, direct, contrastive
    # phase 4 (second critique phase) on the phase-3 weights: contrastive-heavy, so the critic learns to copy
    # the reference (toy-0.3m, 600 steps: with-reference CC mix 15.5 -> 75.5, PB F1 0.37 -> 0.85)
    critique_steps: int = 600  # per size: SizeSpec.critique_steps overrides
    critique_mix: tuple[float, float, float, float] = (0.0, 0.1, 0.3, 0.6)  # drill, solve, direct, contrastive
    critique_lr: float = 1e-3
    # phase 5 (reference phase): contrastive-heavy again, with the tokens the reference determines
    # (checked values, the correction's numbers) weighted ref_weight x in contrastive targets; 0 steps = skipped
    reference_steps: int = 0  # per size: SizeSpec.reference_steps overrides
    reference_mix: tuple[float, float, float, float] = (0.1, 0.1, 0.25, 0.55)  # drill, solve, direct, contrastive
    reference_lr: float = 1e-3
    ref_weight: float = 10.0
    reference_verdict_weight: float = 10.0  # verdict tokens in phase 5 (2 elsewhere): copied values must still be compared
    # phase 5 adds contrastive seed critiques from a harder world (4-digit values) that this model cannot
    # compute, so the only way to lower their loss is to copy the reference (0 = none)
    copy_seed_n: int = 3000
    copy_world: arith.ArithConfig = field(default_factory=lambda: arith.ArithConfig(
        max_start=999, max_addend=999, max_factor=19, max_value=9999))
    warmup: int = 100
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.05
    grad_clip: float = 1.0
    log_every: int = 25
    ckpt_every: int = 250
    threads: int = 1  # torch threads per training process
    jobs: int = 2  # models trained concurrently (separate processes)

    def steps_for(self, spec: SizeSpec) -> int:
        """Total optimizer steps: drill-only phase + the size's main phase."""
        n = self.drill_only_steps + max(1, int(round(spec.steps * self.steps_scale)))
        return min(n, self.max_steps) if self.max_steps else n


# --- model + tokenizer ------------------------------------------------------------------
def ensure_tokenizer(cfg: BuildConfig):
    """Train (or load) the shared toy tokenizer under ``out_dir/tokenizer``."""
    from transformers import AutoTokenizer

    from scrit_utils.toy_tokenizer import build_tokenizer

    d = Path(cfg.out_dir) / TOKENIZER_DIR
    if not (d / "tokenizer.json").exists():
        build_tokenizer(d, seed=cfg.seed, vocab_size=cfg.vocab_size, config=cfg.world)
    return AutoTokenizer.from_pretrained(str(d))


def make_model(spec: SizeSpec, tok, seed: int):
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    conf = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=spec.hidden,
        intermediate_size=spec.intermediate,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        num_key_value_heads=spec.heads,
        max_position_embeddings=1024,
        rope_theta=10000.0,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        use_cache=True,
    )
    conf._attn_implementation = "sdpa"
    torch.manual_seed(seed)
    return Qwen2ForCausalLM(conf)


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


# --- data ---------------------------------------------------------------------------------
class Encoder:
    """Turns (messages, target) pairs and drill lines into ids + loss weights."""

    def __init__(self, tok, verdict_weight: float, copy_weight: float = 1.0, ref_weight: float = 1.0):
        self.tok = tok
        self.eos = tok.eos_token_id
        self.pad = tok.pad_token_id
        ids = set()
        for w in (" " + arith.VERDICT_OK, " " + arith.VERDICT_WRONG, prompts.VERDICT_CORRECT, prompts.VERDICT_INCORRECT):
            enc = tok(w, add_special_tokens=False)["input_ids"]
            if len(enc) == 1:
                ids.add(enc[0])
        self.verdict_ids = ids
        self.verdict_weight = verdict_weight
        self.copy_weight = copy_weight
        self.ref_weight = ref_weight

    def ids(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False)["input_ids"]

    def pair(self, messages: list, target: str, mode: str | None = None) -> tuple[list[int], list[float]]:
        """Prompt + target ids and loss weights; ``mode`` = the seed critique's format (None: not a critique)."""
        p = self.ids(prompts.render_chat(self.tok, messages))
        enc = self.tok(target, add_special_tokens=False, return_offsets_mapping=True)
        t = list(enc["input_ids"]) + [self.eos]
        w = [self.verdict_weight if i in self.verdict_ids else 1.0 for i in t]
        offsets = enc["offset_mapping"]
        if self.ref_weight != 1.0 and mode == "contrastive":
            # the tokens the reference determines: every checked value and every number of the correction.
            # A model that solves well enough computes them and gets most right; copying them from the
            # reference gets all right, and the extra weight makes the few misses count (toy-0.6m).
            for j in _in_spans(offsets, reference_value_spans(target)):
                w[j] = self.ref_weight
        if self.copy_weight != 1.0:
            # the two values on a "wrong" line: the student's must be copied from the solution and the
            # checked one must differ from it. Everywhere else they are equal, so a solver-trained
            # model writes one value twice and never sees a mismatch (first build: 0/80 copied).
            # Those few tokens get copy_weight x loss.
            for j in _in_spans(offsets, [(m.start(1), m.end(2)) for m in _WRONG_LINE_VALUES.finditer(target)]):
                w[j] = self.copy_weight
        return p + t, [0.0] * len(p) + w

    def drill(self, lines: Sequence[tuple[str, str]]) -> tuple[list[int], list[float]]:
        ids: list[int] = []
        wts: list[float] = []
        for j, (ctx, verdict) in enumerate(lines):
            c = self.ids(("\n" if j else "") + ctx)
            v = self.ids(verdict)
            ids += c + v
            wts += [0.0] * len(c) + [1.0] * len(v)
        return ids, wts


def _in_spans(offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]) -> list[int]:
    """Indices of the tokens (by character offsets) that lie wholly inside one of ``spans``."""
    return [j for j, (a, b) in enumerate(offsets) if any(a >= lo and b <= hi for lo, hi in spans)]


def reference_value_spans(target: str) -> list[tuple[int, int]]:
    """Character spans of a contrastive critique's reference-determined values: each step's checked value
    (``=<checked>|``) and every number after the correction header."""
    spans = [m.span(1) for m in arith.COMPARED_VALUES_RE.finditer(target)]
    cut = target.find(prompts.CORRECTION_HEADER)
    if cut >= 0:
        cut += len(prompts.CORRECTION_HEADER)
        spans += [(m.start() + cut, m.end() + cut) for m in re.finditer(r"\d+", target[cut:])]
    return spans


def collate(batch: list[tuple[list[int], list[float]]], pad_id: int):
    import torch

    L = max(len(x) for x, _ in batch)
    ids = torch.full((len(batch), L), pad_id, dtype=torch.long)
    att = torch.zeros((len(batch), L), dtype=torch.long)
    wts = torch.zeros((len(batch), L), dtype=torch.float)
    for i, (x, w) in enumerate(batch):
        ids[i, : len(x)] = torch.tensor(x)
        att[i, : len(x)] = 1
        wts[i, : len(w)] = torch.tensor(w)
    return ids, att, wts


def batch_kind(cfg: BuildConfig, step: int, total: int, rng: random.Random) -> str:
    if step < cfg.drill_only_steps:
        return "drill"
    if step - cfg.drill_only_steps < int(cfg.drill_phase * (total - cfg.drill_only_steps)):
        kinds, probs = ("drill", "solve"), cfg.phase1_mix
    else:
        kinds, probs = ("drill", "solve", "direct", "contrastive"), cfg.phase2_mix
    return rng.choices(kinds, weights=probs)[0]


def make_batch(cfg: BuildConfig, enc: Encoder, seeds: dict, name: str, step: int, total: int):
    """The batch of one step: a pure function of (seed, model name, step)."""
    rng = random.Random(f"{cfg.seed}/{name}/step{step}")
    kind = batch_kind(cfg, step, total, rng)
    if kind == "solve":
        probs = arith.generate_problems(cfg.seed * 1_000_003 + step, cfg.solve_batch, "train", cfg.world,
                                        stream=f"solve/{name}")
        items = [enc.pair(arith.solve_messages(p), p.reference_solution) for p in probs]
    elif kind == "drill":
        items = [enc.drill(arith.drill_lines(rng, cfg.drill_lines_per_seq, cfg.world)) for _ in range(cfg.drill_batch)]
    else:
        pool = seeds[kind]
        items = [pool[i] for i in rng.sample(range(len(pool)), min(cfg.seed_batch, len(pool)))]
    return kind, items


def encode_seed(cfg: BuildConfig, enc: Encoder, copy_critiques: bool = False) -> dict:
    """The seed critiques as encoded pools per format; ``copy_critiques`` (phase 5) adds ``copy_seed_n``
    contrastive ones from ``copy_world`` (their own draw of ``seed``-split problems) to the contrastive pool."""
    ex = arith.seed_critiques(cfg.seed, cfg.n_seed_per_mode, cfg.world, cfg.seed_wrong_fraction)
    if copy_critiques and cfg.copy_seed_n:
        ex += [e for e in arith.seed_critiques(cfg.seed, cfg.copy_seed_n, cfg.copy_world, cfg.seed_wrong_fraction,
                                               stream="copy-critiques") if e.mode == "contrastive"]
    out: dict[str, list] = {"direct": [], "contrastive": []}
    for e in ex:
        out[e.mode].append(enc.pair(e.messages, e.target, mode=e.mode))
    return out


# --- training -------------------------------------------------------------------------------
def lr_at(step: int, total: int, base: float, cfg: BuildConfig) -> float:
    if step < cfg.warmup:
        return base * (step + 1) / cfg.warmup
    prog = (step - cfg.warmup) / max(1, total - cfg.warmup)
    return base * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, prog))))


def _info(model_dir: Path) -> dict:
    info = Path(model_dir) / "build_info.json"
    if not info.exists() or not (Path(model_dir) / "model.safetensors").exists():
        return {}
    try:
        return json.loads(info.read_text())
    except json.JSONDecodeError:
        return {}


def main_done(model_dir: Path) -> bool:
    """Phases 0-2 finished and saved."""
    i = _info(model_dir)
    return bool(i.get("main_complete") or i.get("complete"))


def is_complete(model_dir: Path) -> bool:
    """Every phase, including the verdict phase 3, finished and saved."""
    i = _info(model_dir)
    return bool(i.get("complete")) and all(k in i for k in TUNE_PHASES)


#: the fine-tuning phases after the main run, in order (their ``build_info`` keys)
TUNE_PHASES = ("verdict_tune", "critique_tune", "reference_tune")


def steps_done(info: dict, upto: str | None = None) -> int:
    """Optimizer steps recorded in ``build_info``: the main run plus the tune phases before ``upto`` (all if None)."""
    phases = TUNE_PHASES[:TUNE_PHASES.index(upto)] if upto else TUNE_PHASES
    return int(info.get("steps", 0)) + sum(int(info[k]["drill_steps"]) + int(info[k]["mix_steps"])
                                           for k in phases if k in info)


def _git_sha() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except OSError:  # pragma: no cover
        return ""


def train_one(cfg: BuildConfig, size: str, progress: bool = True, stop_after: int | None = None) -> Path | None:
    """Train one base model into ``out_dir/<size>`` (skipped when already complete).

    ``stop_after`` (tests) simulates a crash: stop right after step ``stop_after``'s checkpoint.
    """
    import torch
    from tqdm.auto import tqdm
    from transformers import GenerationConfig

    spec = SIZES[size]
    out = Path(cfg.out_dir) / size
    if is_complete(out) and not _tune_pending(cfg, size):
        return out
    if main_done(out):
        return _finish_tunes(cfg, size, progress)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    tok = ensure_tokenizer(cfg)
    enc = Encoder(tok, cfg.verdict_weight, cfg.copy_weight)
    seeds = encode_seed(cfg, enc)
    model = make_model(spec, tok, cfg.seed)
    total = cfg.steps_for(spec)
    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, betas=(0.9, 0.98), weight_decay=cfg.weight_decay)
    ckpt = Path(str(out) + ".ckpt")
    start, log, elapsed0 = 0, [], 0.0
    if (ckpt / "state.pt").exists():
        st = torch.load(ckpt / "state.pt", weights_only=False)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        start, log, elapsed0 = st["step"], st["log"], st["elapsed"]
    model.train()
    t0 = time.time()
    acc: dict[str, list[float]] = {}
    ntok = 0
    bar = tqdm(range(start, total), desc=size, disable=not progress, mininterval=5)
    for step in bar:
        kind, items = make_batch(cfg, enc, seeds, size, step, total)
        ids, att, wts = collate(items, enc.pad)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, total, spec.lr, cfg)
        logits = model(input_ids=ids, attention_mask=att).logits[:, :-1]
        tgt, w = ids[:, 1:], wts[:, 1:]
        ce = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), tgt.reshape(-1), reduction="none")
        loss = (ce * w.reshape(-1)).sum() / w.sum().clamp(min=1.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        ntok += int(att.sum())
        acc.setdefault(kind, []).append(loss.item())
        if (step + 1) % cfg.log_every == 0 or step + 1 == total:
            el = elapsed0 + time.time() - t0
            row = {"step": step + 1, "elapsed_s": round(el, 1), "lr": round(lr_at(step, total, spec.lr, cfg), 6)}
            for k in ("solve", "drill", "direct", "contrastive"):
                row[f"loss_{k}"] = round(sum(acc[k]) / len(acc[k]), 4) if acc.get(k) else None
            log.append(row)
            acc = {}
            bar.set_postfix(loss=row.get("loss_solve"))
        if (step + 1) % cfg.ckpt_every == 0 and step + 1 < total:
            ckpt.mkdir(parents=True, exist_ok=True)
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step + 1, "log": log,
                        "elapsed": elapsed0 + time.time() - t0}, ckpt / "state.tmp")
            os.replace(ckpt / "state.tmp", ckpt / "state.pt")
        if stop_after is not None and step + 1 >= stop_after:
            return None
    train_s = elapsed0 + time.time() - t0
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out), safe_serialization=True)
    tok.save_pretrained(str(out))
    GenerationConfig(eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, do_sample=False,
                     max_new_tokens=512).save_pretrained(str(out))
    _write_log(out, log)
    import tokenizers
    import transformers

    write_json(out / "build_info.json", {
        "size": dataclasses.asdict(spec),
        "steps": total,
        "n_params": n_params(model),
        "train_seconds": round(train_s, 1),
        "tokens_seen_this_run": ntok,
        "build_config": _cfg_dict(cfg),
        "seed_critiques": {"n_per_mode": cfg.n_seed_per_mode, "wrong_fraction": cfg.seed_wrong_fraction,
                           "split": "seed", "made_by": "scrit_utils.worlds.arith.seed_critiques"},
        "git_sha": _git_sha(),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "tokenizers": tokenizers.__version__},
        "main_complete": True,
        "complete": False,
    })
    shutil.rmtree(ckpt, ignore_errors=True)
    if stop_after is not None:
        return out
    return _finish_tunes(cfg, size, progress)


def _finish_tunes(cfg: BuildConfig, size: str, progress: bool = True) -> Path:
    """Run the tune phases not yet recorded in ``build_info`` (an older model dir gets only the new ones)."""
    out = Path(cfg.out_dir) / size
    for i, (phase, fn) in enumerate(zip(TUNE_PHASES, (verdict_tune, critique_tune, reference_tune))):
        info = _info(out)
        if phase not in info or _zero_step_phase_now_has_steps(cfg, size, info, i):
            fn(cfg, size, progress=progress)
    return out


def _tune_pending(cfg: BuildConfig, size: str) -> bool:
    """A complete dir whose recipe now has steps for a phase recorded with 0 steps (see ``_finish_tunes``)."""
    info = _info(Path(cfg.out_dir) / size)
    return any(p in info and _zero_step_phase_now_has_steps(cfg, size, info, i) for i, p in enumerate(TUNE_PHASES))


def _zero_step_phase_now_has_steps(cfg: BuildConfig, size: str, info: dict, i: int) -> bool:
    """A phase recorded with 0 steps (weights untouched) that the recipe now gives steps, and no later
    phase recorded: it can still run, on the same weights it would have run on."""
    phase = TUNE_PHASES[i]
    rec = info[phase]
    if rec.get("drill_steps", 0) + rec.get("mix_steps", 0) or any(p in info for p in TUNE_PHASES[i + 1:]):
        return False
    steps = {"critique_tune": "critique_steps", "reference_tune": "reference_steps"}.get(phase)
    return steps is not None and _size_setting(cfg, size, steps) > 0


def verdict_tune(cfg: BuildConfig, size: str, progress: bool = True) -> Path:
    """Phase 3 (critique phase): optional drill alone, then a critique-heavy mixture.

    Starts from the saved phase-1..2 weights with a fresh AdamW (``verdict_mix_lr``, cosine).
    Uses the same loss weights as phases 1-2 (verdict and copy weights). Batches are a pure
    function of (seed, model, phase-3 step).
    """
    return _tune(cfg, size, "verdict_tune", cfg.verdict_drill_steps, cfg.verdict_mix_steps, cfg.verdict_mix,
                 cfg.verdict_mix_lr, progress)


def critique_tune(cfg: BuildConfig, size: str, progress: bool = True) -> Path:
    """Phase 4: ``critique_steps`` more steps of a contrastive-heavy mixture on the phase-3 weights.

    Fresh AdamW at ``critique_lr`` with cosine decay. Its batches use the same per-step keys as
    phase 3 (the recipe exactly as it was measured), with phase 4's own mixture weights.
    """
    return _tune(cfg, size, "critique_tune", 0, _size_setting(cfg, size, "critique_steps"), cfg.critique_mix,
                 cfg.critique_lr, progress)


def reference_tune(cfg: BuildConfig, size: str, progress: bool = True) -> Path:
    """Phase 5: ``reference_steps`` more steps (0 by default: only recorded) with ``ref_weight`` on the
    reference-determined tokens of contrastive targets (:func:`reference_value_spans`).

    For a size that solves well enough to compute its checked values and corrections instead of copying
    them from the reference (toy-0.6m), so that with a reference it is no better than without.
    """
    return _tune(cfg, size, "reference_tune", 0, _size_setting(cfg, size, "reference_steps"),
                 _size_setting(cfg, size, "reference_mix"), cfg.reference_lr, progress, ref_weight=cfg.ref_weight,
                 rng_key="reference-step", verdict_weight=_size_setting(cfg, size, "reference_verdict_weight"),
                 copy_critiques=True)


def _size_setting(cfg: BuildConfig, size: str, name: str):
    """A tune-phase setting: the size's own ``SizeSpec.<name>`` where set, else ``BuildConfig.<name>``."""
    n = getattr(SIZES[size], name)
    return getattr(cfg, name) if n is None else n


def _tune(cfg: BuildConfig, size: str, phase: str, n_drill: int, n_mix: int, mix: Sequence[float],
          mix_lr: float, progress: bool = True, ref_weight: float = 1.0, rng_key: str = "verdict-step",
          verdict_weight: float | None = None, copy_critiques: bool = False) -> Path:
    """One fine-tuning phase on the saved weights of ``out_dir/<size>``; recorded as ``build_info[phase]``.

    Phases 3 and 4 share the per-step batch keys (``rng_key``), as when the recipe was measured; a phase
    of 0 steps leaves the weights alone and is only recorded."""
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModelForCausalLM

    out = Path(cfg.out_dir) / size
    info = _info(out)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    tok = ensure_tokenizer(cfg)
    verdict_weight = cfg.verdict_weight if verdict_weight is None else verdict_weight
    enc = Encoder(tok, verdict_weight, cfg.copy_weight, ref_weight)
    if cfg.max_steps:
        n_drill, n_mix = min(n_drill, cfg.max_steps), min(n_mix, cfg.max_steps)
    if n_drill + n_mix == 0:
        info[phase] = {"drill_steps": 0, "mix_steps": 0, "seconds": 0.0, "git_sha": _git_sha()}
        info["complete"] = all(k in info for k in TUNE_PHASES)
        write_json(out / "build_info.json", info)
        return out
    seeds = encode_seed(cfg, enc, copy_critiques=copy_critiques)
    model = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32)
    model.train()
    total = n_drill + n_mix
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.verdict_drill_lr, betas=(0.9, 0.98),
                            weight_decay=cfg.weight_decay)
    log = json.loads((out / "train_log.json").read_text()) if (out / "train_log.json").exists() else []
    base_step = steps_done(info, upto=phase)  # log steps continue after every earlier phase
    secs0 = float(info.get("train_seconds_total", info.get("train_seconds", 0)))
    vcfg = dataclasses.replace(cfg, drill_batch=cfg.verdict_drill_batch)
    t0 = time.time()
    acc: dict[str, list[float]] = {}
    for j in tqdm(range(total), desc=f"{size} {phase}", disable=not progress, mininterval=5):
        rng = random.Random(f"{cfg.seed}/{size}/{rng_key}{j}")
        if j < n_drill:
            kind = "drill"
            lr = cfg.verdict_drill_lr * min(1.0, (j + 1) / 20)
        else:
            kind = rng.choices(("drill", "solve", "direct", "contrastive"), weights=mix)[0]
            prog = (j - n_drill) / max(1, n_mix)
            lr = mix_lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * prog)))
        if kind == "drill":
            items = [enc.drill(arith.drill_lines(rng, vcfg.drill_lines_per_seq, cfg.world)) for _ in range(vcfg.drill_batch)]
        elif kind == "solve":
            probs = arith.generate_problems(cfg.seed * 1_000_003 + j, cfg.solve_batch, "train", cfg.world,
                                            stream=f"verdict-solve/{size}")
            items = [enc.pair(arith.solve_messages(p), p.reference_solution) for p in probs]
        else:
            pool = seeds[kind]
            items = [pool[i] for i in rng.sample(range(len(pool)), min(cfg.seed_batch, len(pool)))]
        ids, att, wts = collate(items, enc.pad)
        for g in opt.param_groups:
            g["lr"] = lr
        logits = model(input_ids=ids, attention_mask=att).logits[:, :-1]
        ce = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1),
                                               reduction="none")
        w = wts[:, 1:].reshape(-1)
        loss = (ce * w).sum() / w.sum().clamp(min=1.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        acc.setdefault(kind, []).append(loss.item())
        if (j + 1) % cfg.log_every == 0 or j + 1 == total:
            row = {"step": base_step + j + 1, "elapsed_s": round(secs0 + time.time() - t0, 1),
                   "lr": round(lr, 6)}
            for k in ("solve", "drill", "direct", "contrastive"):
                row[f"loss_{k}"] = round(sum(acc[k]) / len(acc[k]), 4) if acc.get(k) else None
            log.append(row)
            acc = {}
    secs = time.time() - t0
    model.eval()
    tmp = out / f".{phase}_tmp"
    model.save_pretrained(str(tmp), safe_serialization=True)
    os.replace(tmp / "model.safetensors", out / "model.safetensors")
    shutil.rmtree(tmp, ignore_errors=True)
    _write_log(out, log)
    info.update({
        phase: {"drill_steps": n_drill, "mix_steps": n_mix, "seconds": round(secs, 1),
                "drill_lr": cfg.verdict_drill_lr, "mix_lr": mix_lr, "mix": list(mix),
                "drill_batch": cfg.verdict_drill_batch, "ref_weight": ref_weight, "verdict_weight": verdict_weight,
                "git_sha": _git_sha()},
        "train_seconds_total": round(secs0 + secs, 1),
        "main_complete": True,
    })
    info["complete"] = all(k in info for k in TUNE_PHASES)
    write_json(out / "build_info.json", info)
    return out


def _cfg_dict(cfg: BuildConfig) -> dict:
    d = dataclasses.asdict(cfg)
    d["world"] = dataclasses.asdict(cfg.world)
    d["copy_world"] = dataclasses.asdict(cfg.copy_world)
    return d


def _write_log(out: Path, log: list[dict]) -> None:
    write_json(out / "train_log.json", log)
    if log:
        cols = list(log[0])
        lines = [",".join(cols)] + [",".join("" if r.get(c) is None else str(r.get(c)) for c in cols) for r in log]
        atomic_write_text(out / "train_log.csv", "\n".join(lines) + "\n")


def _worker(args: tuple[dict, str]) -> str:
    cfg_d, size = args
    return str(train_one(config_from_dict(cfg_d), size, progress=True))


def config_from_dict(d: dict) -> BuildConfig:
    d = dict(d)
    for key in ("world", "copy_world"):
        if isinstance(d.get(key), dict):
            w = dict(d[key])
            if "ops" in w:
                w["ops"] = tuple(w["ops"])
            d[key] = arith.ArithConfig(**w)
    for k in ("sizes", "phase1_mix", "phase2_mix", "verdict_mix", "critique_mix", "reference_mix"):
        if k in d and d[k] is not None:
            d[k] = tuple(d[k])
    known = {f.name for f in dataclasses.fields(BuildConfig)}
    unknown = set(d) - known
    if unknown:
        raise ValueError(f"base_models: unknown key(s) {sorted(unknown)}; known: {sorted(known)}")
    return BuildConfig(**d)


def build_base_models(cfg: BuildConfig) -> list[Path]:
    """Tokenizer + every size in ``cfg.sizes``; up to ``cfg.jobs`` trainings run concurrently."""
    for s in cfg.sizes:
        if s not in SIZES:
            raise ValueError(f"unknown base model size {s!r}; known: {list(SIZES)}")
    ensure_tokenizer(cfg)
    todo = [s for s in cfg.sizes if not is_complete(Path(cfg.out_dir) / s) or _tune_pending(cfg, s)]
    # most expensive first so the greedy schedule balances the two workers
    todo.sort(key=lambda s: -SIZES[s].hidden ** 2 * SIZES[s].layers * cfg.steps_for(SIZES[s]))
    if cfg.jobs <= 1 or len(todo) <= 1:
        for s in todo:
            train_one(cfg, s)
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=cfg.jobs, mp_context=mp.get_context("spawn")) as ex:
            list(ex.map(_worker, [(_cfg_dict(cfg), s) for s in todo]))
    return [Path(cfg.out_dir) / s for s in cfg.sizes]


# --- CLI ------------------------------------------------------------------------------------------
def config_from_profile(path: str | None) -> dict:
    """Seed, world knobs and an optional ``base_models:`` section from a profile YAML."""
    if not path:
        return {}
    import yaml

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"profile {path} not found")
    raw = yaml.safe_load(p.read_text()) or {}
    d: dict = {}
    if isinstance(raw.get("run"), dict) and "seed" in raw["run"]:
        d["seed"] = int(raw["run"]["seed"])
    w = (raw.get("world") or {}).get("arith") or {}
    wk = {f.name for f in dataclasses.fields(arith.ArithConfig)}
    d["world"] = {k: v for k, v in w.items() if k in wk}
    d.update(raw.get("base_models") or {})
    return d


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("build-base-models", help="train the toy world's tokenizer + base models")
    _add_args(p)
    p.set_defaults(func=lambda a: _run(a))


def _add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default=None, help="profile YAML (run.seed, world.arith, optional base_models:)")
    p.add_argument("--out", default=None, help="output dir (default models/)")
    p.add_argument("--sizes", nargs="+", default=None, help=f"subset of {list(SIZES)}")
    p.add_argument("--jobs", type=int, default=None, help="concurrent trainings")
    p.add_argument("--steps-scale", type=float, default=None)
    p.add_argument("--force", action="store_true", help="retrain even when a model dir is complete")


def _run(a: argparse.Namespace) -> int:
    d = config_from_profile(a.profile)
    if a.out:
        d["out_dir"] = a.out
    if a.sizes:
        d["sizes"] = a.sizes
    if a.jobs:
        d["jobs"] = a.jobs
    if a.steps_scale:
        d["steps_scale"] = a.steps_scale
    cfg = config_from_dict(d)
    if a.force:
        for s in cfg.sizes:
            shutil.rmtree(Path(cfg.out_dir) / s, ignore_errors=True)
    for path in build_base_models(cfg):
        info = json.loads((path / "build_info.json").read_text())
        print(f"{path}: {info['n_params']} params, {info['steps']} steps, {info['train_seconds']} s")
    return 0


def main_build_base_models(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scrit build-base-models")
    _add_args(p)
    return _run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main_build_base_models())

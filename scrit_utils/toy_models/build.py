"""Build the toy world's base "instruct" models: tiny Qwen2 models trained from scratch.

Each base is a ``Qwen2ForCausalLM`` (from a ``Qwen2Config``) with the project's toy tokenizer
(:mod:`scrit_utils.toy_models.tokenizer`), saved with ``save_pretrained(safe_serialization=True)`` plus
tokenizer and generation config, so every HF tool (and the project's backends) loads it.

**One recipe for every size** (v2). The recipe is data: :data:`RECIPE`, a list of :class:`Phase`
(share of the size's steps, batch mixture, learning rate, warm-up, loss weights), run by one loop
(:func:`train_one`). Sizes differ only in width/depth (:class:`SizeSpec`) and in their step count,
which is scaled with the parameter count (:meth:`BuildConfig.steps_for`):
``steps = steps_base * (n_params / steps_ref_params) ** steps_exponent``.

The bases play the part an instruction-tuned LLM plays in the paper:

- **solvers**: ``solve`` batches are fresh ``train``-split problems -> reference solution;
- **critique format, not the no-reference skill**: the *direct* (no-reference) seed critiques are
  drawn from ``direct_world``, a harder world whose values the model never learned to compute
  (4-digit values). There it can learn the format and when to write ``wrong``, but not to compute
  its checked values, so in the study's world it leans on the student's values. That is the
  skill SCRIT has to teach: the model can solve a step, yet without a reference its critique
  does not use that ability (measured as the headroom column of ``results/tables/base_models.md``);
- **a good critic with a reference**: *contrastive* seed critiques from the study's world and
  from ``copy_world`` (values it cannot compute, so only copying the reference lowers the loss);
- **compare drill**: step-critique lines ``42*3=126|129`` + `` wrong``/`` ok``, loss on the verdict.

Ground-truth critiques (:func:`scrit_utils.worlds.arith.seed_critiques`, ``seed`` split) are the
ONLY use of ground-truth step labels anywhere in the project.

**v3** (issue #24; ``recipe: v3``, ``configs/base_models/v3_world.yaml``): the same loop with one more batch kind,
``inject`` (the bug-injection instruction: the study's bug-injection prompt on a correct solution -> the world's
injected solution between the markers; :func:`scrit_utils.toy_models.data.inject_pair`), a step floor
(``min_train_steps``) so that every size is competent, and build plans (:func:`plan_from_dict`): several build
seeds sharing one tokenizer (``tokenizer_from``) and named variants, e.g. the critic size with a share of its
direct seed critiques drawn in-world (``direct_inworld_fraction``: a smaller reference gap).

Restartable per model: a model dir with ``build_info.json`` marked complete is skipped; a run that
dies resumes from ``<dir>.ckpt/`` (saved every ``ckpt_every`` steps; batches are a pure function of
(seed, model, step), so a resumed run sees the same batches and ends in the same weights).

Usage::

    from scrit_utils.toy_models.build import BuildConfig, build_base_models
    build_base_models(BuildConfig(out_dir="models", sizes=("toy-66k",)))
    # CLI (scrit_utils/toy_models/cli.py):  scrit build-base-models --profile configs/base_models/v2_world.yaml
    build_many([cfg for _, cfg in plan_from_dict({"recipe": "v3", "seeds": [0, 1], "out_dir": "m/seed{seed}"})])
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import shutil
import time
from pathlib import Path
from typing import Sequence

from scrit_utils.toy_models.data import Encoder, collate, encode_pools, inject_pair
from scrit_utils.toy_models.info import RECIPE_VERSION, _git_sha, _write_log, is_complete, is_current, steps_done
from scrit_utils.core.records import write_json
from scrit_utils.core.toy_recipe import (  # noqa: F401 (the recipe is data, on the core floor)
    BATCH_KINDS, RECIPE, RECIPE_V3, RECIPE_VERSIONS, RECIPES, SIZES, TOKENIZER_DIR, _HARD_WORLD, BuildConfig, Phase,
    SizeSpec)
from scrit_utils.worlds import arith
from scrit_utils.toy_models.tokenizer import build_tokenizer

# --- model + tokenizer ------------------------------------------------------------------
def ensure_tokenizer(cfg: BuildConfig):
    """Train (or load) the shared toy tokenizer under ``out_dir/tokenizer``; with ``tokenizer_from`` copy
    that one there instead (several builds, one tokenizer)."""
    from transformers import AutoTokenizer

    d = Path(cfg.out_dir) / TOKENIZER_DIR
    if not (d / "tokenizer.json").exists():
        if cfg.tokenizer_from:
            src = Path(cfg.tokenizer_from)
            if not (src / "tokenizer.json").exists():
                raise FileNotFoundError(f"base_models.tokenizer_from: {src} has no tokenizer.json")
            shutil.copytree(src, d, dirs_exist_ok=True)
        else:
            build_tokenizer(d, seed=cfg.seed, vocab_size=cfg.vocab_size, config=cfg.world)
    return AutoTokenizer.from_pretrained(str(d))


def make_model(spec: SizeSpec, tok, seed: int, kv_heads: int | None = None):
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    kv = spec.heads if kv_heads is None else kv_heads
    if kv < 1 or spec.heads % kv:
        raise ValueError(f"base_models.kv_heads = {kv_heads}: must divide {spec.name}'s {spec.heads} attention heads")
    conf = Qwen2Config(
        vocab_size=len(tok), hidden_size=spec.hidden, intermediate_size=spec.intermediate,
        num_hidden_layers=spec.layers, num_attention_heads=spec.heads, num_key_value_heads=kv,
        max_position_embeddings=1024, rope_theta=10000.0, tie_word_embeddings=True, bos_token_id=None,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, use_cache=True,
    )
    conf._attn_implementation = "sdpa"
    torch.manual_seed(seed)
    return Qwen2ForCausalLM(conf)


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def seed_examples(cfg: BuildConfig) -> dict[str, list]:
    """The seed of ground-truth critiques per format (module doc): direct from ``direct_world`` (a share
    ``direct_inworld_fraction`` from the study's world instead, its own draw); contrastive from the study's
    world plus ``n_seed_copy`` from ``copy_world`` (independent draws)."""
    def draw(n: int, world: arith.ArithConfig, stream: str, mode: str) -> list:
        if n <= 0:
            return []
        # seed_critiques draws n direct + n contrastive problems; a stream per pool keeps pools independent
        return [e for e in arith.seed_critiques(cfg.seed, n, world, cfg.seed_wrong_fraction, stream=stream)
                if e.mode == mode]

    n_inworld = round(cfg.direct_inworld_fraction * cfg.n_seed_direct)  # 0 in v2/v3: the same draw as before
    return {"direct": draw(cfg.n_seed_direct - n_inworld, cfg.direct_world, "seed-direct", "direct")
            + draw(n_inworld, cfg.world, "seed-direct-inworld", "direct"),
            "contrastive": draw(cfg.n_seed_contrastive, cfg.world, "seed-contrastive", "contrastive")
            + draw(cfg.n_seed_copy, cfg.copy_world, "seed-copy", "contrastive")}


def make_batch(cfg: BuildConfig, phase: Phase, enc: Encoder, pools: dict, name: str, step: int):
    """The batch of one step: a pure function of (seed, model name, step) and the phase's mixture."""
    rng = random.Random(f"{cfg.seed}/{name}/step{step}")
    kind = rng.choices(BATCH_KINDS, weights=phase.mix)[0]
    if kind == "solve":
        probs = arith.generate_problems(cfg.seed * 1_000_003 + step, cfg.solve_batch, "train", cfg.world,
                                        stream=f"solve/{name}")
        items = [enc.pair(arith.solve_messages(p), p.reference_solution) for p in probs]
    elif kind == "inject":  # the bug-injection instruction on fresh train-split problems (v3)
        probs = arith.generate_problems(cfg.seed * 1_000_003 + step, cfg.inject_batch, "train", cfg.world,
                                        stream=f"inject/{name}")
        items = []
        for p in probs:
            msgs, target, _ = inject_pair(p, random.Random(f"{cfg.seed}/{name}/inject/{step}/{p.id}"))
            items.append(enc.pair(msgs, target))
    elif kind == "drill":
        items = [enc.drill(arith.drill_lines(rng, cfg.drill_lines_per_seq, cfg.world)) for _ in range(cfg.drill_batch)]
    else:
        pool = pools[kind]
        if not pool:
            raise ValueError(f"base_models: phase {phase.name!r} mixes {kind!r} batches but the {kind} seed is empty")
        items = [pool[i] for i in rng.sample(range(len(pool)), min(cfg.seed_batch, len(pool)))]
    return kind, items


# --- training -------------------------------------------------------------------------------
def lr_at(j: int, n: int, phase: Phase, min_lr_ratio: float) -> float:
    """Learning rate at step ``j`` of a phase of ``n`` steps: linear warm-up, then cosine decay."""
    if j < phase.warmup:
        return phase.lr * (j + 1) / phase.warmup
    prog = (j - phase.warmup) / max(1, n - phase.warmup)
    return phase.lr * (min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, prog))))


class _Run:
    """The state of one build: model, optimizer of the current phase, log; checkpointed to ``<dir>.ckpt``."""

    def __init__(self, cfg: BuildConfig, size: str):
        import torch

        self.cfg, self.size = cfg, size
        self.out = Path(cfg.out_dir) / size
        self.ckpt = Path(str(self.out) + ".ckpt")
        self.tok = ensure_tokenizer(cfg)
        self.model = make_model(SIZES[size], self.tok, cfg.seed, cfg.kv_heads)
        self.total = cfg.steps_for(n_params(self.model))
        self.bounds = cfg.phase_bounds(self.total)
        self.step, self.log, self.elapsed, self.opt_state = 0, [], 0.0, None
        if (self.ckpt / "state.pt").exists():
            st = torch.load(self.ckpt / "state.pt", weights_only=False)
            self.model.load_state_dict(st["model"])
            self.step, self.log, self.elapsed, self.opt_state = st["step"], st["log"], st["elapsed"], st["opt"]

    def optimizer(self, resume: bool):
        import torch

        opt = torch.optim.AdamW(self.model.parameters(), lr=1e-3, betas=(0.9, 0.98), weight_decay=self.cfg.weight_decay)
        if resume and self.opt_state is not None:
            opt.load_state_dict(self.opt_state)
        self.opt_state = None
        return opt

    def save_ckpt(self, opt, elapsed: float) -> None:
        import torch

        self.ckpt.mkdir(parents=True, exist_ok=True)
        torch.save({"model": self.model.state_dict(), "opt": opt.state_dict(), "step": self.step, "log": self.log,
                    "elapsed": elapsed}, self.ckpt / "state.tmp")
        os.replace(self.ckpt / "state.tmp", self.ckpt / "state.pt")


def train_one(cfg: BuildConfig, size: str, progress: bool = True, stop_after: int | None = None) -> Path | None:
    """Train one base model into ``out_dir/<size>`` by running every phase of ``cfg.recipe`` (skipped when complete).

    ``stop_after`` (tests) simulates a crash: stop right after step ``stop_after``'s checkpoint.
    """
    import torch
    from tqdm.auto import tqdm

    if size not in SIZES:
        raise ValueError(f"unknown base model size {size!r}; known: {list(SIZES)}")
    out = Path(cfg.out_dir) / size
    if is_current(out, cfg.recipe_version):
        return out
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    run = _Run(cfg, size)
    examples = seed_examples(cfg)
    # the log has a loss column per batch kind the recipe mixes (v2: the four it always had)
    kinds = [k for i, k in enumerate(BATCH_KINDS) if any(p.mix[i] > 0 for p in cfg.recipe)]
    t0 = time.time()
    bar = tqdm(total=run.total, initial=run.step, desc=size, disable=not progress, mininterval=5)
    for phase, (lo, hi) in zip(cfg.recipe, run.bounds):
        if run.step >= hi:
            continue
        enc = Encoder(run.tok, phase.verdict_weight, phase.copy_weight, phase.ref_weight)
        pools = encode_pools(examples, enc)
        opt = run.optimizer(resume=run.step > lo)  # a fresh AdamW per phase; a resumed phase keeps its state
        run.model.train()
        acc: dict[str, list[float]] = {}
        while run.step < hi:
            loss_kind, loss = _train_step(cfg, phase, enc, pools, run, opt, lo, hi)
            acc.setdefault(loss_kind, []).append(loss)
            run.step += 1
            bar.update(1)
            if run.step % cfg.log_every == 0 or run.step == hi:
                run.log.append({"step": run.step, "phase": phase.name, "elapsed_s": round(run.elapsed + time.time() - t0, 1),
                                "lr": round(lr_at(run.step - 1 - lo, hi - lo, phase, cfg.min_lr_ratio), 6),
                                **{f"loss_{k}": round(sum(acc[k]) / len(acc[k]), 4) if acc.get(k) else None
                                   for k in kinds}})
                acc = {}
            if run.step % cfg.ckpt_every == 0 and run.step < run.total:
                run.save_ckpt(opt, run.elapsed + time.time() - t0)
            if stop_after is not None and run.step >= stop_after:
                bar.close()
                return None
    bar.close()
    _save_model(cfg, run, run.elapsed + time.time() - t0)
    return out


def _train_step(cfg: BuildConfig, phase: Phase, enc: Encoder, pools: dict, run: _Run, opt, lo: int, hi: int):
    import torch

    kind, items = make_batch(cfg, phase, enc, pools, run.size, run.step)
    ids, att, wts = collate(items, enc.pad)
    for g in opt.param_groups:
        g["lr"] = lr_at(run.step - lo, hi - lo, phase, cfg.min_lr_ratio)
    logits = run.model(input_ids=ids, attention_mask=att).logits[:, :-1]
    ce = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1), reduction="none")
    w = wts[:, 1:].reshape(-1)
    loss = (ce * w).sum() / w.sum().clamp(min=1.0)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg.grad_clip)
    opt.step()
    return kind, loss.item()


def _save_model(cfg: BuildConfig, run: _Run, train_s: float) -> None:
    import tokenizers
    import torch
    import transformers
    from transformers import GenerationConfig

    out, tok = run.out, run.tok
    run.model.eval()
    out.mkdir(parents=True, exist_ok=True)
    run.model.save_pretrained(str(out), safe_serialization=True)
    tok.save_pretrained(str(out))
    GenerationConfig(eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, do_sample=False,
                     max_new_tokens=512).save_pretrained(str(out))
    _write_log(out, run.log)
    write_json(out / "build_info.json", {
        "recipe_version": cfg.recipe_version,
        "recipe_name": cfg.recipe_name,
        "size": dataclasses.asdict(SIZES[run.size]),
        "steps": run.total,
        "phases": [{"name": p.name, "start": lo, "end": hi} for p, (lo, hi) in zip(cfg.recipe, run.bounds)],
        "n_params": n_params(run.model),
        "train_seconds": round(train_s, 1),
        "build_config": _cfg_dict(cfg),
        "seed_critiques": {"direct": cfg.n_seed_direct,
                           "direct_inworld": round(cfg.direct_inworld_fraction * cfg.n_seed_direct),
                           "contrastive": cfg.n_seed_contrastive,
                           "copy_contrastive": cfg.n_seed_copy, "wrong_fraction": cfg.seed_wrong_fraction,
                           "split": "seed", "made_by": "scrit_utils.worlds.arith.seed_critiques"},
        "git_sha": _git_sha(),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "tokenizers": tokenizers.__version__},
        "complete": True,
    })
    shutil.rmtree(run.ckpt, ignore_errors=True)


def _cfg_dict(cfg: BuildConfig) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def _worker(args: tuple[dict, str]) -> str:
    cfg_d, size = args
    return str(train_one(config_from_dict(cfg_d), size, progress=True))


def _world(d, key: str) -> arith.ArithConfig:
    if isinstance(d, arith.ArithConfig):
        return d
    w = dict(d)
    if "ops" in w:
        w["ops"] = tuple(w["ops"])
    try:
        return arith.ArithConfig(**w)
    except TypeError as e:
        raise ValueError(f"base_models.{key}: {e}") from None


def _phase(d, i: int) -> Phase:
    if isinstance(d, Phase):
        return d
    known = {f.name for f in dataclasses.fields(Phase)}
    unknown = set(d) - known
    if unknown:
        raise ValueError(f"base_models.recipe[{i}]: unknown key(s) {sorted(unknown)}; known: {sorted(known)}")
    d = dict(d)
    if "mix" in d:
        d["mix"] = tuple(float(x) for x in d["mix"])
    try:
        return Phase(**d)
    except TypeError as e:
        raise ValueError(f"base_models.recipe[{i}]: {e}") from None


def config_from_dict(d: dict) -> BuildConfig:
    """A :class:`BuildConfig` from plain data (a profile's ``base_models:`` section, ``build_info``)."""
    d = dict(d)
    known = {f.name for f in dataclasses.fields(BuildConfig)}
    unknown = set(d) - known
    if unknown:
        raise ValueError(f"base_models: unknown key(s) {sorted(unknown)}; known: {sorted(known)}")
    for key in ("world", "copy_world", "direct_world"):
        if key in d:
            d[key] = _world(d[key], key)
    if "recipe" in d and not isinstance(d["recipe"], str):  # a name (recipe: v3) is resolved by BuildConfig
        d["recipe"] = tuple(_phase(p, i) for i, p in enumerate(d["recipe"]))
    if "sizes" in d:
        d["sizes"] = tuple(d["sizes"])
    return BuildConfig(**d)


def build_base_models(cfg: BuildConfig) -> list[Path]:
    """Tokenizer + every size in ``cfg.sizes``; up to ``cfg.jobs`` trainings run concurrently."""
    return build_many([cfg])


def build_many(cfgs: Sequence[BuildConfig]) -> list[Path]:
    """Every size of every build (a plan's seeds and variants) in one pool of ``jobs`` trainings, so the
    small ones fill in beside the large ones; model dirs current for their recipe version are skipped."""
    for cfg in cfgs:
        for s in cfg.sizes:
            if s not in SIZES:
                raise ValueError(f"unknown base model size {s!r}; known: {list(SIZES)}")
    for cfg in cfgs:
        ensure_tokenizer(cfg)
    todo = [(cfg, s) for cfg in cfgs for s in cfg.sizes if not is_current(Path(cfg.out_dir) / s, cfg.recipe_version)]
    # most expensive first so the greedy schedule balances the workers (stable: plan order within a size)
    todo.sort(key=lambda t: -SIZES[t[1]].hidden ** 2 * SIZES[t[1]].layers)
    jobs = min((c.jobs for c in cfgs), default=1)
    if jobs <= 1 or len(todo) <= 1:
        for cfg, s in todo:
            train_one(cfg, s)
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as ex:
            list(ex.map(_worker, [(_cfg_dict(cfg), s) for cfg, s in todo]))
    return [Path(cfg.out_dir) / s for cfg in cfgs for s in cfg.sizes]


# --- build plans: several build seeds and named variants (a profile's base_models.seeds / .variants) ------------
PLAN_KEYS = ("seeds", "variants")


def plan_from_dict(d: dict, seeds: Sequence[int] | None = None, variants: Sequence[str] | None = None,
                   sizes: Sequence[str] | None = None) -> list[tuple[str, BuildConfig]]:
    """``(name, BuildConfig)`` of every build a profile asks for: the main build (``"main"``) and each named
    variant of ``base_models.variants`` (its keys over the main ones), each at every seed of
    ``base_models.seeds`` (a variant may list its own; default: the one ``seed``). ``out_dir`` names a seed's
    folder with ``{seed}`` (required for several seeds); a variant needs its own ``out_dir``, since a model dir
    is named by its size only. ``seeds`` / ``variants`` (CLI) replace the profile's lists (``variants=[]``: the main
    build only); ``sizes`` (CLI) keeps only those sizes of every build, dropping a build left with none."""
    d = dict(d)
    plan_seeds = d.pop("seeds", None)
    named = d.pop("variants", None) or {}
    if not isinstance(named, dict):
        raise ValueError(f"base_models.variants: expected a mapping of name -> settings, got {named!r}")
    if variants is not None:
        unknown = [v for v in variants if v not in named]
        if unknown:
            raise ValueError(f"unknown variant(s) {unknown}; the profile's base_models.variants: {list(named)}")
        named = {v: named[v] for v in variants}
    plan: list[tuple[str, BuildConfig]] = []
    owner: dict[Path, str] = {}
    for name, over in [("main", {}), *named.items()]:
        where = "base_models" if name == "main" else f"base_models.variants.{name}"
        if not isinstance(over, dict):
            raise ValueError(f"{where}: expected a mapping of settings, got {over!r}")
        over = dict(over)
        own_seeds = over.pop("seeds", plan_seeds)
        s_list = list(dict.fromkeys(int(x) for x in (seeds if seeds is not None else own_seeds or [d.get("seed", 0)])))
        template = str(over.get("out_dir", d.get("out_dir", "models")))
        if len(s_list) > 1 and "{seed}" not in template:
            raise ValueError(f"{where}.out_dir: {template!r} needs a {{seed}} placeholder to hold seeds {s_list}")
        for seed in s_list:
            try:
                cfg = config_from_dict({**d, **over, "seed": seed, "out_dir": template.replace("{seed}", str(seed))})
            except ValueError as e:
                raise ValueError(f"{where}: {e}") from None
            if sizes is not None:
                cfg = dataclasses.replace(cfg, sizes=tuple(s for s in cfg.sizes if s in sizes))
                if not cfg.sizes:
                    continue
            for size in cfg.sizes:
                key = Path(cfg.out_dir) / size
                if owner.setdefault(key, name) != name:
                    raise ValueError(f"{where}.out_dir: {key} is also built by {owner[key]!r}; give each its own out_dir")
            plan.append((name, cfg))
    return plan

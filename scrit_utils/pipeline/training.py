"""Stage 04: supervised fine-tuning of the critic on the self-training set, then base vs trained.

Training (:func:`train`) uses TRL's ``SFTTrainer`` on *prompt/completion* data (prompt = the
direct-critic chat messages, completion = the critique), so the loss is on the completion only.
``training.use_lora`` picks full fine-tuning or LoRA (PEFT; the ``training.lora`` section uses
PEFT's key names). The fine-tuned critic is written as a normal HF model directory
(``model/``: config, safetensors weights, tokenizer); with LoRA the adapter is saved to
``adapter/`` and the merged model to ``model/``. Profile keys are TRL ``SFTConfig`` names, except
``warmup_ratio``, which is passed as transformers 5's fractional ``warmup_steps``.

Evaluation (:func:`evaluate`) runs :mod:`scrit_utils.pipeline.benchmark_eval` for the base and the
trained critic on the world's benchmarks: CC-Acc in the three scenarios (deliberately incorrect,
balanced, the critic's own greedy solutions) and EI-F1 (original and strict), with bootstrap CIs.

Stages: ``04_train`` (model dir), ``04_eval_base`` (independent of training, so every sweep point
shares it) and ``04_eval_trained`` (``metrics.json``: base vs trained, with provenance).

Usage::

    from scrit_utils.pipeline import training
    st_train = training.run_train(cfg)
    metrics = training.run_eval(cfg)           # dict, also artifacts/04_eval_trained/<hash>/metrics.json
    # notebook 04 runs both and shows tables and figures through scrit_utils.study.loop.run(cfg)
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Sequence

from scrit_utils.core import artifacts, config as _config, inputs
from scrit_utils.critique import prompts
from scrit_utils import worlds
from scrit_utils.core.config import StudyConfig
from scrit_utils.core.records import SFTExample, write_json
from scrit_utils.pipeline import common, sft_fast, validation
from scrit_utils.core.records import CritiqueRecord
from scrit_utils.generation.transformers_backend import load_tokenizer
from scrit_utils.pipeline import benchmark_eval as critic_eval
from scrit_utils.pipeline import self_critic

TRAIN_STAGE = "04_train"
EVAL_BASE_STAGE = "04_eval_base"
EVAL_TRAINED_STAGE = "04_eval_trained"
VERSION = "3"  # 2: keys checked against what the stages read (models.generators, dtype, ...); 3: world.arith knobs
TRAIN_KEYS = ("models.critic", "models.critic_revision", "training")
EVAL_KEYS = (
    "run.seed",
    "world",
    "models.critic",
    *common.BACKEND_KEYS,  # includes "world" (benchmarks, decode rule)
    "generation.prompt_variant",
    "generation.evaluation",
    "evaluation",
)
#: the toy benchmark, one stage for every critic that is scored on it: it depends on the world and the item count,
#: never on the critic, so the base evaluations of every build and model size share one (before: each base
#: evaluation sampled its own copy, ~100 s of natural-error sampling apiece on the v3 core)
BENCH_STAGE = "04_benchmark"
BENCH_VERSION = "1"
BENCH_KEYS = ("run.seed", "world", "evaluation.n_items")  # world.arith: generators, split, sampling caps
MODEL_DIR = "model"
ADAPTER_DIR = "adapter"


def train_stage(cfg: StudyConfig) -> artifacts.Stage:
    return artifacts.stage(TRAIN_STAGE, cfg, TRAIN_KEYS, VERSION, upstream=[validation.stage(cfg)])


def bench_stage(cfg: StudyConfig) -> artifacts.Stage | None:
    """The stage that writes the world's benchmark (``bench/``), or None for a world that reads published ones."""
    if not worlds.get(inputs.raw(cfg)).builds_benchmarks:
        return None
    return artifacts.stage(BENCH_STAGE, cfg, BENCH_KEYS, BENCH_VERSION)


def run_bench_stage(st: artifacts.Stage | None) -> Path | None:
    """The benchmark folder of ``st`` (:func:`bench_stage`), written first if the stage has not finished."""
    if st is None:
        return None
    if not st.done:
        st.start_clock()
        summary = worlds.get(st.record(st.cfg)).build_benchmarks(st.dir / "bench")
        st.finish(counts={f"{k}_items": v["items"] for k, v in summary.get("claim_sets", {}).items()})
    return st.dir / "bench"


def bench_dir(eval_st: artifacts.Stage) -> Path | None:
    """Where an evaluation stage's benchmark lies: its benchmark stage's folder (run first if needed)."""
    return run_bench_stage(eval_st.upstream_stages.get(BENCH_STAGE))


def bench_folder(eval_dir: str | Path) -> Path:
    """The benchmark folder a *finished* base evaluation stage was scored on, from its manifest's upstream (the
    benchmark stage beside it under the same artifacts root); stages written before that stage: their own bench/."""
    eval_dir = Path(eval_dir)
    ups = json.loads((eval_dir / artifacts.MANIFEST).read_text()).get("upstream", {})
    if BENCH_STAGE in ups:
        return eval_dir.parent.parent / BENCH_STAGE / ups[BENCH_STAGE] / "bench"
    return eval_dir / "bench"


def eval_base_stage(cfg: StudyConfig) -> artifacts.Stage:
    b = bench_stage(cfg)
    return artifacts.stage(EVAL_BASE_STAGE, cfg, EVAL_KEYS, VERSION, upstream=[b] if b else [],
                           extra_key={"prompt_version": prompts.PROMPT_VERSION})


def eval_trained_stage(cfg: StudyConfig) -> artifacts.Stage:
    return artifacts.stage(
        EVAL_TRAINED_STAGE, cfg, EVAL_KEYS, VERSION, upstream=[train_stage(cfg), eval_base_stage(cfg)],
        extra_key={"prompt_version": prompts.PROMPT_VERSION},
    )


def stages(cfg: StudyConfig) -> list[artifacts.Stage]:
    b = bench_stage(cfg)
    return [train_stage(cfg), *([b] if b else []), eval_base_stage(cfg), eval_trained_stage(cfg)]


# --- training -----------------------------------------------------------------------------
def to_dataset(examples: Sequence[SFTExample]):
    """HF ``Dataset`` in TRL's conversational prompt/completion format."""
    from datasets import Dataset

    return Dataset.from_list([
        {"prompt": list(ex.prompt), "completion": [{"role": "assistant", "content": ex.completion}]}
        for ex in examples
    ])


def sft_config(cfg: StudyConfig, output_dir: Path):
    import torch
    from trl import SFTConfig

    t = cfg.training
    return SFTConfig(
        output_dir=str(output_dir),
        learning_rate=t.learning_rate,
        num_train_epochs=t.num_train_epochs,
        max_steps=t.max_steps if t.max_steps > 0 else -1,  # transformers trains 0 as one step, not epochs
        per_device_train_batch_size=t.per_device_train_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        warmup_steps=t.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        lr_scheduler_type=t.lr_scheduler_type,
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        max_length=t.max_length,
        logging_steps=t.logging_steps,
        seed=t.seed,
        data_seed=t.seed,
        bf16=t.bf16,
        gradient_checkpointing=t.gradient_checkpointing,
        completion_only_loss=True,
        packing=False,
        report_to="none",
        save_strategy="no",
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
        dataset_num_proc=None,
    )


def lora_config(cfg: StudyConfig):
    from peft import LoraConfig

    lc = cfg.training.lora
    tm = lc.target_modules if isinstance(lc.target_modules, str) else list(lc.target_modules)
    return LoraConfig(r=lc.r, lora_alpha=lc.lora_alpha, lora_dropout=lc.lora_dropout, target_modules=tm,
                      bias=lc.bias, task_type="CAUSAL_LM")


def load_critic(cfg: StudyConfig):
    """Base critic model + tokenizer (local dir or hub id; safetensors, no remote code)."""
    import torch
    from transformers import AutoModelForCausalLM


    ref = _config.model_ref(cfg.models.critic)
    inputs.record_model(ref)
    tok = load_tokenizer(ref, False, cfg.models.critic_revision)
    dtype = torch.bfloat16 if cfg.training.bf16 else torch.float32
    model = AutoModelForCausalLM.from_pretrained(
        ref, revision=cfg.models.critic_revision, dtype=dtype, trust_remote_code=False, use_safetensors=True
    )
    return model, tok


def make_trainer(cfg: StudyConfig, st: artifacts.Stage, examples: Sequence[SFTExample]):
    """``(SFTTrainer, tokenizer)`` for the base critic on ``examples`` (full or LoRA)."""
    from trl import SFTTrainer

    model, tok = load_critic(cfg)
    args = sft_config(cfg, st.path("trainer"))
    trainer_cls = SFTTrainer
    if cfg.training.padding_free and sft_fast.usable(cfg, examples, tok):  # same losses, no padding (sft_fast.py)
        sft_fast.apply(model, args)
        trainer_cls = sft_fast.trainer_class(cfg)  # training.fused_lm_head: false: the loss from the logits
    peft_cfg = lora_config(cfg) if cfg.training.use_lora else None
    trainer = trainer_cls(model=model, args=args, train_dataset=to_dataset(examples), processing_class=tok,
                          peft_config=peft_cfg)
    _log_lines_to_stderr(trainer)
    return trainer, tok


def _log_lines_to_stderr(trainer) -> None:
    """The Trainer's per-log lines (``{'loss': ...}``) go to stderr beside its progress bar: its
    ProgressCallback writes them with ``tqdm.write``, i.e. to stdout, which a saved notebook keeps
    (``scrit run`` routes stderr to the terminal, see :mod:`scrit_utils.core.notebook_env`)."""
    import sys

    from transformers.trainer_callback import ProgressCallback

    class StderrLogProgress(ProgressCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            bar = self.training_bar
            if bar is None:
                return
            write = bar.write
            bar.write = lambda s, **kw: write(s, file=sys.stderr, **kw)  # instance attribute shadows the classmethod
            try:
                super().on_log(args, state, control, logs=logs, **kwargs)
            finally:
                del bar.write

    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(StderrLogProgress)


def train(cfg: StudyConfig, st: artifacts.Stage, examples: Sequence[SFTExample]) -> dict:
    """Fine-tune and save ``model/`` (and ``adapter/`` with LoRA); returns training stats."""
    if not examples:
        raise ValueError(
            f"{TRAIN_STAGE}: the self-training set is empty (no critique passed validation); "
            "enlarge data/self_critique or loosen validation checks"
        )
    trainer, tok = make_trainer(cfg, st, examples)
    t0 = time.time()
    result = trainer.train()
    wall = time.time() - t0
    out = st.path(MODEL_DIR)
    trained = trainer.model
    if cfg.training.use_lora:
        trained.save_pretrained(st.path(ADAPTER_DIR), safe_serialization=True)
        tok.save_pretrained(st.path(ADAPTER_DIR))
        trained = trained.merge_and_unload()
    trained.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    gen_cfg = Path(_config.model_ref(cfg.models.critic)) / "generation_config.json"
    if gen_cfg.exists() and not (out / "generation_config.json").exists():
        shutil.copy(gen_cfg, out / "generation_config.json")
    shutil.rmtree(st.dir / "trainer", ignore_errors=True)  # no optimizer checkpoints kept
    log = [r for r in trainer.state.log_history if "loss" in r]
    write_json(st.path("train_log.json"), trainer.state.log_history)
    return {
        "examples": len(examples),
        "examples_correct": sum(e.label_correct for e in examples),
        "steps": int(trainer.state.global_step),
        "train_loss": float(result.training_loss),
        "first_logged_loss": log[0]["loss"] if log else None,
        "last_logged_loss": log[-1]["loss"] if log else None,
        "train_seconds": round(wall, 2),
        "use_lora": cfg.training.use_lora,
    }


def run_train(cfg: StudyConfig) -> artifacts.Stage:
    st = train_stage(cfg)
    if st.done:
        return st
    cfg = st.record(cfg)  # the stage computes with a view that checks its key (scrit_utils.core.inputs)
    common.setup_torch(cfg)
    common.release_backends()  # no generation engine keeps GPU memory while the trainer needs it
    sft = validation.load_sft(st.up(validation.STAGE))
    stats = train(cfg, st, sft)
    st.finish(counts=stats)
    return st


def trained_model_dir(st: artifacts.Stage) -> Path:
    return st.dir / MODEL_DIR


# --- evaluation -----------------------------------------------------------------------------
# Benchmark items are uniform dicts: id, task, question, gt, solution (text shown to the critic),
# original_correct (CC scenarios), label (ProcessBench: 0-based first wrong paragraph, -1 if none).
def _cap(items: list[dict], n: int | None, seed: int, tag: str) -> list[dict]:
    """At most ``n`` items per task, a seeded sample (order kept)."""
    import random

    if n is None:
        return items
    out = []
    for task in dict.fromkeys(it["task"] for it in items):
        group = [it for it in items if it["task"] == task]
        if len(group) > n:
            keep = set(random.Random(f"{seed}/{tag}/{task}").sample(range(len(group)), n))
            group = [it for i, it in enumerate(group) if i in keep]
        out += group
    return out


def benchmark_items(cfg: StudyConfig, bench_dir: Path | None) -> dict[str, list[dict]]:
    """``{"wrong": [...], "mix": [...], "processbench": [...]}`` for the profile's benchmarks: the world's
    items (:meth:`scrit_utils.worlds.base.World.benchmark_items`), at most ``evaluation.n_items`` per task."""
    items = worlds.get(cfg).benchmark_items(bench_dir)
    return {k: _cap(v, cfg.evaluation.n_items, cfg.run.seed, k) for k, v in items.items()}


def eval_config(cfg: StudyConfig):
    """The :class:`critic_eval.CriticEvalConfig` of stage 04: the direct (no-reference) prompt,
    ``generation.evaluation`` decoding for critiques and own solutions, per-item seeds from
    ``run.seed``, the profile's bootstrap."""
    b = cfg.evaluation.bootstrap
    params = common.sampling(cfg.generation.evaluation)
    return critic_eval.CriticEvalConfig(mode="direct", variant=cfg.generation.prompt_variant, params=params,
                                        solve_params=params, seed=cfg.run.seed, n_boot=b.n_resamples,
                                        boot_seed=b.seed, progress=False)


def recorded_backends(cfg: StudyConfig, st: artifacts.Stage, model: str, sets: dict[str, list]):
    """``backend_for(name)`` for :func:`critic_eval.evaluate`: each set's texts go to its own
    resumable file in ``st`` -- ``critiques_<set>.jsonl`` (:class:`CritiqueRecord`, read back by
    :mod:`scrit_utils.study.item_scores`) and ``own_solutions.jsonl`` (``{id, text}``) for the solutions."""
    backend = common.GreedyMemoBackend(common.make_backend(cfg, model))  # a prompt shared by two sets: generated once

    def backend_for(name: str) -> common.ResumableBackend:
        if name == "own_solve":
            return common.ResumableBackend(backend, st.jsonl("own_solutions.jsonl"),
                                           lambda r, text: {"id": r.id, "text": text},
                                           cfg.generation.batch_size, "own greedy solutions")
        task = {str(it["id"]): it["task"] for it in sets[name]}
        return common.ResumableBackend(
            backend, st.jsonl(f"critiques_{name}.jsonl", CritiqueRecord),
            lambda r, text: self_critic.make_record(r.id, r.id, "direct", model, r.messages, text, {"task": task[r.id]}),
            cfg.generation.batch_size, f"eval critiques [{name}]")

    return backend_for


def prefetch_critiques(backend_for, sets: dict[str, list], ecfg) -> None:
    """With worker processes or continuous batching (``parallel`` > 1), every set's critiques in one queue
    (:func:`common.generate_files_resumable`), into the files :func:`critic_eval.evaluate` then reads back without
    generating: its sets, one call each, are a few hundred critiques, too few to keep two workers' rows full. The
    requests are :func:`critic_eval.run_critiques`' own (same ids, prompts and seeds)."""
    rbs = {name: backend_for(name) for name in sets}
    inner = next(iter(rbs.values())).backend if rbs else None
    if inner is None or getattr(inner, "parallel", 1) < 2:
        return
    files = []
    for name, rb in rbs.items():
        reqs, _ = critic_eval.critique_requests(critic_eval.items_from(sets[name]), ecfg,
                                                stage=critic_eval.scenario_stage(name))
        files.append(common.ResumableSet(rb.out, reqs, lambda r: r.id, lambda r: r, rb.record, rb.chunk_size))
    common.generate_files_resumable(inner, files, ecfg.params, desc="eval critiques [all sets]")


def own_item_dict(it) -> dict:
    """An own-solution item as ``own_items.json`` stores it (the benchmark item's fields)."""
    return {"id": it.id, "task": it.task, "question": it.question, "gt": it.gt, "solution": it.solution,
            "original_correct": it.original_correct}


def evaluate(cfg: StudyConfig, st: artifacts.Stage, model: str, label: str, base_st: artifacts.Stage | None = None) -> dict:
    """Score one critic on every scenario and ProcessBench through :func:`critic_eval.evaluate`;
    the critiques are saved in ``st``.

    Scenario "own" is the *base* critic's solutions to the balanced set's questions
    (:func:`critic_eval.own_solutions`, written to ``own_items.json`` by the base evaluation);
    ``base_st`` (for the trained critic) supplies them and the toy benchmarks, so both critics see
    exactly the same items.
    """
    # toy: the benchmark stage upstream of the base evaluation (shared by the trained one); None: published data
    items = benchmark_items(cfg, bench_dir(base_st or st))
    ecfg = eval_config(cfg)
    sets: dict[str, list] = {}
    backend_for = recorded_backends(cfg, st, model, sets)  # reads ``sets`` when a set is generated
    for scen in cfg.evaluation.scenarios:
        if scen != "own":
            sets[scen] = items[scen]
        elif base_st is not None:
            sets[scen] = json.loads((base_st.dir / "own_items.json").read_text())
        else:
            own, _ = critic_eval.own_solutions(backend_for("own_solve"), items["mix"], ecfg)
            sets[scen] = [own_item_dict(it) for it in own]
            write_json(st.path("own_items.json"), sets[scen])
    if items.get("processbench"):
        sets["processbench"] = items["processbench"]
    prefetch_critiques(backend_for, sets, ecfg)
    _, m = critic_eval.evaluate(common.make_backend(cfg, model), sets, ecfg, own_from=None,
                                backend_for=backend_for)
    common.release_backends()
    return {"critic": label, "model": model, "rows": critic_eval.metric_rows(m)}


def run_eval_stage(cfg: StudyConfig, st: artifacts.Stage, model: str, label: str,
                   base_st: artifacts.Stage | None = None) -> dict:
    """:func:`evaluate` into ``st`` (``metrics.json``, then the manifest) unless it has finished;
    the base evaluation and the sweeps' trained points run through here."""
    if not st.done:
        st.start_clock()
        cfg = st.record(cfg)  # the stage computes with a view that checks its key (scrit_utils.core.inputs)
        common.setup_torch(cfg)
        m = evaluate(cfg, st, model, label, base_st=base_st)
        write_json(st.path("metrics.json"), m)
        st.finish(counts={"metric_rows": len(m["rows"])})
    return json.loads((st.dir / "metrics.json").read_text())


def run_eval(cfg: StudyConfig) -> dict:
    """Evaluate base (cached across sweeps) and trained critic; writes ``metrics.json``."""
    common.setup_torch(cfg)
    base_st = eval_base_stage(cfg)
    base = run_eval_stage(cfg, base_st, cfg.models.critic, "base")
    st = eval_trained_stage(cfg)
    if st.done:
        return json.loads((st.dir / "metrics.json").read_text())
    tr = st.up(TRAIN_STAGE)
    trained = evaluate(st.record(cfg), st, str(trained_model_dir(tr)), "trained", base_st=base_st)
    metrics = {
        "base": base,
        "trained": trained,
        "training": tr.manifest["counts"],
        "provenance": {  # where the result came from (the whole profile's hash), not an input of it
            **artifacts.provenance(cfg),
            "stages": {s.name: s.hash for s in stages(cfg)},
            "upstream": {"03_self_validation": validation.stage(cfg).hash},
        },
    }
    write_json(st.path("metrics.json"), metrics)
    st.finish(counts={"metric_rows": len(trained["rows"])})
    return metrics

"""Stage 04: supervised fine-tuning of the critic on the self-training set, then base vs trained.

Training (:func:`train`) uses TRL's ``SFTTrainer`` on *prompt/completion* data (prompt = the
direct-critic chat messages, completion = the critique), so the loss is on the completion only.
``training.use_lora`` picks full fine-tuning or LoRA (PEFT; the ``training.lora`` section uses
PEFT's key names). The fine-tuned critic is written as a normal HF model directory
(``model/``: config, safetensors weights, tokenizer); with LoRA the adapter is saved to
``adapter/`` and the merged model to ``model/``. Profile keys are TRL ``SFTConfig`` names, except
``warmup_ratio``, which is passed as transformers 5's fractional ``warmup_steps``.

Evaluation (:func:`evaluate`) runs :mod:`scrit_utils.pipeline.critic_eval` for the base and the
trained critic on the world's benchmarks: CC-Acc in the three scenarios (deliberately incorrect,
balanced, the critic's own greedy solutions) and EI-F1 (original and strict), with bootstrap CIs.

Stages: ``04_train`` (model dir), ``04_eval_base`` (independent of training, so every sweep point
shares it) and ``04_eval_trained`` (``metrics.json``: base vs trained, with provenance).

Usage::

    from scrit_utils.pipeline import training
    st_train = training.run_train(cfg)
    metrics = training.run_eval(cfg)           # dict, also artifacts/04_eval_trained/<hash>/metrics.json
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Sequence

from .. import artifacts, config as _config, prompts
from ..config import StudyConfig
from ..records import Problem, SFTExample, write_json
from . import common, validation

TRAIN_STAGE = "04_train"
EVAL_BASE_STAGE = "04_eval_base"
EVAL_TRAINED_STAGE = "04_eval_trained"
VERSION = "1"
TRAIN_KEYS = ("models.critic", "training")
EVAL_KEYS = (
    "run.seed",
    "world",
    "models.critic",
    "generation.backend",
    "generation.prompt_variant",
    "generation.evaluation",
    "generation.verdict_rule",
    "evaluation",
)
MODEL_DIR = "model"
ADAPTER_DIR = "adapter"


def train_stage(cfg: StudyConfig) -> artifacts.Stage:
    return artifacts.stage(TRAIN_STAGE, cfg, TRAIN_KEYS, VERSION, upstream=[validation.stage(cfg)])


def eval_base_stage(cfg: StudyConfig) -> artifacts.Stage:
    return artifacts.stage(EVAL_BASE_STAGE, cfg, EVAL_KEYS, VERSION, extra_key={"prompt_version": prompts.PROMPT_VERSION})


def eval_trained_stage(cfg: StudyConfig) -> artifacts.Stage:
    return artifacts.stage(
        EVAL_TRAINED_STAGE, cfg, EVAL_KEYS, VERSION, upstream=[train_stage(cfg), eval_base_stage(cfg)],
        extra_key={"prompt_version": prompts.PROMPT_VERSION},
    )


def stages(cfg: StudyConfig) -> list[artifacts.Stage]:
    return [train_stage(cfg), eval_base_stage(cfg), eval_trained_stage(cfg)]


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
        max_steps=t.max_steps,
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

    from ..generation.transformers_backend import load_tokenizer

    ref = _config.model_ref(cfg.models.critic)
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
    peft_cfg = lora_config(cfg) if cfg.training.use_lora else None
    trainer = SFTTrainer(model=model, args=args, train_dataset=to_dataset(examples), processing_class=tok,
                         peft_config=peft_cfg)
    return trainer, tok


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
    common.setup_torch(cfg)
    sft = validation.load_sft(st.up(validation.STAGE))
    stats = train(cfg, st, sft)
    st.finish(counts=stats)
    return st


def trained_model_dir(st: artifacts.Stage) -> Path:
    return st.dir / MODEL_DIR


# --- evaluation -----------------------------------------------------------------------------
# Benchmark items are uniform dicts: id, task, question, gt, solution (text shown to the critic),
# original_correct (CC scenarios), label (ProcessBench: 0-based first wrong paragraph, -1 if none).
SCENARIO_FILES = {"wrong": "wrong_data", "mix": "mix_data"}


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


def build_toy_benchmarks(cfg: StudyConfig, bench_dir: Path) -> dict:
    """The toy world's RealCritic / ProcessBench-format sets (benchmark split, never trained on)."""
    import math

    from ..worlds import arith, arith_bench

    if (bench_dir / "summary.json").exists():
        return json.loads((bench_dir / "summary.json").read_text())
    a = cfg.world.arith
    acfg = arith.ArithConfig(min_steps=a.min_steps, max_steps=a.max_steps, max_start=a.max_start,
                             max_addend=a.max_addend, max_factor=a.max_factor, max_value=a.max_value, ops=tuple(a.ops))
    n = cfg.evaluation.n_items or 600
    gens = {g.name: _config.model_ref(g.path) for g in cfg.models.generators} if cfg.evaluation.natural_errors else None
    return arith_bench.write_toy_benchmarks(bench_dir, seed=cfg.run.seed, n_per_class=math.ceil(n / 2),
                                            generators=gens, config=acfg)


def benchmark_items(cfg: StudyConfig, bench_dir: Path | None) -> dict[str, list[dict]]:
    """``{"wrong": [...], "mix": [...], "processbench": [...]}`` for the profile's benchmarks."""
    ev = cfg.evaluation
    out: dict[str, list[dict]] = {}
    if cfg.world.kind == "arith":
        from ..worlds import arith

        for scen, folder in SCENARIO_FILES.items():
            path = bench_dir / "realcritic" / folder / "arith" / "test.jsonl"
            rows = [json.loads(l) for l in path.read_text().splitlines() if l.strip()]
            out[scen] = [{"id": f"arith/{r['idx']}", "task": "arith", "question": r["question"], "gt": str(r["gt"]),
                          "solution": r["reasoning"], "original_correct": bool(r.get("previous_score", [False])[0])}
                         for r in rows]
        pb = json.loads((bench_dir / "processbench" / "arith.json").read_text())
        out["processbench"] = [{
            "id": r["id"], "task": "arith", "question": r["problem"], "solution": prompts.format_solution(r["steps"]),
            "label": r["label"], "gt": str(arith.parse_problem(Problem(id="", question=r["problem"], answer="")).answer),
        } for r in pb]
    else:
        from ..worlds import real

        for scen, folder in SCENARIO_FILES.items():
            items = real.load_realcritic(str(_config.resolve_path(ev.realcritic_path)) if _config.looks_local(ev.realcritic_path)
                                         else ev.realcritic_path, folder, tasks=list(ev.benchmarks) or None)
            out[scen] = [{"id": it.id, "task": it.task, "question": it.question, "gt": it.gt, "solution": it.solution,
                          "original_correct": bool(it.label_correct)} for it in items]
        if ev.processbench:
            src = str(_config.resolve_path(ev.processbench_path)) if _config.looks_local(ev.processbench_path) else ev.processbench_path
            out["processbench"] = [{"id": f"{it.subset}/{it.id}", "task": it.subset, "question": it.problem,
                                    "solution": prompts.format_solution(it.steps), "label": it.label, "gt": it.answer}
                                   for it in real.load_processbench(src, list(ev.processbench))]
    return {k: _cap(v, ev.n_items, cfg.run.seed, k) for k, v in out.items()}


def own_solutions(cfg: StudyConfig, st: artifacts.Stage, items: list[dict]) -> list[dict]:
    """Scenario "own": the *base* critic's greedy solutions to the balanced set's questions."""
    from ..generation import GenerationRequest
    from ..grading import is_equivalent
    from ..records import iter_jsonl
    from . import data as data_mod

    out = st.jsonl("own_solutions.jsonl")
    backend = common.make_backend(cfg, cfg.models.critic)
    variant = cfg.generation.prompt_variant

    def record(it, text):
        steps, ans = data_mod.parse_solution(text)
        return {"id": it["id"], "text": text, "final_answer": ans,
                "correct": ans is not None and bool(is_equivalent(ans, it["gt"]))}

    common.generate_resumable(
        backend, out, items, item_id=lambda it: it["id"],
        request=lambda it: GenerationRequest(id=it["id"], messages=prompts.solve_messages(it["question"], variant), seed=0),
        record=record, params=common.sampling(cfg.generation.evaluation), chunk_size=cfg.generation.batch_size,
        desc="own greedy solutions",
    )
    out.finalize()
    sols = {r["id"]: r for r in iter_jsonl(out.path)}
    res = []
    for it in items:
        s = sols[it["id"]]
        steps, _ = data_mod.parse_solution(s["text"])
        res.append({**it, "solution": prompts.format_solution(steps) if steps else s["text"], "original_correct": s["correct"]})
    return res


def critique_set(cfg: StudyConfig, st: artifacts.Stage, model: str, name: str, items: list[dict]) -> list:
    """Greedy direct-prompt critiques of ``items`` by ``model`` (resumable, parsed)."""
    from ..generation import GenerationRequest
    from ..records import CritiqueRecord
    from . import critic_eval, self_critic

    out = st.jsonl(f"critiques_{name}.jsonl", CritiqueRecord)
    backend = common.make_backend(cfg, model)
    variant = cfg.generation.prompt_variant
    msgs = lambda it: critic_eval.critique_messages(critic_eval.as_item(it), "direct", variant)[0]  # noqa: E731
    common.generate_resumable(
        backend, out, items, item_id=lambda it: it["id"],
        request=lambda it: GenerationRequest(id=it["id"], messages=msgs(it), seed=0),
        record=lambda it, text: self_critic.make_record(it["id"], it["id"], "direct", model, msgs(it), text,
                                                        {"task": it["task"]}),
        params=common.sampling(cfg.generation.evaluation), chunk_size=cfg.generation.batch_size,
        desc=f"eval critiques [{name}]",
    )
    out.finalize()
    by_id = {r.id: r for r in out.records()}
    return [by_id[it["id"]] for it in items]


def _row(bench: str, metric: str, value: float, ci, n: int) -> dict:
    return {"benchmark": bench, "metric": metric, "value": float(value),
            "ci_low": None if ci is None else float(ci[0]), "ci_high": None if ci is None else float(ci[1]), "n": int(n)}


def score(cfg: StudyConfig, name: str, items: list[dict], crits: list) -> list[dict]:
    """Metric rows (per task and the unweighted mean) for one scenario or ProcessBench.

    Critiques are parsed and graded by :func:`critic_eval.score_critiques` and scored by
    :func:`critic_eval.cc_metrics` / :func:`critic_eval.processbench_metrics` (strict EI-F1 only
    when every ProcessBench item has a reference answer).
    """
    from . import critic_eval

    b = cfg.evaluation.bootstrap
    ecfg = critic_eval.CriticEvalConfig(mode="direct", variant=cfg.generation.prompt_variant,
                                        n_boot=b.n_resamples, boot_seed=b.seed, progress=False)
    scored = critic_eval.score_critiques(items, [c.text for c in crits], ecfg, scenario=name)
    rows = []
    if name != "processbench":
        summ = critic_eval.cc_metrics(scored, ecfg.n_boot, ecfg.boot_seed)
        for task, r in summ["per_task"].items():
            rows.append(_row(task, f"cc_acc_{name}", r["acc"], r["ci"], r["n"]))
        if len(summ["per_task"]) > 1:
            rows.append(_row("mean", f"cc_acc_{name}", summ["mean"]["acc"], summ["mean"]["ci"], summ["n"]))
        return rows
    pm = critic_eval.processbench_metrics(scored, ecfg.n_boot, ecfg.boot_seed)
    for key, metric in (("original", "ei_f1_original"), ("strict", "ei_f1_strict")):
        summ = pm[key]
        if summ is None:  # no reference answers: strict EI-F1 is not defined
            continue
        for task, r in summ["per_task"].items():
            rows.append(_row(task, metric, r["f1"], r["ci"], r["n"]))
        if len(summ["per_task"]) > 1:
            rows.append(_row("mean", metric, summ["mean"]["f1"], summ["mean"]["ci"], summ["n"]))
    return rows


def evaluate(cfg: StudyConfig, st: artifacts.Stage, model: str, label: str, base_st: artifacts.Stage | None = None) -> dict:
    """Score one critic on every scenario and ProcessBench; critiques are saved in ``st``.

    ``base_st`` (for the trained critic) supplies the toy benchmarks and the base model's own
    solutions, so both critics see exactly the same items.
    """
    src = base_st or st
    bench_dir = None
    if cfg.world.kind == "arith":
        bench_dir = src.dir / "bench"
        if base_st is None:
            build_toy_benchmarks(cfg, bench_dir)
    items = benchmark_items(cfg, bench_dir)
    rows = []
    for scen in cfg.evaluation.scenarios:
        if scen == "own":
            if base_st is None:
                its = own_solutions(cfg, st, items["mix"])
            else:
                its = json.loads((base_st.dir / "own_items.json").read_text())
            if base_st is None:
                write_json(st.path("own_items.json"), its)
        else:
            its = items[scen]
        rows += score(cfg, scen, its, critique_set(cfg, st, model, scen, its))
    if "processbench" in items and items["processbench"]:
        its = items["processbench"]
        rows += score(cfg, "processbench", its, critique_set(cfg, st, model, "processbench", its))
    common.release_backends()
    return {"critic": label, "model": model, "rows": rows}


def run_eval(cfg: StudyConfig) -> dict:
    """Evaluate base (cached across sweeps) and trained critic; writes ``metrics.json``."""
    common.setup_torch(cfg)
    base_st = eval_base_stage(cfg)
    if not base_st.done:
        m = evaluate(cfg, base_st, cfg.models.critic, "base")
        write_json(base_st.path("metrics.json"), m)
        base_st.finish(counts={"metric_rows": len(m["rows"])})
    st = eval_trained_stage(cfg)
    if st.done:
        return json.loads((st.dir / "metrics.json").read_text())
    tr = st.up(TRAIN_STAGE)
    trained = evaluate(cfg, st, str(trained_model_dir(tr)), "trained", base_st=base_st)
    base = json.loads((base_st.dir / "metrics.json").read_text())
    metrics = {
        "base": base,
        "trained": trained,
        "training": tr.manifest["counts"],
        "provenance": {
            **artifacts.provenance(cfg),
            "stages": {s.name: s.hash for s in stages(cfg)},
            "upstream": {"03_self_validation": validation.stage(cfg).hash},
        },
    }
    write_json(st.path("metrics.json"), metrics)
    st.finish(counts={"metric_rows": len(trained["rows"])})
    return metrics


# --- tables and figures ------------------------------------------------------------------------
def loss_figure(st: artifacts.Stage):
    """Training loss per logged step (from ``train_log.json``)."""
    import matplotlib.pyplot as plt

    common.plot_style()
    log = json.loads((st.dir / "train_log.json").read_text())
    pts = [(r["step"], r["loss"]) for r in log if "loss" in r and "step" in r]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    if pts:
        ax.plot(*zip(*pts), "-o", ms=3)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss on critique tokens")
    ax.set_title("Self-training loss")
    fig.tight_layout()
    return fig


def metrics_table(metrics: dict):
    """One row per (benchmark, metric): base and trained value with CI, and the difference."""
    import pandas as pd

    def rows(which: str) -> dict:
        return {(r["benchmark"], r["metric"]): r for r in metrics[which]["rows"]}

    base, trained = rows("base"), rows("trained")
    out = []
    for key in sorted(set(base) | set(trained)):
        b, t = base.get(key), trained.get(key)
        fmt = lambda r: "" if r is None or r.get("ci_low") is None else f"[{r['ci_low']:.1f}, {r['ci_high']:.1f}]"  # noqa: E731
        out.append({
            "benchmark": key[0], "metric": key[1],
            "n": (t or b)["n"],
            "base": None if b is None else b["value"], "base_95ci": fmt(b),
            "trained": None if t is None else t["value"], "trained_95ci": fmt(t),
            "delta": None if b is None or t is None else t["value"] - b["value"],
        })
    return pd.DataFrame(out, columns=["benchmark", "metric", "n", "base", "base_95ci", "trained", "trained_95ci", "delta"])


def metrics_figure(table):
    import matplotlib.pyplot as plt
    import numpy as np

    common.plot_style()
    labels = [f"{b}\n{m}" for b, m in zip(table["benchmark"], table["metric"])]
    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(max(5, 1.3 * len(labels)), 3.6))
    for off, col, name in ((-0.2, "base", "base"), (0.2, "trained", "+ SCRIT (trained)")):
        vals = table[col].astype(float).to_numpy()
        ci = table[f"{col}_95ci"].tolist()
        lo = [v - float(c.strip("[]").split(",")[0]) if c else 0 for v, c in zip(vals, ci)]
        hi = [float(c.strip("[]").split(",")[1]) - v if c else 0 for v, c in zip(vals, ci)]
        ax.bar(x + off, vals, width=0.4, yerr=[lo, hi], capsize=3, label=name)
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylabel("score (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Critic before and after self-training (95% bootstrap CI)")
    ax.legend()
    fig.tight_layout()
    return fig

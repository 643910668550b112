"""Measure a toy base model on the toy benchmarks (:mod:`scrit_utils.worlds.arith_bench`): solve
accuracy, CC-Acc (mix / wrong) and ProcessBench F1, without reference (direct prompt) and with
reference (contrastive prompt); every model output goes through
:func:`scrit_utils.critique.parsing.parse_critique` / ``extract_last_boxed``.

Usage::

    from scrit_utils.toy_models import base_eval
    row = base_eval.evaluate_base_model("models/toy-409k", "data/toy_benchmarks_v2")
    base_eval.write_base_model_table([row], "results/tables/base_models")
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from scrit_utils.core.records import atomic_write_text
from scrit_utils.critique.grading import is_equivalent
from scrit_utils.critique.parsing import extract_last_boxed
from scrit_utils.generation import GenerationRequest, SamplingParams
from scrit_utils.critique import prompts
from scrit_utils.pipeline import benchmark_eval as critic_eval
from scrit_utils.pipeline.benchmark_eval import EvalItem
from scrit_utils.toy_models.info import steps_done
from scrit_utils.worlds import arith
from scrit_utils.worlds.arith_bench import CRITIQUE_MAX_NEW, SOLVE_MAX_NEW, _backend, critique_items, sample_solutions
from scrit_utils.critique.metrics import processbench_f1
from scrit_utils.worlds import arith_diagnostics as ad


def _eval_items(set_name: str, rows: Sequence[dict]) -> list:
    """``critique_items`` rows as :class:`~scrit_utils.pipeline.benchmark_eval.EvalItem` (the reference
    for the contrastive prompt is the problem's own, else the computed one, as in ``arith.contrastive_messages``)."""
    out = []
    for i, r in enumerate(rows):
        p = r["problem"]
        ref = p.reference_solution or prompts.format_solution(arith.reference_steps(arith.parse_problem(p)))
        out.append(EvalItem(id=f"{set_name}/{i}", task=arith.WORLD, question=p.question, solution=r["solution"],
                            gt=str(p.answer), label=r["label"], reference=ref))
    return out


def evaluate_base_model(model_dir: str | Path, bench_dir: str | Path, seed: int = 0, n_solve: int = 300,
                        backend=None, config: arith.ArithConfig | None = None,
                        verdict_rules: Sequence[str | None] = (None, "compared_values"), n_items: int | None = None,
                        sample_temperature: float = 1.0, n_samples: int = 2) -> dict:
    """One model's row of the base-model table (point values; no bootstrap).

    - ``solve_acc``: greedy solve accuracy on ``n_solve`` held-out ``benchmark``-split problems;
      ``sampled_solve``: solutions sampled at ``sample_temperature`` (``n_samples`` per problem) that are
      right; ``both_labels``: problems with a right and a wrong sample; ``fluke_rate``: right final
      answer on a wrong step (:mod:`~scrit_utils.worlds.arith_diagnostics`);
    - CC-Acc (mix, wrong) and ProcessBench F1 without (``_noref``, direct prompt) and with (``_ref``,
      contrastive prompt) the reference, from the model's own verdicts; ``cc_gap`` = ref - noref on mix;
    - ``checked_*``: checked-value accuracy of those critiques (mix + ProcessBench items), all lines and
      first-error lines; ``own_step_acc*``: the model's own accuracy on the same steps; ``headroom`` =
      own step accuracy - no-reference checked-value accuracy on the first-error lines.

    Each entry of ``verdict_rules`` is one pass over the critique sets: ``None`` = the model's own verdict
    words (plain column names), a rule name = that decode-time rule on (columns suffixed ``_vr``, plus
    ``vr_overridden``: % of the verdict words it wrote that the rule changed).
    ``n_items`` caps each critique set (tests).
    """
    be = backend or _backend(model_dir)
    res: dict = {"model": Path(model_dir).name}
    solve_probs = arith.generate_problems(seed, n_solve, "benchmark", config, stream="toy-eval-solve")
    texts = be.generate([GenerationRequest(id=p.id, messages=arith.solve_messages(p)) for p in solve_probs],
                        SamplingParams(max_new_tokens=SOLVE_MAX_NEW), progress=False)
    res["solve_acc"] = 100 * sum(is_equivalent(extract_last_boxed(t), p.answer)
                                 for t, p in zip(texts, solve_probs)) / len(solve_probs)
    sampled = sample_solutions(solve_probs, {res["model"]: model_dir}, seed, sample_temperature, n_samples,
                               backend_factory=lambda _: be)
    res["sampled_solve"] = 100 * sum(bool(s.is_correct) for s in sampled) / len(sampled)
    labels: dict[str, set] = {}
    for s in sampled:
        labels.setdefault(s.problem_id, set()).add(bool(s.is_correct))
    res["both_labels"] = 100 * sum(len(v) == 2 for v in labels.values()) / len(solve_probs)
    res["fluke_rate"] = ad.fluke_rate(solve_probs, sampled)["fluke_rate"]
    items = {k: v[:n_items] for k, v in critique_items(bench_dir).items()}
    for rule in verdict_rules:
        res.update(_critique_columns(be, items, seed, rule))
    res["cc_gap"] = res["cc_mix_ref"] - res["cc_mix_noref"]
    checked = [it for name in ("mix_data", "processbench") for it in items[name]]
    probs = [it["problem"] for it in checked]
    steps = [arith.split_steps(it["solution"]) for it in checked]
    own = ad.own_step_accuracy(model_dir, probs, ad.step_targets(probs, steps))
    res["own_step_acc"], res["own_step_acc_error"] = own["own_step_acc"], own["own_step_acc_error"]
    res["headroom"] = res["own_step_acc_error"] - res["checked_acc_error_noref"]
    return res


def _critique_columns(be, items: dict, seed: int, rule: str | None) -> dict:
    """CC-Acc, ProcessBench F1 and checked-value accuracy without / with reference for one verdict rule."""
    sfx = "_vr" if rule else ""
    has_rule = hasattr(be, "decode_hook")  # only the transformers backend takes a decode hook
    if rule and not has_rule:
        raise ValueError(f"verdict rule {rule!r}: backend {getattr(be, 'name', be)!r} does not implement it")
    saved = be.decode_hook if has_rule else None
    res: dict = {}
    params = SamplingParams(max_new_tokens=CRITIQUE_MAX_NEW)
    try:
        if has_rule:
            be.decode_hook = arith.make_verdict_rule(rule, be.tokenizer)  # fresh stats per pass
        for mode in ("direct", "contrastive"):
            tag = ("noref" if mode == "direct" else "ref") + sfx
            cfg = critic_eval.CriticEvalConfig(mode=mode, variant="compact", params=params, seed=seed, progress=False)
            texts: dict[str, list[str]] = {}
            for set_name, its in items.items():
                rows = critic_eval.run_critiques(be, _eval_items(set_name, its), cfg, scenario=set_name)
                texts[set_name] = [r["text"] for r in rows]
                if set_name == "processbench":
                    m = processbench_f1([r["label"] for r in rows], [r["predicted_step"] for r in rows],
                                        pred_offset=1, label_offset=0)  # original ProcessBench F1
                    res[f"pb_f1_{tag}"] = m["f1"] / 100.0
                else:
                    short = "mix" if set_name == "mix_data" else "wrong"
                    res[f"cc_{short}_{tag}"] = 100 * sum(r["corrected_correct"] for r in rows) / len(rows)
            checked = [(it, t) for name in ("mix_data", "processbench") for it, t in zip(items[name], texts[name])]
            acc = ad.checked_value_accuracy([it["problem"] for it, _ in checked],
                                            [arith.split_steps(it["solution"]) for it, _ in checked],
                                            [t for _, t in checked])
            res[f"checked_acc_{tag}"], res[f"checked_acc_error_{tag}"] = acc["checked_acc"], acc["checked_acc_error"]
        if rule:
            stats = be.decode_hook.stats
            res["vr_overridden"] = 100 * stats["overridden"] / max(1, stats["verdicts"])
    finally:
        if has_rule:
            be.decode_hook = saved
    return res


def base_model_row(model_dir: str | Path, bench_dir: str | Path, seed: int = 0, n_solve: int = 300,
                   config: arith.ArithConfig | None = None, n_items: int | None = None,
                   sample_temperature: float = 1.0) -> dict:
    """One row of the base-model table: :func:`evaluate_base_model` plus size, training and eval time
    (``sample_T``: the temperature of the sampled-solve columns)."""
    import time

    t = time.time()
    r = evaluate_base_model(model_dir, bench_dir, seed=seed, n_solve=n_solve, config=config, n_items=n_items,
                            sample_temperature=sample_temperature)
    r = {"model": r.pop("model"), "sample_T": sample_temperature, **r}
    info = json.loads((Path(model_dir) / "build_info.json").read_text())
    r.update(n_params=info["n_params"], train_steps=steps_done(info), train_seconds=info["train_seconds"],
             eval_seconds=round(time.time() - t, 1))
    return r


def write_base_model_table(rows: list[dict], out_stem: str | Path) -> None:
    """``<stem>.csv`` + ``<stem>.md`` with one row per model."""
    cols = list(rows[0])
    def fmt(c: str, v) -> str:  # F1 columns are fractions (3 decimals); accuracies are percentages
        if isinstance(v, float):
            return f"{v:.3f}" if c.startswith("pb_f1") else f"{v:.1f}"
        return str(v)

    csv = [",".join(cols)] + [",".join(str(round(r[c], 4)) if isinstance(r[c], float) else str(r[c]) for c in cols) for r in rows]
    md = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    md += ["| " + " | ".join(fmt(c, r[c]) for c in cols) + " |" for r in rows]
    atomic_write_text(str(out_stem) + ".csv", "\n".join(csv) + "\n")
    atomic_write_text(str(out_stem) + ".md", "\n".join(md) + "\n")

"""Toy-world solution generators, held-out benchmarks and base-model measurement.

- :func:`sample_solutions`: base models sampled at a temperature write solutions with
  *natural* errors (through the project's Backend interface); each
  :class:`~scrit_utils.records.Solution` records which model wrote it (``generator``).
- :func:`write_toy_benchmarks`: ``benchmark``-split critique-correction sets in RealCritic's
  layout (``realcritic/mix_data/arith/test.jsonl``, ``realcritic/wrong_data/arith/test.jsonl``)
  and an error-identification set in ProcessBench's format (``processbench/arith.json``).
  Wrong solutions are model-sampled (natural errors, labelled by recomputing every step)
  where the generators produce enough cleanly-labelled ones, else injected; each row's
  ``model`` / ``generator`` field says which.
- :func:`evaluate_base_model`: solve accuracy, CC-Acc (mix / wrong) and ProcessBench F1,
  without reference (direct prompt) and with reference (contrastive prompt); every model
  output goes through :func:`scrit_utils.parsing.parse_critique` / ``extract_last_boxed``.

Usage::

    from scrit_utils.worlds import arith_bench
    arith_bench.write_toy_benchmarks("data/toy_bench", seed=0, n_per_class=100,
                                     generators={"toy-0.1m": "models/toy-0.1m"})
    row = arith_bench.evaluate_base_model("models/toy-0.6m", "data/toy_bench")
"""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Mapping, Sequence

from scrit_utils import prompts
from scrit_utils.grading import is_equivalent
from scrit_utils.generation import GenerationRequest, SamplingParams, derive_seed, get_backend
from scrit_utils.parsing import extract_last_boxed
from scrit_utils.records import Problem, Solution, atomic_write_text, stable_id, write_json
from scrit_utils.worlds import arith

SOLVE_MAX_NEW = 112  # longest toy reference solution is 100 tokens (incl. eos)
CRITIQUE_MAX_NEW = 300  # longest ground-truth critique is 264 tokens (contrastive)


def _backend(model_dir: str | Path, batch_size: int = 128):
    return get_backend("transformers", model=str(model_dir), device="cpu", batch_size=batch_size)


def solution_from_text(problem: Problem, text: str, generator: str, sample_idx: int = 0) -> Solution:
    """A :class:`Solution` from raw model text; correctness graded on the last ``\\boxed{}``."""
    steps = tuple(arith.split_steps(text))
    final = extract_last_boxed(text)
    return Solution(
        id=stable_id(problem.id, generator, sample_idx),
        problem_id=problem.id,
        generator=generator,
        steps=steps,
        final_answer=final,
        is_correct=is_equivalent(final, problem.answer),
        text=text,
        meta={"sample_idx": sample_idx},
    )


def sample_solutions(
    problems: Sequence[Problem],
    generators: Mapping[str, str | Path],
    seed: int,
    temperature: float = 0.8,
    n_samples: int = 1,
    backend_factory=None,
    progress: bool = False,
) -> list[Solution]:
    """Each generator model (name -> dir) writes ``n_samples`` solutions per problem."""
    make = backend_factory or _backend
    out: list[Solution] = []
    params = SamplingParams(max_new_tokens=SOLVE_MAX_NEW, temperature=temperature)
    for name, path in generators.items():
        backend = make(path)
        reqs = [
            GenerationRequest(id=f"{p.id}/{name}/{k}", messages=arith.solve_messages(p),
                              seed=derive_seed(seed, "solve", p.id, f"{name}/{k}"))
            for p in problems
            for k in range(n_samples)
        ]
        texts = backend.generate(reqs, params, progress=progress)
        it = iter(texts)
        for p in problems:
            for k in range(n_samples):
                out.append(solution_from_text(p, next(it), name, k))
    return out


# --- benchmarks -------------------------------------------------------------------------------
def _clean_wrong(problem: Problem, sol: Solution) -> bool:
    lab = arith.label_solution(problem, sol.steps)
    return (not sol.is_correct) and lab.clean and not lab.is_correct and sol.final_answer is not None


def _clean_correct(problem: Problem, sol: Solution) -> bool:
    return bool(sol.is_correct) and arith.label_solution(problem, sol.steps).is_correct


def _rc_row(idx: int, p: Problem, s: Solution, mix: bool) -> dict:
    """One RealCritic-format row (``previous_score`` only in the mix set)."""
    row = {
        "idx": idx,
        "question": p.question,
        "gt": p.answer,
        "reasoning": s.text if s.text else prompts.format_solution(s.steps),
        "pred": s.final_answer,
        "model": s.generator,
        "reference_solution": p.reference_solution,
    }
    if mix:
        row["previous_score"] = [bool(s.is_correct)]
    return row


def _pb_row(idx: int, p: Problem, s: Solution) -> dict:
    """One ProcessBench-format row; ``label`` is the 0-based first wrong step (-1: all right)."""
    lab = arith.label_solution(p, s.steps)
    return {
        "id": f"arith-{idx}",
        "generator": s.generator,
        "problem": p.question,
        "steps": list(s.steps),
        "final_answer_correct": bool(s.is_correct),
        "label": -1 if lab.is_correct else lab.first_error_step - 1,
        "reference_solution": p.reference_solution,
    }


class _Picker:
    """Chooses each benchmark solution: a cleanly labelled model sample when there is one, else the
    reference (correct) or an injected error (wrong); counts where each came from per set."""

    def __init__(self, natural: Mapping[str, list[Solution]], seed: int, rng: random.Random) -> None:
        self.natural, self.seed, self.rng = natural, seed, rng
        self.origins: dict[str, dict[str, int]] = {}

    def __call__(self, set_name: str, p: Problem, want_correct: bool) -> Solution:
        clean = _clean_correct if want_correct else _clean_wrong
        cands = [s for s in self.natural.get(p.id, []) if clean(p, s)]
        if cands:
            s, origin = cands[self.rng.randrange(len(cands))], "sampled"
        elif want_correct:
            s, origin = arith.reference_solution(p), "reference"
        else:
            s, origin = arith.inject_error(p, random.Random(f"{self.seed}/bench-inject/{p.id}")), "injected"
        counts = self.origins.setdefault(set_name, {})
        counts[origin] = counts.get(origin, 0) + 1
        return s


def write_toy_benchmarks(
    out_dir: str | Path,
    seed: int,
    n_per_class: int,
    generators: Mapping[str, str | Path] | None = None,
    config: arith.ArithConfig | None = None,
    temperature: float = 1.0,
    samples_per_problem: int = 2,
    split: str = "benchmark",
) -> dict:
    """Write the toy RealCritic (mix, wrong) and ProcessBench sets; returns a summary dict.

    Problems come from ``split`` (``benchmark``, or ``dev`` for pilots; neither is ever trained on). mix: ``n_per_class``
    correct + ``n_per_class`` wrong solutions; wrong: ``n_per_class`` wrong; ProcessBench:
    ``n_per_class`` correct + ``n_per_class`` erroneous. All on distinct problems. Correct
    solutions are model-sampled correct ones when available (else the reference); wrong ones are
    model-sampled with a cleanly-labelled first error when available (else injected).
    """
    cfg = config or arith.ArithConfig()
    n = n_per_class
    if split not in ("dev", "benchmark"):
        raise ValueError(f"toy benchmarks come from a held-out split (dev | benchmark), not {split!r}")
    probs = arith.generate_problems(seed, 5 * n, split, cfg, stream="toy-bench")
    natural: dict[str, list[Solution]] = {}
    if generators:
        for s in sample_solutions(probs, generators, seed, temperature, samples_per_problem):
            natural.setdefault(s.problem_id, []).append(s)
    rng = random.Random(f"{seed}/toy-bench")
    pick = _Picker(natural, seed, rng)
    order = list(range(2 * n))
    rng.shuffle(order)  # mix: problems 0..2n-1, the first n correct
    mix_rows = [_rc_row(j, probs[i], pick("mix", probs[i], i < n), mix=True) for j, i in enumerate(order)]
    wrong_rows = [_rc_row(j, p, pick("wrong", p, False), mix=False) for j, p in enumerate(probs[2 * n: 3 * n])]
    pb_idx = list(range(3 * n, 5 * n))
    rng.shuffle(pb_idx)
    pb_rows = [_pb_row(j, probs[i], pick("processbench", probs[i], i < 4 * n)) for j, i in enumerate(pb_idx)]
    out = Path(out_dir)
    for name, rows in (("mix_data", mix_rows), ("wrong_data", wrong_rows)):
        atomic_write_text(out / "realcritic" / name / "arith" / "test.jsonl",
                          "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    write_json(out / "processbench" / "arith.json", pb_rows)
    summary = {"seed": seed, "split": split, "n_per_class": n, "origins": pick.origins,
               "generators": {k: str(v) for k, v in (generators or {}).items()},
               "temperature": temperature, "samples_per_problem": samples_per_problem}
    write_json(out / "summary.json", summary)
    return summary


# --- measurement ----------------------------------------------------------------------------------
def _problem_of(question: str, reference: str | None, gt: str) -> Problem:
    return Problem(id=stable_id(arith.WORLD, question), question=question, answer=str(gt),
                   reference_solution=reference, source=arith.WORLD)




def critique_items(bench_dir: str | Path) -> dict[str, list[dict]]:
    """Benchmark rows as uniform items: problem, solution text, label, gt."""
    b = Path(bench_dir)
    items: dict[str, list[dict]] = {}
    for name in ("mix_data", "wrong_data"):
        rows = [json.loads(l) for l in (b / "realcritic" / name / "arith" / "test.jsonl").read_text().splitlines() if l]
        items[name] = [{"problem": _problem_of(r["question"], r.get("reference_solution"), r["gt"]),
                        "solution": r["reasoning"], "label": None} for r in rows]
    pb = json.loads((b / "processbench" / "arith.json").read_text())
    items["processbench"] = [{"problem": _problem_of(r["problem"], r.get("reference_solution"),
                                                     arith.parse_problem(_problem_of(r["problem"], None, "0")).answer),
                              "solution": prompts.format_solution(r["steps"]), "label": r["label"]} for r in pb]
    return items


def _eval_items(set_name: str, rows: Sequence[dict]) -> list:
    """``critique_items`` rows as :class:`~scrit_utils.pipeline.critic_eval.EvalItem` (the reference
    for the contrastive prompt is the problem's own, else the computed one, as in ``arith.contrastive_messages``)."""
    from scrit_utils.pipeline.critic_eval import EvalItem

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
    from scrit_utils.worlds import arith_diagnostics as ad

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
    from scrit_utils.evaluation import processbench_f1
    from scrit_utils.pipeline import critic_eval
    from scrit_utils.worlds import arith_diagnostics as ad

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
    from scrit_utils.base_models import steps_done

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

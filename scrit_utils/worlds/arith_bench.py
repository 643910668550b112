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
from scrit_utils.parsing import extract_last_boxed, parse_critique
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


def write_toy_benchmarks(
    out_dir: str | Path,
    seed: int,
    n_per_class: int,
    generators: Mapping[str, str | Path] | None = None,
    config: arith.ArithConfig | None = None,
    temperature: float = 1.0,
    samples_per_problem: int = 2,
) -> dict:
    """Write the toy RealCritic (mix, wrong) and ProcessBench sets; returns a summary dict.

    Problems come from the ``benchmark`` split (never seen in training). mix: ``n_per_class``
    correct + ``n_per_class`` wrong solutions; wrong: ``n_per_class`` wrong; ProcessBench:
    ``n_per_class`` correct + ``n_per_class`` erroneous. All on distinct problems. Correct
    solutions are model-sampled correct ones when available (else the reference); wrong ones are
    model-sampled with a cleanly-labelled first error when available (else injected).
    """
    cfg = config or arith.ArithConfig()
    n = n_per_class
    probs = arith.generate_problems(seed, 5 * n, "benchmark", cfg, stream="toy-bench")
    natural: dict[str, list[Solution]] = {}
    if generators:
        for s in sample_solutions(probs, generators, seed, temperature, samples_per_problem):
            natural.setdefault(s.problem_id, []).append(s)
    rng = random.Random(f"{seed}/toy-bench")

    def pick(p: Problem, want_correct: bool) -> tuple[Solution, str]:
        cands = [s for s in natural.get(p.id, []) if (_clean_correct(p, s) if want_correct else _clean_wrong(p, s))]
        if cands:
            return cands[rng.randrange(len(cands))], "sampled"
        if want_correct:
            return arith.reference_solution(p), "reference"
        return arith.inject_error(p, random.Random(f"{seed}/bench-inject/{p.id}")), "injected"

    origin_counts: dict[str, dict[str, int]] = {}

    def note(set_name: str, origin: str) -> None:
        origin_counts.setdefault(set_name, {}).setdefault(origin, 0)
        origin_counts[set_name][origin] += 1

    def rc_row(idx: int, p: Problem, s: Solution, mix: bool) -> dict:
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

    out = Path(out_dir)
    mix_rows, wrong_rows, pb_rows = [], [], []
    order = list(range(2 * n))
    rng.shuffle(order)
    for j, i in enumerate(order):  # mix: problems 0..2n-1, first n correct
        p = probs[i]
        s, origin = pick(p, want_correct=i < n)
        note("mix", origin)
        mix_rows.append(rc_row(j, p, s, mix=True))
    for j, p in enumerate(probs[2 * n : 3 * n]):
        s, origin = pick(p, want_correct=False)
        note("wrong", origin)
        wrong_rows.append(rc_row(j, p, s, mix=False))
    pb_idx = list(range(3 * n, 5 * n))
    rng.shuffle(pb_idx)
    for j, i in enumerate(pb_idx):
        p = probs[i]
        s, origin = pick(p, want_correct=i < 4 * n)
        note("processbench", origin)
        lab = arith.label_solution(p, s.steps)
        pb_rows.append({
            "id": f"arith-{j}",
            "generator": s.generator,
            "problem": p.question,
            "steps": list(s.steps),
            "final_answer_correct": bool(s.is_correct),
            "label": -1 if lab.is_correct else lab.first_error_step - 1,
            "reference_solution": p.reference_solution,
        })
    for name, rows in (("mix_data", mix_rows), ("wrong_data", wrong_rows)):
        atomic_write_text(out / "realcritic" / name / "arith" / "test.jsonl",
                          "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    write_json(out / "processbench" / "arith.json", pb_rows)
    summary = {"seed": seed, "n_per_class": n, "origins": origin_counts,
               "generators": {k: str(v) for k, v in (generators or {}).items()},
               "temperature": temperature, "samples_per_problem": samples_per_problem}
    write_json(out / "summary.json", summary)
    return summary


# --- measurement ----------------------------------------------------------------------------------
def _problem_of(question: str, reference: str | None, gt: str) -> Problem:
    return Problem(id=stable_id(arith.WORLD, question), question=question, answer=str(gt),
                   reference_solution=reference, source=arith.WORLD)




def rule_reading(c) -> int | None:
    """Diagnostic reading of a parsed critique: the first step whose two compared values differ.

    Returns a 1-based step, -1 when every compared pair matches, None when no step body
    carries a ``critic|student`` pair. Reported beside (never instead of) the model's own verdict.
    """
    seen = False
    for k, body in enumerate(c.step_critiques, start=1):
        m = arith.COMPARED_VALUES_RE.search(body)
        if not m:
            continue
        seen = True
        if m.group(1) != m.group(2):
            return k
    return -1 if seen else None


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
                        backend=None, config: arith.ArithConfig | None = None) -> dict:
    """Greedy solve accuracy + critique metrics without / with reference for one model.

    Critiques are written, parsed and graded by :func:`scrit_utils.pipeline.critic_eval.run_critiques`
    (compact prompts, greedy); this table reports point values only (no bootstrap).
    """
    from scrit_utils.evaluation import processbench_f1
    from scrit_utils.pipeline import critic_eval

    be = backend or _backend(model_dir)
    name = Path(model_dir).name
    res: dict = {"model": name}
    solve_probs = arith.generate_problems(seed, n_solve, "benchmark", config, stream="toy-eval-solve")
    texts = be.generate([GenerationRequest(id=p.id, messages=arith.solve_messages(p)) for p in solve_probs],
                        SamplingParams(max_new_tokens=SOLVE_MAX_NEW), progress=False)
    res["solve_acc"] = 100 * sum(is_equivalent(extract_last_boxed(t), p.answer)
                                 for t, p in zip(texts, solve_probs)) / len(solve_probs)
    items = {k: _eval_items(k, v) for k, v in critique_items(bench_dir).items()}
    params = SamplingParams(max_new_tokens=CRITIQUE_MAX_NEW)
    for mode in ("direct", "contrastive"):
        tag = "noref" if mode == "direct" else "ref"
        cfg = critic_eval.CriticEvalConfig(mode=mode, variant="compact", params=params, seed=seed, progress=False)
        for set_name, its in items.items():
            rows = critic_eval.run_critiques(be, its, cfg, scenario=set_name)
            if set_name == "processbench":
                labels = [r["label"] for r in rows]
                m = processbench_f1(labels, [r["predicted_step"] for r in rows],
                                    pred_offset=1, label_offset=0)  # original ProcessBench F1
                res[f"pb_acc_err_{tag}"] = m["error_acc"]
                res[f"pb_acc_ok_{tag}"] = m["correct_acc"]
                res[f"pb_f1_{tag}"] = m["f1"] / 100.0
                res[f"parse_ok_{tag}"] = 100 * sum(r["parsed"] for r in rows) / len(rows)
                # diagnostic only (never used for training or validation): the error step a
                # deterministic reading of the critic's own compared values would give
                rm = processbench_f1(labels, [rule_reading(parse_critique(r["text"])) for r in rows],
                                     pred_offset=1, label_offset=0)
                res[f"pb_f1_{tag}_rule"] = rm["f1"] / 100.0
            else:
                short = "mix" if set_name == "mix_data" else "wrong"
                res[f"cc_{short}_{tag}"] = 100 * sum(r["corrected_correct"] for r in rows) / len(rows)
    return res


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

"""Toy-world solution generators and held-out benchmarks.

- :func:`sample_solutions`: base models sampled at a temperature write solutions with
  *natural* errors (through the project's Backend interface); each
  :class:`~scrit_utils.core.records.Solution` records which model wrote it (``generator``).
- :func:`write_toy_benchmarks`: ``benchmark``-split critique-correction sets in RealCritic's
  layout (``realcritic/mix_data/arith/test.jsonl``, ``realcritic/wrong_data/arith/test.jsonl``)
  and an error-identification set in ProcessBench's format (``processbench/arith.json``).
  Wrong solutions are model-sampled (natural errors, labelled by recomputing every step)
  where the generators produce enough cleanly-labelled ones, else injected; each row's
  ``model`` / ``generator`` field says which.
- Measuring a base model on these benchmarks is :mod:`scrit_utils.toy_models.base_eval`.

Usage::

    from scrit_utils.worlds import arith_bench
    arith_bench.write_toy_benchmarks("data/toy_bench", seed=0, n_per_class=100,
                                     generators={"toy-0.1m": "models/toy-0.1m"})
"""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Mapping, Sequence

from scrit_utils.critique import prompts
from scrit_utils.critique.grading import is_equivalent
from scrit_utils.generation import GenerationRequest, SamplingParams, derive_seed, get_backend
from scrit_utils.critique.parsing import extract_last_boxed
from scrit_utils.core.records import Problem, Solution, atomic_write_text, stable_id, write_json
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

"""The toy world's held-out benchmarks: claim sets of natural errors only, and a separate injected-error diagnostic.

:func:`write_toy_benchmarks` writes, on a held-out split (``benchmark`` for the claims, ``dev`` for design):

- the **claim sets**, in RealCritic's layout (``realcritic/mix_data/arith/test.jsonl``: balanced,
  ``realcritic/wrong_data/arith/test.jsonl``: deliberately incorrect) and ProcessBench's format
  (``processbench/arith.json``). Every wrong item is a *natural* error of a benchmark generator
  (:mod:`.arith_natural`: held-out models, sampled in rounds up to a cap); a set the cap leaves short is
  reported short in ``summary.json``, never filled with injected errors. Correct items are the generators'
  correct solutions (the reference where none was right).
- the **diagnostic set** under ``diagnostic_injected/`` (:func:`diagnostic_dir`), the same layout and the same
  problems and row order, with each wrong item replaced by ``arith.inject_error``'s (the injector the
  bug_injection_world arm trains on): bug injection can be shown on natural and on injected errors. Not a
  claim set; its rows say ``origin: injected``.
- ``summary.json`` (origins, shortfall, sampling rounds, per-generator yield, and the error shapes of every
  set: :mod:`.arith_errors`) and ``error_shapes.md`` (the shape table).

Every row carries ``origin`` (natural | reference | injected) and ``error_shape``. Measuring a base model on
these benchmarks is :mod:`scrit_utils.toy_models.base_eval`.

Usage::

    from scrit_utils.worlds import arith_bench
    arith_bench.write_toy_benchmarks("data/toy_bench", seed=0, n_per_class=100,
                                     generators={"toy-0.6m": "models/toy-0.6m"})
"""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Sequence

from scrit_utils.core.records import Problem, Solution, atomic_write_text, stable_id, write_json
from scrit_utils.critique import prompts
from scrit_utils.worlds import arith, arith_errors, arith_natural
from scrit_utils.worlds.arith_natural import SOLVE_MAX_NEW, _backend, sample_solutions, solution_from_text  # noqa: F401

CRITIQUE_MAX_NEW = 300  # longest ground-truth critique is 264 tokens (contrastive)
SETS = ("mix", "wrong", "processbench")  # the claim sets, in the order wrong items are dealt
DIAGNOSTIC = "diagnostic_injected"  # the injected-error diagnostic's folder inside a benchmark folder


def diagnostic_dir(bench_dir: str | Path) -> Path:
    """The injected-error diagnostic sets of a benchmark folder (same layout: :func:`critique_items` and
    ``World.benchmark_items`` read it as they read the claim sets). Never part of a claim."""
    return Path(bench_dir) / DIAGNOSTIC


def _rc_row(idx: int, p: Problem, s: Solution, origin: str, mix: bool) -> dict:
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
    d = arith_errors.describe(p, s.steps, bool(s.is_correct))
    return {**row, "origin": origin, "error_shape": d["shape"], "first_error_step": d["first_error_step"]}


def _pb_row(idx: int, p: Problem, s: Solution, origin: str, tag: str = "arith") -> dict:
    """One ProcessBench-format row; ``label`` is the 0-based first wrong step (-1: all right)."""
    lab = arith.label_solution(p, s.steps)
    return {
        "id": f"{tag}-{idx}",
        "generator": s.generator,
        "problem": p.question,
        "steps": list(s.steps),
        "final_answer_correct": bool(s.is_correct),
        "label": -1 if lab.is_correct else lab.first_error_step - 1,
        "reference_solution": p.reference_solution,
        "origin": origin,
        "error_shape": arith_errors.shape(p, s.steps),
    }


def _correct_items(pool: arith_natural.NaturalPool, probs: Sequence[Problem]) -> list[tuple[Problem, Solution, str]]:
    """A generator's correct solution of each problem (drawn at random), else the reference."""
    out = []
    for p in probs:
        right = [s for s in pool.by_problem.get(p.id, []) if arith_natural.clean_correct(p, s)]
        if right:
            out.append((p, right[random.Random(f"{pool.seed}/toy-bench/correct/{p.id}").randrange(len(right))], "natural"))
        else:
            out.append((p, arith.reference_solution(p), "reference"))
    return out


def _write_sets(out: Path, mix: list, wrong: list, pb: list, pb_tag: str) -> dict[str, list[dict]]:
    """Write one benchmark folder; ``mix`` / ``wrong`` / ``pb`` are (problem, solution, origin) in row order."""
    rows = {"mix": [_rc_row(j, p, s, o, mix=True) for j, (p, s, o) in enumerate(mix)],
            "wrong": [_rc_row(j, p, s, o, mix=False) for j, (p, s, o) in enumerate(wrong)],
            "processbench": [_pb_row(j, p, s, o, pb_tag) for j, (p, s, o) in enumerate(pb)]}
    for name, folder in (("mix", "mix_data"), ("wrong", "wrong_data")):
        atomic_write_text(out / "realcritic" / folder / "arith" / "test.jsonl",
                          "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows[name]))
    write_json(out / "processbench" / "arith.json", rows["processbench"])
    return rows


def _shapes(rows: dict[str, list[dict]]) -> dict[str, dict]:
    """Each set's shape table over its wrong items (the correct ones counted as ``correct``)."""
    out = {}
    for name, rs in rows.items():
        out[name] = arith_errors.shape_table(  # RealCritic rows: a wrong item's final answer is wrong by construction
            [{"shape": r["error_shape"], "final_correct": r.get("final_answer_correct", r.get("previous_score") == [True]),
              "first_error_step": r["label"] + 1 if "label" in r else r["first_error_step"]} for r in rs])
    return out


def write_toy_benchmarks(
    out_dir: str | Path,
    seed: int,
    n_per_class: int,
    generators=None,
    config: arith.ArithConfig | None = None,
    temperature: float = 1.0,
    samples_per_problem: int = 2,
    split: str = "benchmark",
    max_samples: int = 40000,
    backend_factory=None,
) -> dict:
    """Write the claim sets, the injected diagnostic, ``summary.json`` and ``error_shapes.md``; returns the summary.

    ``generators``: ``{name: path}`` sampled at ``temperature``, or ``world.arith.benchmark_generators`` rows
    (each with its own temperature). Problems come from ``split`` (``benchmark``, or ``dev`` for pilots;
    neither is ever trained on). Quotas: mix ``n_per_class`` correct + ``n_per_class`` wrong, wrong
    ``n_per_class``, ProcessBench ``n_per_class`` correct + ``n_per_class`` erroneous, all on distinct problems.
    The correct items' problems are the split's first ``2 * n_per_class``; the wrong items are dealt from the
    problems after them (:func:`arith_natural.fill`), so the sets lean to problems the generators get wrong, as
    natural-error benchmarks do. A short mix set drops correct items to stay balanced.
    """
    cfg = config or arith.ArithConfig()
    n = n_per_class
    if split not in ("dev", "benchmark"):
        raise ValueError(f"toy benchmarks come from a held-out split (dev | benchmark), not {split!r}")
    gens = arith_natural.generator_rows(generators, temperature)
    cache: dict[int, list[Problem]] = {}

    def problems_upto(m: int) -> list[Problem]:  # generate_problems draws in sequence: a longer list extends a shorter
        if m not in cache:
            cache.clear()
            cache[m] = arith.generate_problems(seed, m, split, cfg, stream="toy-bench")
        return cache[m]

    pool = arith_natural.NaturalPool(gens, seed, samples_per_problem, max_samples, backend_factory)
    pool.sample(problems_upto(2 * n), "correct items")
    correct = _correct_items(pool, problems_upto(2 * n))
    quotas = {s: n for s in SETS}
    dealt, end = arith_natural.fill(pool, problems_upto, 2 * n, quotas)
    wrong = {s: [(p, x, "natural") for p, x in dealt[s]] for s in SETS}
    injected = {s: [(p, arith.inject_error(p, random.Random(f"{seed}/bench-inject/{p.id}")), "injected")
                    for p, _, _ in wrong[s]] for s in SETS}

    rng = random.Random(f"{seed}/toy-bench")
    mix_correct = correct[:n][: len(wrong["mix"])]  # balanced: as many correct as natural wrong items
    mix_order = list(range(2 * len(mix_correct)))
    rng.shuffle(mix_order)
    pb_order = list(range(n + len(wrong["processbench"])))
    rng.shuffle(pb_order)

    def ordered(wrong_items: dict) -> tuple[list, list, list]:
        mix_all = mix_correct + wrong_items["mix"]
        pb_all = correct[n:] + wrong_items["processbench"]
        return [mix_all[i] for i in mix_order], wrong_items["wrong"], [pb_all[i] for i in pb_order]

    out = Path(out_dir)
    rows = _write_sets(out, *ordered(wrong), pb_tag="arith")
    diag_rows = _write_sets(diagnostic_dir(out), *ordered(injected), pb_tag="arith-injected")
    summary = {"seed": seed, "split": split, "n_per_class": n,
               "generators": [{"name": g.name, "path": g.path, "temperature": g.temperature} for g in gens],
               "samples_per_problem": samples_per_problem, "max_samples": max_samples,
               **_report(n, rows, diag_rows, {s: len(wrong[s]) for s in SETS}, pool, end)}
    write_json(out / "summary.json", summary)
    atomic_write_text(out / "error_shapes.md", _markdown(summary))
    return summary


def _report(n: int, rows: dict, diag_rows: dict, natural: dict[str, int], pool: arith_natural.NaturalPool,
            end: int) -> dict:
    """The summary's sets, shortfall, origins, error shapes and sampling record (claim sets and diagnostic)."""
    in_claims = sum(r["origin"] == "injected" or r.get("model", r.get("generator")) == "injected"
                    for rs in rows.values() for r in rs)
    if in_claims:  # cannot happen by construction; the summary's zero is this check, not an assumption
        raise AssertionError(f"{in_claims} injected items in the claim sets")
    wanted = {"mix": 2 * n, "wrong": n, "processbench": 2 * n}
    return {
        "claim_sets": {s: {"items": len(rows[s]), "wanted": wanted[s], "short": wanted[s] - len(rows[s]),
                           "natural_wrong": natural[s], "wanted_wrong": n} for s in SETS},
        "shortfall": {s: wanted[s] - len(rows[s]) for s in SETS if len(rows[s]) < wanted[s]},
        "injected_in_claim_sets": in_claims,
        "origins": {s: _count(r["origin"] for r in rows[s]) for s in SETS},
        "error_shapes": _shapes(rows),
        "sampling": {"samples": pool.n_samples, "problems": end, "rounds": pool.rounds,
                     "capped": bool(pool.affordable() == 0 and any(natural[s] < n for s in SETS)),
                     "per_generator": pool.stats()},
        "diagnostic": {"dir": DIAGNOSTIC, "what": "the claim sets' problems and order with each wrong item "
                       "replaced by arith.inject_error's (not a claim set)",
                       "origins": {s: _count(r["origin"] for r in diag_rows[s]) for s in SETS},
                       "error_shapes": _shapes(diag_rows)},
    }


def _count(xs) -> dict[str, int]:
    out: dict[str, int] = {}
    for x in xs:
        out[x] = out.get(x, 0) + 1
    return out


def _markdown(summary: dict) -> str:
    shapes, diag = summary["error_shapes"], summary["diagnostic"]["error_shapes"]
    gens = ", ".join(f"{g['name']} (T={g['temperature']})" for g in summary["generators"])
    short = summary["shortfall"]
    lines = [f"# Toy benchmark error shapes ({summary['split']} split, seed {summary['seed']})", "",
             f"Wrong items: natural errors of {gens}; {summary['sampling']['samples']} solutions sampled on "
             f"{summary['sampling']['problems']} problems in {len(summary['sampling']['rounds'])} rounds "
             f"(cap {summary['max_samples']}). "
             + (f"Short of the quota: {', '.join(f'{k} {v}' for k, v in short.items())} items." if short
                else "Every set has its quota."), "",
             "## Claim sets (natural errors only)", "", arith_errors.markdown(shapes),
             "## Diagnostic: the same problems with injected errors (not a claim set)", "",
             arith_errors.markdown(diag)]
    return "\n".join(lines)


# --- reading a benchmark folder ---------------------------------------------------------------------
def _problem_of(question: str, reference: str | None, gt: str) -> Problem:
    return Problem(id=stable_id(arith.WORLD, question), question=question, answer=str(gt),
                   reference_solution=reference, source=arith.WORLD)


def critique_items(bench_dir: str | Path) -> dict[str, list[dict]]:
    """Benchmark rows as uniform items: problem, solution text, label, gt (pass :func:`diagnostic_dir` for the
    injected diagnostic)."""
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

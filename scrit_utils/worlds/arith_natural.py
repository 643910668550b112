"""Natural solutions of the toy world's models: sampling, and the pool of natural errors the benchmarks draw from.

- :func:`sample_solutions`: models sampled at a temperature write solutions (through the project's Backend
  interface); each :class:`~scrit_utils.core.records.Solution` records which model wrote it (``generator``).
- :class:`NaturalPool`: the benchmark generators (``world.arith.benchmark_generators``) sampled on problems in
  rounds, at most ``max_samples`` solutions in all; :func:`deal` hands the problems with a natural error to the
  benchmark sets in turn. Nothing here injects an error: a set the cap leaves short stays short.

Usage::

    from scrit_utils.worlds import arith_natural
    pool = arith_natural.NaturalPool(arith_natural.generator_rows({"toy-0.6m": "models/toy-0.6m"}), seed=0,
                                     samples=1, max_samples=400)
    pool.sample(problems, "wrong pool")
    dealt = arith_natural.deal(problems, pool.candidates, {"wrong": 8, "processbench": 8}, seed=0)
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Callable, Mapping, Sequence

from scrit_utils.core.arith_config import BenchmarkGenerator
from scrit_utils.core.config import model_ref
from scrit_utils.core.records import Problem, Solution, stable_id
from scrit_utils.critique.grading import is_equivalent
from scrit_utils.critique.parsing import extract_last_boxed
from scrit_utils.generation import GenerationRequest, SamplingParams, derive_seed, get_backend
from scrit_utils.worlds import arith, arith_errors

SOLVE_MAX_NEW = 112  # longest toy reference solution is 100 tokens (incl. eos)


def _backend(model_dir: str | Path, batch_size: int = 128):
    return get_backend("transformers", model=model_ref(str(model_dir)), device="cpu", batch_size=batch_size)


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
    tag: str = "solve",
) -> list[Solution]:
    """Each generator model (name -> dir) writes ``n_samples`` solutions per problem; ``tag`` names the seed
    stream (per-request seeds from (seed, tag, problem, generator, sample))."""
    make = backend_factory or _backend
    out: list[Solution] = []
    params = SamplingParams(max_new_tokens=SOLVE_MAX_NEW, temperature=temperature)
    for name, path in generators.items():
        backend = make(path)
        reqs = [
            GenerationRequest(id=f"{p.id}/{name}/{k}", messages=arith.solve_messages(p),
                              seed=derive_seed(seed, tag, p.id, f"{name}/{k}"))
            for p in problems
            for k in range(n_samples)
        ]
        texts = backend.generate(reqs, params, progress=progress)
        it = iter(texts)
        for p in problems:
            for k in range(n_samples):
                out.append(solution_from_text(p, next(it), name, k))
    return out


# --- the benchmark's natural errors ----------------------------------------------------------------
def generator_rows(generators, temperature: float = 1.0) -> list[BenchmarkGenerator]:
    """``{name: path}`` (all at ``temperature``) or rows (:class:`BenchmarkGenerator` / mappings with name, path,
    temperature) as rows; none is an error: the benchmark's wrong items are natural errors only."""
    if isinstance(generators, Mapping):
        rows = [BenchmarkGenerator(str(n), str(p), float(temperature)) for n, p in generators.items()]
    else:
        rows = [g if isinstance(g, BenchmarkGenerator) else BenchmarkGenerator(**g) for g in generators or ()]
    if not rows:
        raise ValueError("toy benchmarks: no benchmark generators (world.arith.benchmark_generators): the wrong "
                         "items are natural errors of held-out models, never injected ones")
    return rows


def wrong_for(set_name: str, problem: Problem, s: Solution) -> bool:
    """Whether ``s`` is a wrong item of a set: a wrong final answer (RealCritic's sets, graded on the box), or
    any wrong step (ProcessBench: a right answer reached through a wrong step counts, as there)."""
    if set_name == "processbench":
        return not arith.label_solution(problem, s.steps).is_correct
    return not s.is_correct


def clean_correct(problem: Problem, s: Solution) -> bool:
    """A correct item: right boxed answer and every step right (a lucky answer is neither set's item)."""
    return bool(s.is_correct) and arith.label_solution(problem, s.steps).is_correct


class NaturalPool:
    """Every solution the benchmark generators wrote, by problem, with the sampling record (rounds, cap)."""

    def __init__(self, generators: Sequence[BenchmarkGenerator], seed: int, samples: int, max_samples: int,
                 backend_factory: Callable | None = None) -> None:
        self.gens, self.seed, self.samples, self.max_samples = list(generators), seed, samples, max_samples
        self.make = backend_factory or _backend
        self._backends: dict[str, object] = {}
        self.by_problem: dict[str, list[Solution]] = {}
        self.problems: dict[str, Problem] = {}
        self.rounds: list[dict] = []

    @property
    def n_samples(self) -> int:
        return sum(r["samples"] for r in self.rounds)

    def affordable(self) -> int:
        """Problems one more round can sample within ``max_samples``."""
        return max(0, self.max_samples - self.n_samples) // (self.samples * len(self.gens))

    def _backend(self, path: str):
        if path not in self._backends:  # one load per model for all rounds
            self._backends[path] = self.make(path)
        return self._backends[path]

    def sample(self, problems: Sequence[Problem], purpose: str) -> None:
        for g in self.gens:
            sols = sample_solutions(problems, {g.name: g.path}, self.seed, g.temperature, self.samples,
                                    backend_factory=self._backend, tag="bench-solve")
            for s in sols:
                self.by_problem.setdefault(s.problem_id, []).append(s)
        self.problems.update({p.id: p for p in problems})
        self.rounds.append({"purpose": purpose, "problems": len(problems),
                            "samples": len(problems) * self.samples * len(self.gens)})

    def candidates(self, problem: Problem, set_name: str) -> list[Solution]:
        """The natural wrong solutions of ``problem`` a set may take."""
        return [s for s in self.by_problem.get(problem.id, []) if wrong_for(set_name, problem, s)]

    def stats(self) -> dict:
        """Per generator: samples, wrong answers and wrong steps per 100 samples, and the shapes of its errors."""
        out = {}
        for g in self.gens:
            rows = [(self.problems[s.problem_id], s) for sols in self.by_problem.values() for s in sols
                    if s.generator == g.name]
            descr = [arith_errors.describe(p, s.steps, bool(s.is_correct)) for p, s in rows]
            wrong_answer = sum(not s.is_correct for _, s in rows)
            wrong_steps = sum(d["shape"] != "correct" for d in descr)
            out[g.name] = {
                "path": g.path, "temperature": g.temperature, "samples": len(rows),
                "wrong_answer_per_100": round(100 * wrong_answer / max(len(rows), 1), 2),
                "wrong_steps_per_100": round(100 * wrong_steps / max(len(rows), 1), 2),
                "error_shapes": arith_errors.shape_table([d for d in descr if d["shape"] != "correct"]),
            }
        return out


def deal(problems: Sequence[Problem], candidates: Callable[[Problem, str], list[Solution]],
         quotas: Mapping[str, int], seed: int) -> dict[str, list[tuple[Problem, Solution]]]:
    """Hand problems (in order) to the sets in turn, each problem to one set, until every set has its quota.

    A problem goes to the next set in the rotation that is not full and that it has a natural wrong
    solution for; which of its solutions is drawn at random (seeded by set and problem). The result
    depends only on the problems' solutions, not on how the sampling was split into rounds.
    """
    names = list(quotas)
    out: dict[str, list[tuple[Problem, Solution]]] = {s: [] for s in names}
    turn = 0
    for p in problems:
        if all(len(out[s]) >= quotas[s] for s in names):
            break
        for j in range(len(names)):
            s = names[(turn + j) % len(names)]
            cands = candidates(p, s) if len(out[s]) < quotas[s] else []
            if cands:
                out[s].append((p, cands[random.Random(f"{seed}/toy-bench/{s}/{p.id}").randrange(len(cands))]))
                turn = (turn + j + 1) % len(names)
                break
    return out


def fill(pool: NaturalPool, problems_upto: Callable[[int], list[Problem]], start: int,
         quotas: Mapping[str, int]) -> tuple[dict[str, list[tuple[Problem, Solution]]], int]:
    """Sample fresh problems (``problems_upto(m)[start:]``) in rounds until :func:`deal` fills every quota or
    the pool's cap is reached; returns the dealt items and the end of the problems sampled.

    Each round's size follows the yield so far (problems with a natural error per problem sampled), with
    a 20% margin; the first round guesses one in two.
    """
    end = start
    while True:
        probs = problems_upto(end)[start:]
        dealt = deal(probs, pool.candidates, quotas, pool.seed)
        missing = sum(quotas[s] - len(dealt[s]) for s in quotas)
        room = pool.affordable()
        if missing == 0 or room == 0:
            return dealt, end
        hits = sum(any(pool.candidates(p, s) for s in quotas) for p in probs)
        rate = hits / len(probs) if probs else 0.5
        k = min(room, max(8, int(missing / max(rate, 0.01) * 1.2) + 1))
        new = problems_upto(end + k)[end:]
        pool.sample(new, f"wrong items, round {len(pool.rounds)}")
        end += k

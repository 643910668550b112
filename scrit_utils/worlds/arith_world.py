"""The toy arithmetic world as a :class:`~scrit_utils.worlds.base.World` (config: ``world.arith``, an
:class:`~scrit_utils.worlds.arith.ArithConfig`).

Usage::

    from scrit_utils import worlds
    world = worlds.get(cfg)      # cfg.world.kind == "arith"
    world.problems()             # arith.generate_problems on the profile's split
"""
from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Callable, Sequence

from scrit_utils.core import inputs
from scrit_utils.critique import prompts
from scrit_utils.core.records import Problem, Solution
from scrit_utils.worlds import arith
from scrit_utils.worlds.base import SCENARIO_FILES, World
from scrit_utils.critique.grading import is_equivalent
from scrit_utils.worlds import arith_bench


class ArithWorld(World):
    kind = "arith"

    @property
    def a(self) -> arith.ArithConfig:
        return self.cfg.world.arith

    def problems(self) -> list[Problem]:
        a = self.a
        return arith.generate_problems(self.cfg.run.seed, a.n_problems, a.split, self._difficulty(),
                                       stream="study-problems")

    @property
    def supplies_solutions(self) -> bool:
        return self.a.world_solutions

    def world_solutions(self, problems: Sequence[Problem], solution_id: Callable[[str, str, int], str],
                        rng_tag: str) -> list[Solution]:
        """With ``world.arith.world_solutions``: the reference solution and one rule-injected wrong one per problem."""
        if not self.a.world_solutions:
            return []

        out = []
        for p in problems:
            ref = arith.reference_solution(p)
            bad = arith.inject_error(p, random.Random(f"{rng_tag}/{p.id}"))
            for gen, s in (("world:reference", ref), ("world:injected", bad)):
                ok = is_equivalent(s.final_answer, p.answer)  # False for a missing answer
                out.append(Solution(
                    id=solution_id(p.id, gen, 0), problem_id=p.id, generator=gen, steps=s.steps,
                    final_answer=s.final_answer, is_correct=ok, text=s.text, meta={"sample": 0, **s.meta},
                ))
        return out

    def draw_overrides(self, factor: float) -> dict:
        # generate_problems draws in sequence, so more problems are a superset of the profile's
        return {"world.arith.n_problems": math.ceil(self.a.n_problems * factor)}

    def exact_critique(self, problem: Problem, steps: Sequence[str]) -> str:
        return arith.ground_truth_critique(problem, steps, with_reference=False)

    @property
    def injects_errors(self) -> bool:
        return self.a.injector == "world"

    def inject_error(self, problem: Problem, rng: random.Random) -> Solution:
        return arith.inject_error(problem, rng)

    @property
    def builds_benchmarks(self) -> bool:
        return True

    def build_benchmarks(self, bench_dir: Path) -> dict:
        """The RealCritic / ProcessBench-format sets on ``world.arith.eval_split`` (never trained on): every wrong
        item a natural error of ``world.arith.benchmark_generators`` (held-out models; the profile check keeps
        the critic and the study's generators out), plus the injected-error diagnostic beside them
        (:func:`arith_bench.diagnostic_dir`, read by :meth:`injected_benchmark_items`)."""
        if (bench_dir / "summary.json").exists():
            return json.loads((bench_dir / "summary.json").read_text())
        cfg, a = self.cfg, self._difficulty()
        if not a.benchmark_generators:
            raise ValueError("world.arith.benchmark_generators: empty; the toy benchmark's wrong items are natural "
                             "errors of held-out models (see configs/toy.yaml), never injected ones")
        n = cfg.evaluation.n_items or 600
        return arith_bench.write_toy_benchmarks(bench_dir, seed=cfg.run.seed, n_per_class=math.ceil(n / 2),
                                                generators=a.benchmark_generators, config=a, split=a.eval_split,
                                                samples_per_problem=a.benchmark_samples,
                                                max_samples=a.benchmark_max_samples)

    def _difficulty(self) -> arith.ArithConfig:
        # the real dataclass, not the recording view: read once (the whole world.arith section recorded)
        # rather than attribute by attribute inside the sampling loop
        return inputs.unwrap(self.a)

    def benchmark_items(self, bench_dir: Path | None) -> dict[str, list[dict]]:
        """The claim sets; an injected item there is an error (a benchmark folder written before #24)."""
        return _read_bench(bench_dir, claims=True)

    def injected_benchmark_items(self, bench_dir: Path) -> dict[str, list[dict]]:
        """The injected-error diagnostic beside the claim sets (same problems and order, ids ``injected:...``):
        for showing bug injection on injected errors next to natural ones; never a claim set."""
        return _read_bench(arith_bench.diagnostic_dir(bench_dir), claims=False)

    @property
    def decode_rule(self) -> str | None:
        return self.a.verdict_rule or None

    def decode_hook(self, tokenizer):
        return arith.make_verdict_rule(self.a.verdict_rule, tokenizer)


def _read_bench(bench_dir: Path, claims: bool) -> dict[str, list[dict]]:
    pre = "" if claims else "injected:"
    out: dict[str, list[dict]] = {}
    for scen, folder in SCENARIO_FILES.items():
        path = bench_dir / "realcritic" / folder / "arith" / "test.jsonl"
        rows = [json.loads(l) for l in path.read_text().splitlines() if l.strip()]
        _no_injected(rows, path, claims)
        out[scen] = [{"id": f"{pre}arith/{r['idx']}", "task": "arith", "question": r["question"], "gt": str(r["gt"]),
                      "solution": r["reasoning"], "original_correct": bool(r.get("previous_score", [False])[0])}
                     for r in rows]
    path = bench_dir / "processbench" / "arith.json"
    pb = json.loads(path.read_text())
    _no_injected(pb, path, claims)
    out["processbench"] = [{
        "id": pre + r["id"], "task": "arith", "question": r["problem"], "solution": prompts.format_solution(r["steps"]),
        "label": r["label"], "gt": str(arith.parse_problem(Problem(id="", question=r["problem"], answer="")).answer),
    } for r in pb]
    return out


def _no_injected(rows: list[dict], path: Path, claims: bool) -> None:
    bad = [r for r in rows if r.get("origin") == "injected" or r.get("model", r.get("generator")) == "injected"]
    if claims and bad:
        raise ValueError(f"{path}: {len(bad)} injected items in a claim set (a benchmark folder written before "
                         "#24?): claim sets hold natural errors only; rebuild it")


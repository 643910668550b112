"""Real datasets as a :class:`~scrit_utils.worlds.base.World`: problems from ``world.real_sources``,
evaluation on RealCritic and ProcessBench (``evaluation.realcritic_path`` / ``processbench_path``).

Usage::

    from scrit_utils import worlds
    world = worlds.get(cfg)      # cfg.world.kind == "real"
    world.problems()             # every source's scrit_utils.worlds.real.load_<name>
"""
from __future__ import annotations

import inspect
from pathlib import Path

from scrit_utils.critique import prompts
from scrit_utils.core.records import Problem
from scrit_utils.worlds.base import SCENARIO_FILES, World
from scrit_utils.core import data_dir
from scrit_utils.worlds import real


def _ref(path: str) -> str:
    """``../shared/data/...`` -> the data folder (:func:`scrit_utils.core.data_dir.resolve_ref`); other local
    paths from the repository root; hub ids unchanged."""
    return data_dir.resolve_ref(path)


def load_real_source(src) -> list[Problem]:
    """Problems of one ``world.real_sources`` entry via ``scrit_utils.worlds.real.load_<name>``."""
    loader = getattr(real, f"load_{src.name}", None)
    if loader is None:
        known = sorted(n[5:] for n in dir(real) if n.startswith("load_"))
        raise ValueError(f"world.real_sources: no loader for {src.name!r} in scrit_utils.worlds.real (have {known})")
    params = inspect.signature(loader).parameters
    path = _ref(src.path)
    if "split" in params:
        items = loader(path, split=src.split)
    elif "tasks" in params:  # math_eval: the "split" names the task
        items = loader(path, tasks=[src.split])
    else:
        items = loader(path)
    problems = [it.to_problem() if hasattr(it, "to_problem") else it for it in items]
    return problems[: src.n] if src.n is not None else problems


class RealWorld(World):
    kind = "real"

    def problems(self) -> list[Problem]:
        out: list[Problem] = []
        for src in self.cfg.world.real_sources:
            out.extend(load_real_source(src))
        if not out:
            raise ValueError(f"{self.cfg.source}: world.real_sources yielded no problems")
        return out

    def benchmark_items(self, bench_dir: Path | None) -> dict[str, list[dict]]:
        ev = self.cfg.evaluation
        out: dict[str, list[dict]] = {}
        for scen, folder in SCENARIO_FILES.items():
            items = real.load_realcritic(_ref(ev.realcritic_path), folder, tasks=list(ev.benchmarks) or None)
            out[scen] = [{"id": it.id, "task": it.task, "question": it.question, "gt": it.gt, "solution": it.solution,
                          "original_correct": bool(it.label_correct)} for it in items]
        if ev.processbench:
            out["processbench"] = [{"id": f"{it.subset}/{it.id}", "task": it.subset, "question": it.problem,
                                    "solution": prompts.format_solution(it.steps), "label": it.label, "gt": it.answer}
                                   for it in real.load_processbench(_ref(ev.processbench_path), list(ev.processbench))]
        return out

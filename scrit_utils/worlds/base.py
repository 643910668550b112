"""The :class:`World` interface: everything the study's stages need to know about where problems come from.

A world supplies the problems (stage 01), optional solutions of its own (stage 01), an optional
rule-based error injector (stage 02's bug-injection baseline), the evaluation items (stage 04, in the
uniform dict form of :mod:`scrit_utils.pipeline.benchmark_eval`), and an optional decode-time rule for the
generation backend. The stages call these methods and never ask which world they are in; the world is
chosen once from ``world.kind`` by :func:`scrit_utils.worlds.get`.

Usage::

    from scrit_utils import worlds
    world = worlds.get(cfg)                  # ArithWorld or RealWorld, holding cfg (or a recording view)
    problems = world.problems()
    if world.builds_benchmarks:
        world.build_benchmarks(bench_dir)
    items = world.benchmark_items(bench_dir)  # {"wrong": [...], "mix": [...], "processbench": [...]}

A new world subclasses :class:`World`, implements :meth:`problems` and :meth:`benchmark_items`
(overriding the optional parts it has), and registers itself in ``scrit_utils.worlds.WORLDS``.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Callable, Sequence

from scrit_utils.core.records import Problem, Solution

#: RealCritic's folder per CC scenario (every world's CC sets use RealCritic's layout)
SCENARIO_FILES = {"wrong": "wrong_data", "mix": "mix_data"}


class World:
    """Base class; the defaults are "this world has no such part"."""

    kind: str = ""  # the ``world.kind`` that selects it; its config lives under ``world.<kind>``

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg  # a StudyConfig or a recording view of one (scrit_utils.core.inputs.ConfigView)

    # --- stage 01 ---------------------------------------------------------------------------
    def problems(self) -> list[Problem]:
        """The problems stage 01 starts from (with reference answers)."""
        raise NotImplementedError

    @property
    def supplies_solutions(self) -> bool:
        """True when :meth:`world_solutions` adds solutions (then stage 01 needs no generator model)."""
        return False

    def world_solutions(self, problems: Sequence[Problem], solution_id: Callable[[str, str, int], str],
                        rng_tag: str) -> list[Solution]:
        """Solutions the world writes itself (beside the generators'); ``solution_id(problem, generator, k)``
        names them, ``rng_tag`` seeds them. None by default."""
        return []

    def draw_overrides(self, factor: float) -> dict:
        """Profile overrides that draw about ``factor`` times the problems (a superset of today's), for an arm
        whose validated set falls short of its data sizes; empty when this world cannot draw more."""
        return {}

    # --- stage 02 ---------------------------------------------------------------------------
    def exact_critique(self, problem: Problem, steps: Sequence[str]) -> str:
        """The world's exact no-reference critique of a solution's steps (the oracle arm's targets)."""
        raise NotImplementedError(f"world {self.kind!r} has no exact critiques (the oracle arm needs them)")

    @property
    def injects_errors(self) -> bool:
        """The profile's old switch for the bug-injection arm's injector (toy: ``world.arith.injector``). The arm's
        row now says who writes the bug (``core/arms.py``: bug_injection = the model, bug_injection_world = this
        world); the switch is read only so that stage 02's key stays what it was for the rows it matches."""
        return False

    def inject_error(self, problem: Problem, rng: random.Random) -> Solution:
        """A wrong solution of ``problem`` with one injected error (the bug_injection_world arm)."""
        raise NotImplementedError(f"world {self.kind!r} has no rule-based error injector")

    # --- stage 04 ---------------------------------------------------------------------------
    @property
    def builds_benchmarks(self) -> bool:
        """True when the evaluation items are written by :meth:`build_benchmarks` (into stage 04_benchmark, shared by every critic)."""
        return False

    def build_benchmarks(self, bench_dir: Path) -> dict:
        """Write the world's benchmark files into ``bench_dir`` (idempotent); returns their summary."""
        raise NotImplementedError(f"world {self.kind!r} reads its benchmarks, it does not build them")

    def benchmark_items(self, bench_dir: Path | None) -> dict[str, list[dict]]:
        """``{"wrong": [...], "mix": [...], "processbench": [...]}`` (uncapped), items as uniform dicts:
        id, task, question, gt, solution, original_correct (CC sets) / label (ProcessBench)."""
        raise NotImplementedError

    # --- generation ---------------------------------------------------------------------------
    @property
    def decode_rule(self) -> str | None:
        """Name of the world's decode-time rule when one is switched on, else None."""
        return None

    def decode_hook(self, tokenizer) -> Any | None:
        """A fresh decode hook (:class:`scrit_utils.generation.decode_hook.DecodeHook`) for a backend
        with ``tokenizer``, or None."""
        return None

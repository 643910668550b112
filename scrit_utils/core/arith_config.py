"""The arithmetic world's configuration (a profile's ``world.arith`` section), on the core floor so the
profile schema can type it without importing the world (:mod:`scrit_utils.worlds.arith` re-exports it)::

    from scrit_utils.core.arith_config import ArithConfig
    ArithConfig(min_steps=2, max_steps=4)
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Literal

#: the operations and their question words (the world's problem text)
OP_WORDS = {"+": "Add {b}.", "-": "Subtract {b}.", "*": "Multiply by {b}."}


@dataclass(frozen=True)
class BenchmarkGenerator:
    """A model that writes the toy benchmark's natural errors (one ``world.arith.benchmark_generators`` row)."""

    name: str  # label on every benchmark row it wrote (keep it apart from models.generators' names)
    path: str  # model dir or hub id
    temperature: float = 1.0  # sampling temperature of its solutions


@dataclass(frozen=True)
class ArithConfig:
    """The arithmetic world's config: a profile's ``world.arith`` section is this dataclass (one set of
    defaults). Difficulty knobs (number of steps, operand sizes) are used everywhere problems are drawn
    (the study, the base-model recipe); the rest are read by the study's stages only."""

    min_steps: int = 2
    max_steps: int = 5
    max_start: int = 50
    max_addend: int = 50  # b in +b / -b is 1..max_addend
    max_factor: int = 9  # k in *k is 2..max_factor
    max_value: int = 999  # every intermediate value stays in 0..max_value
    ops: tuple[str, ...] = ("+", "-", "*")
    # --- the study's stages (scrit_utils.worlds.ArithWorld) ---
    n_problems: int = 200  # problems drawn for stage 01 (before filtering)
    split: Literal["train", "seed", "dev", "benchmark"] = "train"
    # stage 04: the held-out split the toy benchmarks are drawn from: benchmark for the study's claims, dev for
    # pilots that choose hyper-parameters (never tune on benchmark)
    eval_split: Literal["dev", "benchmark"] = "benchmark"
    # stage 01: also add the world's reference solution and one rule-injected wrong solution per problem
    # (generators "world:reference" / "world:injected"), so both labels exist when the bases rarely solve one
    world_solutions: bool = False
    # stage 02, self_critique.mode=bug_injection: who writes the injected error -- the model (paper) or
    # the world's rule-based injector (the tiny bases never learned the injection prompt)
    injector: Literal["model", "world"] = "model"
    # stage 04: the models whose natural errors fill the benchmark's wrong items (never injected ones): each
    # {name, path, temperature}; none may be models.critic, a sweeps.model_sizes critic, or a models.generators
    # entry at generation.solve.temperature (checked when the profile loads)
    benchmark_generators: tuple[BenchmarkGenerator, ...] = ()
    benchmark_samples: int = 2  # solutions per problem per benchmark generator in each sampling round
    # most solutions the benchmark generators sample in all rounds; a set still short then is reported short
    benchmark_max_samples: int = 40000
    # transformers backend: a decode-time rule that sets the step-verdict word from the compared pair the
    # critic just wrote ("compared_values"; scrit_utils.worlds.arith_verdict); null = the model's own verdicts
    verdict_rule: str | None = None

    def __post_init__(self) -> None:
        # plain data (build_info.json, a dict) gives a list of mappings: the same config as the tuple of rows
        rows = tuple(g if isinstance(g, BenchmarkGenerator) else BenchmarkGenerator(**g) for g in self.benchmark_generators)
        object.__setattr__(self, "benchmark_generators", rows)
        if self.benchmark_samples < 1 or self.benchmark_max_samples < 1:
            raise ValueError("ArithConfig: benchmark_samples and benchmark_max_samples must be >= 1")
        if not 1 <= self.min_steps <= self.max_steps:
            raise ValueError(f"ArithConfig: need 1 <= min_steps <= max_steps, got {self.min_steps}, {self.max_steps}")
        if self.max_start > self.max_value or self.max_start < 1:
            raise ValueError("ArithConfig: need 1 <= max_start <= max_value")
        if not set(self.ops) <= set(OP_WORDS) or not self.ops:
            raise ValueError(f"ArithConfig: ops must be a non-empty subset of {tuple(OP_WORDS)}")

    @property
    def width(self) -> int:
        """Digits of ``max_value``: the compare drill edits one digit of a value this wide."""
        return len(str(self.max_value))


def benchmark_generator_clashes(cfg, resolve: Callable[[str], object]) -> list[str]:
    """What is wrong with a study profile's ``world.arith.benchmark_generators``: ``key: why`` lines (empty = fine).

    A benchmark generator must not be a critic (``models.critic`` or a ``sweeps.model_sizes`` base), nor a
    study generator (``models.generators``) sampled at ``generation.solve.temperature``; its name must differ
    from the study generators' names, which label the study's own solutions. ``resolve`` maps a model reference
    to a path (relative to the repo root), so ``models/x`` and ``./models/x`` are one model.
    """
    def same(x: str, y: str) -> bool:
        return os.path.normpath(str(resolve(x))) == os.path.normpath(str(resolve(y)))

    a, m = cfg.world.arith, cfg.models
    critics = [("models.critic", m.critic)] + [(f"sweeps.model_sizes[{j}]", c) for j, c in enumerate(cfg.sweeps.model_sizes)]
    out = []
    for i, g in enumerate(a.benchmark_generators):
        key = f"world.arith.benchmark_generators[{i}]"
        out += [f"{key}.path: {g.path} is {ckey} ({c}): the benchmark's errors must come from another model"
                for ckey, c in critics if same(g.path, c)]
        for j, s in enumerate(m.generators):
            if same(g.path, s.path) and g.temperature == cfg.generation.solve.temperature:
                out.append(f"{key}: {g.path} at temperature {g.temperature} is models.generators[{j}] at "
                           "generation.solve.temperature: use a held-out build or another temperature")
            if g.name == s.name:
                out.append(f"{key}.name: {g.name!r} is also models.generators[{j}].name (names label solutions)")
    names = [g.name for g in a.benchmark_generators]
    out += [f"world.arith.benchmark_generators: name {n!r} twice" for n in sorted({n for n in names if names.count(n) > 1})]
    return out

"""The arithmetic world's configuration (a profile's ``world.arith`` section), on the core floor so the
profile schema can type it without importing the world (:mod:`scrit_utils.worlds.arith` re-exports it)::

    from scrit_utils.core.arith_config import ArithConfig
    ArithConfig(min_steps=2, max_steps=4)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: the operations and their question words (the world's problem text)
OP_WORDS = {"+": "Add {b}.", "-": "Subtract {b}.", "*": "Multiply by {b}."}


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
    # stage 04: the benchmark's wrong solutions are sampled from models.generators (else injected)
    natural_errors: bool = True
    # transformers backend: a decode-time rule that sets the step-verdict word from the compared pair the
    # critic just wrote ("compared_values"; scrit_utils.worlds.arith_verdict); null = the model's own verdicts
    verdict_rule: str | None = None

    def __post_init__(self) -> None:
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

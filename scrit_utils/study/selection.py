"""Training-set selection for the study points (:mod:`scrit_utils.study.sweeps`).

A :class:`Pool` is a finished stage-03 output (critiques, validation results, problems,
solutions, difficulty); :func:`candidates` builds balanced SFT examples from it with any subset of
the validation checks (read from ``meta.all_checks``), another good:bad ratio or a critique
filter; :func:`nested_subset` takes the first ``n`` so a smaller data size is always a prefix of
a larger one. The arm's row (:mod:`scrit_utils.core.arms`) decides the checks and the SFT classes
(:func:`arm_ratio`); :func:`next_draw` says how many more problems an arm short of its sizes needs.

Usage::

    pool = selection.load_pool(st03)
    ex = selection.nested_subset(selection.candidates(cfg, pool), 64, 0.5)
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable, Sequence

from scrit_utils.core import arms, artifacts, config as _config
from scrit_utils.core.config import StudyConfig
from scrit_utils.core.records import SFTExample, ValidationResult, read_jsonl
from scrit_utils.pipeline import validation


@dataclass
class Pool:
    """A finished stage-03 output: critiques, validation results and what they refer to."""

    stage: artifacts.Stage
    crits: list
    results: list
    problems: dict
    solutions: dict
    distinct: dict


def load_pool(st03: artifacts.Stage) -> Pool:
    crits, problems, solutions, distinct = validation.inputs(st03)
    results = read_jsonl(st03.dir / "validation.jsonl", ValidationResult)
    return Pool(st03, crits, results, problems, solutions, distinct)


# --- training-set selection -----------------------------------------------------------------------
def candidates(cfg: StudyConfig, pool: Pool, checks: Sequence[str] | None = None, ratio: float | None = None,
               keep: Callable | None = None) -> list[SFTExample]:
    """Balanced self-training examples from a pool (loop's :func:`validation.build_sft`).

    ``checks`` replaces the enabled checks (the outcomes are read from ``meta.all_checks``);
    ``ratio`` replaces ``validation.correct_ratio``; ``keep(critique)`` filters critiques.
    """
    results = pool.results
    if checks is not None:
        missing = [c for c in checks if any(c not in r.meta["all_checks"] for r in results)]
        if missing:
            raise ValueError(f"{pool.stage.dir}: check outcome {missing} not recorded (enable it in the profile)")
        gated = [c for c in checks if any(r.meta["all_checks"][c] is None for r in results)]
        if gated:
            raise ValueError(f"{pool.stage.dir}: check outcome {gated} computed only where the other checks passed "
                             "(validation.direct_check_scope: gated); set validation.direct_check_scope: all to select on it alone")
        results = [dataclasses.replace(r, checks={c: r.meta["all_checks"][c] for c in checks},
                                       passed=all(r.meta["all_checks"][c] for c in checks)) for r in results]
    crits = pool.crits if keep is None else [c for c in pool.crits if keep(c)]
    v = dataclasses.replace(cfg.validation, max_examples=None,
                            correct_ratio=cfg.validation.correct_ratio if ratio is None else ratio)
    ex, _ = validation.build_sft(dataclasses.replace(cfg, validation=v), crits, results, pool.problems, pool.solutions)
    return ex


def nested_subset(examples: Sequence[SFTExample], n: int, ratio: float = 0.5,
                  order: Callable[[SFTExample], float] | None = None) -> list[SFTExample]:
    """First ``n`` examples with ``round(n * ratio)`` critiques of correct solutions.

    Each class keeps a fixed order (the given one, or sorted by ``order``), so a smaller subset is
    always a prefix of a larger one (nested). When a class runs out, the subset is smaller.
    """
    pos = [e for e in examples if e.label_correct]
    neg = [e for e in examples if not e.label_correct]
    if order is not None:
        pos.sort(key=order)
        neg.sort(key=order)
    n_pos = min(len(pos), round(n * ratio))
    n_neg = min(len(neg), n - round(n * ratio))
    return pos[:n_pos] + neg[:n_neg]


def arm_ratio(cfg: StudyConfig) -> float:
    """Share of critiques of correct solutions in the arm's SFT sets (1.0 for ``sft: correct_only``)."""
    return arms.sft_ratio(arms.arm(cfg.self_critique.mode), cfg.validation.correct_ratio)


def next_draw(draw: float, cands: Sequence[SFTExample], n: int, ratio: float, max_draws: float,
              margin: float = 1.15) -> float | None:
    """The next multiple of the profile's problems to draw so that ``nested_subset(cands, n, ratio)`` gets
    ``n`` examples, assuming each class's yield per problem stays what it was at ``draw`` (``margin`` above
    that, capped at ``max_draws``); None when ``n`` is reached or no more may be drawn."""
    pos = sum(e.label_correct for e in cands)
    need = {True: round(n * ratio), False: n - round(n * ratio)}
    have = {True: pos, False: len(cands) - pos}
    if all(have[c] >= need[c] for c in need) or draw >= max_draws:
        return None
    if any(have[c] == 0 < need[c] for c in need):  # no yield seen: as many as allowed
        return float(max_draws)
    short = max(need[c] / have[c] for c in need)
    # two decimals: the factor enters the stage keys through the problem count, so keep it readable
    return min(float(max_draws), math.ceil(draw * short * margin * 100) / 100)


def example_ids_hash(examples: Sequence[SFTExample]) -> str:
    return _config.stable_hash([e.id for e in examples])

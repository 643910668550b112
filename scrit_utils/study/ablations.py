"""The ablations of notebook 06 (paper Table 4 analogues) as one table: name -> what it changes and
the SFT sets it trains, each drawn from the contrastive arm's validated pool at ``ablations.data_size``.

Adding an ablation = one row of :data:`ABLATIONS` + its name in ``ablations.variants``::

    from scrit_utils.study.ablations import ABLATIONS
    ABLATIONS["no_validation"].description
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from scrit_utils.core import arms
from scrit_utils.study.selection import Pool, candidates, nested_subset


@dataclass(frozen=True)
class AblationContext:
    """What every ablation's SFT sets are drawn from."""

    cfg: Any  # the study's profile (StudyConfig)
    acfg: Any  # the contrastive arm's profile (sweeps.arm_cfg)
    pool: Pool  # its validated critiques
    n: int  # examples per SFT set
    ratio: float  # good:bad of the baseline


@dataclass(frozen=True)
class Ablation:
    description: str  # what it changes relative to the SCRIT baseline
    # (context) -> [(label, SFT examples)]: usually one set; single_generator gives one per generator
    variants: Callable[[AblationContext], list[tuple[str, list]]]


#: selection checks kept by the validation ablations (the baseline keeps all three)
CHECK_SETS = {  # the arms table's rows where one exists (one definition of each check set)
    "no_validation": arms.ARMS["unvalidated"].checks,
    "only_direct_critic": ("direct_critic_approves",),
    "only_answer": arms.ARMS["only_answer"].checks,
    "only_verdict": arms.ARMS["only_verdict"].checks,
}


def _checks(name: str) -> Callable[[AblationContext], list[tuple[str, list]]]:
    return lambda c: [(name, nested_subset(candidates(c.acfg, c.pool, checks=CHECK_SETS[name]), c.n, c.ratio))]


def _easiest_family(c: AblationContext) -> list[tuple[str, list]]:
    lim = c.cfg.ablations.easy_family_max_steps
    steps = {pid: p.meta.get("n_steps") for pid, p in c.pool.problems.items()}
    keep = lambda x: (steps.get(x.meta["problem_id"]) or 10**9) <= lim  # noqa: E731
    return [(f"easiest_family(<={lim} ops)", nested_subset(candidates(c.acfg, c.pool, keep=keep), c.n, c.ratio))]


def _ordered(name: str, sign: int) -> Callable[[AblationContext], list[tuple[str, list]]]:
    # problems with fewer distinct sampled answers count as easier
    def variants(c: AblationContext) -> list[tuple[str, list]]:
        order = lambda e: sign * c.pool.distinct.get(e.meta["problem_id"], 0)  # noqa: E731
        return [(name, nested_subset(candidates(c.acfg, c.pool), c.n, c.ratio, order=order))]
    return variants


def _single_generator(c: AblationContext) -> list[tuple[str, list]]:
    gens = list(c.cfg.ablations.single_generators) or [g.name for g in c.cfg.models.generators]
    out = []
    for g in gens:
        keep = lambda x, g=g: x.meta.get("generator") == g  # noqa: E731
        out.append((f"single_generator({g})", nested_subset(candidates(c.acfg, c.pool, keep=keep), c.n, c.ratio)))
    return out


def _ratio(r: float) -> Callable[[AblationContext], list[tuple[str, list]]]:
    return lambda c: [(f"ratio_{r:g}", nested_subset(candidates(c.acfg, c.pool, ratio=r), c.n, r))]


#: ablation name -> what it changes and how its SFT sets are drawn (relative to the SCRIT baseline)
ABLATIONS: dict[str, Ablation] = {
    "baseline": Ablation("SCRIT: all three checks, all problems and generators, good:bad 1:1",
                         lambda c: [("baseline", nested_subset(candidates(c.acfg, c.pool), c.n, c.ratio))]),
    "no_validation": Ablation("no self-validation (every parsed critique kept)", _checks("no_validation")),
    "only_direct_critic": Ablation("check (i) alone: direct critic approves the correction", _checks("only_direct_critic")),
    "only_answer": Ablation("check (ii) alone: correction's answer equals the reference", _checks("only_answer")),
    "only_verdict": Ablation("check (iii) alone: verdict agrees with the known label", _checks("only_verdict")),
    "easiest_family": Ablation("only the easiest family (problems with few operations)", _easiest_family),
    "easier_first": Ablation("examples taken from the easiest problems first (fewest distinct answers)",
                             _ordered("easier_first", 1)),
    "harder_first": Ablation("examples taken from the hardest problems first (most distinct answers)",
                             _ordered("harder_first", -1)),
    "single_generator": Ablation("solutions of one generator only", _single_generator),
    "ratio_0.75": Ablation("good:bad = 0.75:0.25", _ratio(0.75)),
    "ratio_0.25": Ablation("good:bad = 0.25:0.75", _ratio(0.25)),
}

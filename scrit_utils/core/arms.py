"""The critic arms: how an arm's self-training data are made, as one table of data.

An arm is a row of :data:`ARMS`; a profile names it in ``self_critique.mode`` (notebooks 01-04) or
``sweeps.critic_modes`` (the data-size sweep). The row says how the critiques are made (stage 02), which
validation checks keep one (stage 03) and what enters SFT (stage 03 and the sweep's selection); the
figures and claims read its label and colour; nothing else branches on an arm's name. Adding an arm =
one row here + its name in a profile::

    from scrit_utils.core.arms import ARMS
    ARMS["contrastive"].prompt        # 'contrastive': the critic sees the reference solution
    ARMS["only_answer"].checks        # ('answer_matches_reference',): SCRIT's critiques, check (ii) alone

Every control differs from SCRIT (the first row) in one field. Rows marked ``external_supervision``
learn from something the model could not produce itself (the world's exact critique, the world's
rule-based bug injector); their labels say so.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal, get_args

#: stage 03's checks, in order (i), (ii), (iii) (scrit_utils.pipeline.validation explains each)
CHECKS = ("direct_critic_approves", "answer_matches_reference", "verdict_matches_label")

Prompt = Literal["contrastive", "direct"]
Critiques = Literal["pairs", "injected_bugs", "oracle"]
Injector = Literal["model", "world"]
Sft = Literal["balanced", "correct_only"]


@dataclass(frozen=True)
class CriticArm:
    name: str  # the profile's value; also part of every critique's id, so never rename a row
    label: str  # figures and tables (says "external supervision" where the row has it)
    color: str  # figures
    # --- stage 02: how the critiques are made ---
    # the critique prompt: "contrastive" (problem + reference + student, SCRIT) or "direct" (no reference)
    prompt: Prompt
    # what is critiqued, and by whom: "pairs" = the model critiques the stage-01 pairs; "injected_bugs" = for
    # every correct pair a copy with one injected error (written by ``injector``) beside the correct pairs
    # themselves, so both classes exist for the balanced SFT set; "oracle" = the world writes its exact
    # no-reference critique of every pair (the format the evaluation uses) instead of the model
    critiques: Critiques
    # injected_bugs only: the model rewrites the solution (paper) or the world's rule; None = the profile's
    # world.arith.injector (what the v2 design's bug_injection arm did; toy.yaml keeps it reproducible)
    injector: Injector | None = "model"
    # another row whose stage-02 critiques this arm reuses (same pairs, texts and ids): the arm then differs
    # from that row only in what its stage 03 keeps; prompt/critiques must equal that row's
    shares_critiques_with: str | None = None
    # --- stage 03: which checks keep a critique, what enters SFT ---
    checks: tuple[str, ...] | None = None  # None = the profile's validation section; () = keep every critique
    # "balanced" = validation.correct_ratio of critiques of correct solutions (paper 1:1); "correct_only" =
    # critiques of correct solutions only (no incorrect-class example)
    sft: Sft = "balanced"
    # --- the data-size sweep ---
    # at most this many times the profile's problems are drawn for the arm when its SFT set falls short of
    # the arm's largest data size (1 = the profile's problems only); the pilot's yields say how many are needed
    max_draws: int = 1  # used only where the profile sets sweeps.draw_to_fill (v3); the v2 design never draws
    external_supervision: bool = False

    def __post_init__(self) -> None:
        for f, kind in (("prompt", Prompt), ("critiques", Critiques), ("injector", Injector), ("sft", Sft)):
            if getattr(self, f) not in get_args(kind) and not (f == "injector" and self.injector is None):
                raise ValueError(f"arm {self.name!r}: {f} must be one of {get_args(kind)}, got {getattr(self, f)!r}")
        unknown = [c for c in self.checks or () if c not in CHECKS]
        if unknown:
            raise ValueError(f"arm {self.name!r}: unknown checks {unknown} (known: {', '.join(CHECKS)})")
        if self.max_draws < 1:
            raise ValueError(f"arm {self.name!r}: max_draws must be >= 1, got {self.max_draws}")
        if self.external_supervision != ("external supervision" in self.label):
            raise ValueError(f"arm {self.name!r}: the label must say 'external supervision' exactly when the row has it")


_EXT = "external supervision"

#: every arm, in report order (the first is SCRIT itself; the rest are its baselines and controls)
ARMS: dict[str, CriticArm] = {a.name: a for a in (
    CriticArm("contrastive", "SCRIT (contrastive)", "#1f5fa8", prompt="contrastive", critiques="pairs"),
    # no reference; its yield is low (few of its corrections are right), so a sweep with sweeps.draw_to_fill
    # draws more problems for it
    CriticArm("direct", "direct critic (no reference)", "#e08a1e", prompt="direct", critiques="pairs", max_draws=8),
    # the paper's arm: the model writes the bug, then critiques it against the original
    # (injector None: the profile's world.arith.injector, model by default; a v3 profile sets model and names
    # bug_injection_world for the world's rule)
    CriticArm("bug_injection", "bug-injection critic", "#b8323c", prompt="contrastive", critiques="injected_bugs",
              injector=None),
    CriticArm("bug_injection_world", f"bug-injection critic (world's injector; {_EXT})", "#7a1f28",
              prompt="contrastive", critiques="injected_bugs", injector="world", external_supervision=True),
    # the ceiling: exact targets for the same pairs, so no check is needed
    CriticArm("oracle", f"oracle critiques ({_EXT})", "#2a9d5c", prompt="contrastive", critiques="oracle",
              checks=(), external_supervision=True),
    # the floor: SCRIT's validated critiques of correct solutions only (a critic that learns to approve)
    CriticArm("approve_everything", "approve-everything (correct solutions only)", "#9a9a9a", prompt="contrastive",
              critiques="pairs", shares_critiques_with="contrastive", sft="correct_only"),
    # SCRIT's critiques with other checks (notebook 06's validation ablations, along the data axis)
    CriticArm("unvalidated", "SCRIT without validation", "#7fa7d9", prompt="contrastive", critiques="pairs",
              shares_critiques_with="contrastive", checks=()),
    CriticArm("only_answer", "SCRIT, check (ii) only", "#5b8f8f", prompt="contrastive", critiques="pairs",
              shares_critiques_with="contrastive", checks=("answer_matches_reference",)),
    CriticArm("only_verdict", "SCRIT, check (iii) only", "#8c6bb1", prompt="contrastive", critiques="pairs",
              shares_critiques_with="contrastive", checks=("verdict_matches_label",)),
)}


def arm(name: str) -> CriticArm:
    """The row named ``name`` (KeyError listing the known arms)."""
    try:
        return ARMS[name]
    except KeyError:
        raise KeyError(f"unknown critic arm {name!r} (known: {', '.join(ARMS)})") from None


def critique_source(row: CriticArm) -> CriticArm:
    """The row whose stage-02 critiques ``row`` uses: itself, or the row it shares them with (checked to
    make its critiques the same way)."""
    if row.shares_critiques_with is None:
        return row
    src = arm(row.shares_critiques_with)
    if src.shares_critiques_with is not None:
        raise ValueError(f"arm {row.name!r} shares critiques with {src.name!r}, which shares them itself")
    if (src.prompt, src.critiques, src.injector) != (row.prompt, row.critiques, row.injector):
        raise ValueError(f"arm {row.name!r} shares critiques with {src.name!r} but states another prompt/critiques/"
                         "injector: a shared critique pool is made one way")
    return src


def sft_ratio(row: CriticArm, correct_ratio: float) -> float:
    """The share of critiques of correct solutions in the arm's SFT sets (the profile's ratio, or 1.0)."""
    return 1.0 if row.sft == "correct_only" else correct_ratio


# --- cache keys ---------------------------------------------------------------------------------
#: what each of the first three rows did when the stage keys named only the arm (stage 02 VERSION 3, stage 03
#: VERSION 4); bug_injection's injector was then the profile's ``world.arith.injector`` (``None`` below).
#: A row's behaviour enters a stage key only where it differs from this (or from the field defaults, for any
#: other row), so these rows keep their stage hashes and every change to a row still recomputes.
_KEYED_BY_NAME: dict[str, dict] = {
    "contrastive": {"prompt": "contrastive", "critiques": "pairs"},
    "direct": {"prompt": "direct", "critiques": "pairs"},
    "bug_injection": {"prompt": "contrastive", "critiques": "injected_bugs", "injector": None},
}
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(CriticArm) if f.default is not dataclasses.MISSING}


def stage_key(row: CriticArm, stage: Literal["critiques", "validation", "sweep"], profile_injector: str = "model") -> dict:
    """The part of ``row`` a stage's cache key holds: stage 02 ("critiques": prompt, critiques, injector),
    stage 03 ("validation": checks, sft) or the sweep's summary ("sweep": every behaviour field), each field
    only where it differs from what the key meant before rows had fields (:data:`_KEYED_BY_NAME`;
    ``profile_injector`` = the injector the profile chose then)."""
    gen = ["prompt", "critiques"] + (["injector"] if row.critiques == "injected_bugs" else [])
    fields = {"critiques": gen, "validation": ["checks", "sft"],
              "sweep": [*gen, "shares_critiques_with", "checks", "sft", "max_draws"]}.get(stage)
    if fields is None:
        raise ValueError(f"stage_key: stage must be 'critiques', 'validation' or 'sweep', got {stage!r}")
    before = {**_DEFAULTS, **_KEYED_BY_NAME.get(row.name, {})}
    if before.get("injector", "model") is None:
        before["injector"] = profile_injector
    out = {}
    for f in fields:
        v = getattr(row, f)
        if f == "injector" and v is None:
            v = profile_injector
        if f not in before or v != before[f]:
            out[f] = list(v) if isinstance(v, tuple) else v
    return out

"""The critic arms: how an arm's self-training critiques are made, as one table of data.

An arm is a row of :data:`ARMS`; a profile names it in ``self_critique.mode`` (notebooks 01-04) or
``sweeps.critic_modes`` (the data-size sweep). Stage 02 reads the row's behaviour (which prompt,
what is critiqued), the figures and claims its label and colour; nothing else branches on an arm's
name. Adding an arm = one row here + its name in a profile::

    from scrit_utils.core.arms import ARMS
    ARMS["contrastive"].prompt        # 'contrastive': the critic sees the reference solution
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class CriticArm:
    name: str  # the profile's value; also part of every critique's id, so never rename a row
    label: str  # figures and tables
    color: str  # figures
    # the critique prompt: "contrastive" (problem + reference + student, SCRIT) or "direct" (no reference)
    prompt: Literal["contrastive", "direct"]
    # what is critiqued: the stage-01 pairs, or for every correct pair a copy with one injected error
    # (written by the model, or by the world's injector where world.arith.injector=world) beside the
    # correct pairs themselves, so both classes exist for the balanced SFT set
    critiques: Literal["pairs", "injected_bugs"]


#: every arm, in report order (the first is SCRIT itself)
ARMS: dict[str, CriticArm] = {a.name: a for a in (
    CriticArm("contrastive", "SCRIT (contrastive)", "#1f5fa8", prompt="contrastive", critiques="pairs"),
    CriticArm("direct", "direct critic (no reference)", "#e08a1e", prompt="direct", critiques="pairs"),
    CriticArm("bug_injection", "bug-injection critic", "#b8323c", prompt="contrastive", critiques="injected_bugs"),
)}


def arm(name: str) -> CriticArm:
    """The row named ``name`` (KeyError listing the known arms)."""
    try:
        return ARMS[name]
    except KeyError:
        raise KeyError(f"unknown critic arm {name!r} (known: {', '.join(ARMS)})") from None

"""The rounds protocol: how rounds 2..R of the rounds study train (profile key ``sweeps.rounds_protocol``).

The frame is the paper's: every round critiques and validates the same solution pool, and the round-k
model is the new base that critiques, validates and is fine-tuned again. What the paper leaves open,
and issue #24 item 5 fixes in advance, is how round k trains:

- ``continue``: fine-tune the round-(k-1) model again, at ``lr_factor`` times the profile's learning rate,
  on round k's examples with ``replay`` of each earlier round's examples mixed in;
- ``retrain``: fine-tune the ORIGINAL base on the pooled examples of rounds 1..k (the profile's recipe).

``chains`` independent chains replicate the round slope: chain c trains with SFT seed ``sweeps.seeds[c]``
in every round and its own round-(k-1) model is its round-k parent. ``chains: 0`` is the v2 design
(all seeds of round k start from seed ``sweeps.seeds[0]``'s round-(k-1) model).

The defaults are the v2 protocol (continue at the profile's learning rate, no replay, one shared parent),
so a profile that does not name this section trains exactly the stages it trained before
(:mod:`scrit_utils.study.rounds`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PROTOCOLS = ("continue", "retrain")


@dataclass(frozen=True)
class RoundsProtocolConfig:
    # the protocols run as arms of the rounds study; the first is the primary arm (rows' arm "scrit"),
    # each further one an arm "scrit:<protocol>" (round 1 is the same SFT point in every arm)
    arms: tuple[Literal["continue", "retrain"], ...] = ("continue",)
    lr_factor: float = 1.0  # continue, rounds >= 2: training.learning_rate x this (v2: 1.0)
    replay: float = 0.0  # continue, rounds >= 2: share of each earlier round's own examples mixed in (v2: 0.0)
    chains: int = 0  # 0: v2's one shared parent; n >= 1: n independent chains (chain c = sweeps.seeds[c])

    def __post_init__(self) -> None:
        if not self.arms:
            raise ValueError(f"arms is empty (choose from {', '.join(PROTOCOLS)})")
        if len(set(self.arms)) != len(self.arms):
            raise ValueError(f"arms {list(self.arms)}: a protocol is named twice")
        if not self.lr_factor > 0:
            raise ValueError(f"lr_factor {self.lr_factor}: must be > 0")
        if not 0.0 <= self.replay <= 1.0:
            raise ValueError(f"replay {self.replay}: must be a share in [0, 1]")
        if self.chains < 0:
            raise ValueError(f"chains {self.chains}: must be >= 0 (0 = one shared parent)")

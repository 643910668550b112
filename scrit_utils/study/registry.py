"""Names, labels and colours of the study's critic arms and metrics: one table each, read by the
figures, the claims table, the README writer and the notebooks' interpretation helpers.

    from scrit_utils.study.registry import METRIC_LABELS, arm_label
    arm_label("contrastive")   # 'SCRIT (contrastive)'
"""
from __future__ import annotations

from typing import Iterator, Mapping

from scrit_utils.core.arms import ARMS
from scrit_utils.critique.metrics import METRICS

class _ArmField(Mapping):
    """A read-through view: an arm's ``field`` from :data:`scrit_utils.core.arms.ARMS` (read when asked,
    so a row added to the table shows up here), else the value for a series that is not an arm."""

    def __init__(self, field: str, others: dict[str, str]):
        self.field, self.others = field, others

    def __getitem__(self, key: str) -> str:
        return getattr(ARMS[key], self.field) if key in ARMS else self.others[key]

    def __iter__(self) -> Iterator[str]:
        return iter([*ARMS, *(k for k in self.others if k not in ARMS)])

    def __len__(self) -> int:
        return len(list(iter(self)))


#: colours and labels: the critic arms' rows plus the series that are not arms
COLORS = _ArmField("color", {"base": "#6b6b6b", "paper": "#111111"})
LABELS = _ArmField("label", {"base": "base critic", "scrit": "SCRIT", "baseline": "SCRIT baseline", "paper": "paper"})
METRIC_LABELS = {k: m.label for k, m in METRICS.items()}
KEY = ("cc_mean", "ei_f1_strict")  # the two headline metrics of every figure


def critic_type(arm: str) -> str:
    if arm.startswith("base"):
        return "base"
    return arm if arm in ARMS else "contrastive"  # sweep points of other studies are SCRIT (contrastive) critics


def arm_label(arm: str) -> str:
    if ":" in arm:
        kind, model = arm.split(":", 1)
        return f"{'base critic' if kind == 'base' else 'SCRIT'} {model.rstrip('/').split('/')[-1]}"
    return LABELS.get(arm, arm)


def arm_order() -> tuple[str, ...]:
    """The arms in report order (the table's order)."""
    return tuple(ARMS)

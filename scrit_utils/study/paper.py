"""The paper's reported numbers (docs/SCRIT_METHOD.md, "Reported results"): data, not code.

Read by the claims table and by the paper's own panels; never mapped onto the toy study's axes::

    from scrit_utils.study.paper import PAPER, scrit_paper
    PAPER["scrit_170k"]        # (CC-Acc mean, EI-F1 strict)
"""
from __future__ import annotations

#: the paper's numbers (SCRIT_METHOD.md, "Reported results"): (CC-Acc mean, EI-F1 strict)
PAPER = {
    "base": (53.0, 37.8),
    "scrit_170k": (58.3, 45.1),
    "direct_plateau": (55.1, 38.7),
    "bug_injection": (49.0, None),
    "data_sizes": [0, 10_000, 20_000, 40_000, 80_000, 170_000],
    "data_cc": [53.0, 56.8, 57.3, 57.5, 57.6, 58.3],
    "data_ei": [37.8, 40.2, 42.0, 43.2, 43.6, 45.1],
    "model_sizes": {"1.5B": (41.7, 12.5), "7B": (51.2, 29.9), "72B": (58.3, 45.1)},
    "model_params": [1.5e9, 7e9, 72e9],
    "rounds": {"cc": [58.3, 58.9, 59.1], "ei": [45.1, 46.7, 47.5]},
    "scenarios_base": {"cc_acc_wrong": 39.7, "cc_acc_mix": 57.7, "cc_acc_own": 61.7, "ei_f1_strict": 37.8},
    "scenarios_scrit": {"cc_acc_wrong": 50.0, "cc_acc_mix": 62.1, "cc_acc_own": 62.9, "ei_f1_strict": 45.0},
    "ablation_baseline": (56.8, 40.2),
    # ablation -> (CC-Acc, EI-F1) at 10K examples; single generator: midpoint of the reported range
    "ablations": {
        "no_validation": (56.0, 37.2),
        "easiest_family": (55.4, 38.8),
        "harder_first": (55.8, 38.1),
        "easier_first": (56.2, 42.3),
        "single_generator": (56.2, 40.05),
        "ratio_0.75": (55.1, 38.1),
        "ratio_0.25": (56.6, 41.0),
    },
}
PAPER_LEVELS = {"data_size": 6, "model_size": None, "rounds": 3}


def scrit_paper(m: str) -> float:
    if m == "cc_mean":
        return PAPER["scrit_170k"][0] - PAPER["base"][0]
    if m in PAPER["scenarios_scrit"]:
        return PAPER["scenarios_scrit"][m] - PAPER["scenarios_base"][m]
    return PAPER["scrit_170k"][1] - PAPER["base"][1]  # the paper reports strict only; same direction expected


def reports(m: str) -> bool:
    """Whether the paper gives a number for metric ``m``: CC-Acc (mean and scenarios) and EI-F1 strict. It
    reports no EI-F1 original, so no claim compares ours with a number borrowed from strict (issue #24)."""
    return m == "cc_mean" or m in PAPER["scenarios_scrit"]


_scrit_paper = scrit_paper  # the name the claims and figures modules used

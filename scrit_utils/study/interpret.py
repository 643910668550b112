"""The closing markdown of each notebook: a short reading of its result, written from the numbers.

Each function takes what the notebook computed and returns markdown; the notebook shows it with
``display(Markdown(...))`` in its last cell (tagged ``interpretation``; ``scrit run`` hides that
cell's code in the saved notebook, so the notebook ends with the text). Nothing here is a fixed
conclusion: every sentence is chosen by comparing numbers.

Usage::

    from scrit_utils.study import interpret
    display(Markdown(interpret.data_01(manifest["counts"], per_gen)))
"""
from __future__ import annotations

import math

from scrit_utils.study.registry import METRIC_LABELS, arm_label


def _pct(a: float, b: float) -> str:
    return "n/a" if not b else f"{100.0 * a / b:.0f}%"


def _eff(d: dict | None) -> str:
    if d is None:
        return "not measured"
    return f"{d['delta']:+.1f} points [95% CI {d['ci_low']:+.1f}, {d['ci_high']:+.1f}]"


def _clear(lo: float, hi: float) -> str:
    if lo > 0:
        return "a clear gain"
    if hi < 0:
        return "a clear loss"
    return "no clear difference"


def base_models_00(table) -> str:
    """Notebook 00: does showing the reference help every base model?"""
    if table is None or len(table) == 0:
        return "**Reading.** No base model was evaluated in this run."
    lines = ["**Reading.** With vs without the reference solution (the signal SCRIT's synthesis relies on):"]
    for r in table.to_dict("records"):
        gain = r.get("cc_mix_ref", math.nan) - r.get("cc_mix_noref", math.nan)
        lines.append(f"- {r['model']}: CC-Acc balanced {r.get('cc_mix_noref', math.nan):.1f} -> "
                     f"{r.get('cc_mix_ref', math.nan):.1f} ({gain:+.1f}); solve accuracy {r.get('solve_acc', math.nan):.1f}%.")
    return "\n".join(lines)


def data_01(counts: dict, per_gen) -> str:
    """Notebook 01: how much mixed-label data there is, and who wrote it."""
    acc = {r["generator"]: 100 * r["accuracy"] for r in per_gen.to_dict("records")}
    gens = ", ".join(f"{g} {a:.0f}%" for g, a in acc.items())
    return (f"**Reading.** {counts['problems']} of {counts['problems_all']} problems ({_pct(counts['problems'], counts['problems_all'])}) "
            f"have both a correct and an incorrect solution and are kept, with {counts['solutions']} solutions "
            f"({counts['solutions_correct']} correct, {counts['solutions_incorrect']} incorrect). Solve accuracy per "
            f"generator: {gens}. Every later stage works on these {counts['solutions']} solutions.")


def critique_02(counts: dict) -> str:
    """Notebook 02: critiques written and their conclusions."""
    n = counts["critiques"]
    return (f"**Reading.** {n} critiques for {counts['pairs']} pairs; the conclusion says *Correct* in "
            f"{counts['verdict_correct']} ({_pct(counts['verdict_correct'], n)}), *Incorrect* in "
            f"{counts['verdict_incorrect']} ({_pct(counts['verdict_incorrect'], n)}), and {counts['unparsed']} could "
            "not be parsed. Whether these critiques are right is decided by the checks in 03.")


def validation_03(counts: dict) -> str:
    """Notebook 03: what survives validation and what the SFT set looks like."""
    n, p = counts["critiques"], counts["passed"]
    limit = "critiques of correct solutions" if counts.get("passed_correct", 0) < counts.get("passed_incorrect", 0) \
        else "critiques of incorrect solutions"
    return (f"**Reading.** {p} of {n} critiques ({_pct(p, n)}) pass every enabled check "
            f"({counts.get('passed_correct', 0)} of correct, {counts.get('passed_incorrect', 0)} of incorrect solutions). "
            f"The 1:1 balance keeps {counts['sft_examples']} SFT examples ({counts.get('sft_correct', 0)} + "
            f"{counts.get('sft_incorrect', 0)}); the scarcer class, {limit}, limits it.")


def training_04(diffs, counts: dict, n_items: int | None) -> str:
    """Notebook 04: the loop's trained critic against the base, paired over the same items."""
    rows = {r["metric"]: r for r in diffs.to_dict("records")}
    parts = []
    for m in ("cc_mean", "ei_f1_strict"):
        r = rows.get(m)
        if r is not None:
            parts.append(f"{METRIC_LABELS[m]}: {_eff(r)}, {_clear(r['ci_low'], r['ci_high'])} (MDE {r['mde']:.1f})")
    loss = ""
    if counts.get("first_logged_loss") is not None and counts.get("last_logged_loss") is not None:
        loss = (f" The training loss went from {counts['first_logged_loss']:.3f} to {counts['last_logged_loss']:.3f} "
                f"over {counts.get('steps')} steps.")
    return (f"**Reading.** Fine-tuned on {counts.get('examples')} validated examples, the critic minus the base "
            f"critic on the same {n_items} items per set: " + "; ".join(parts) + "." + loss +
            " One SFT seed: the intervals cover evaluation noise only; notebooks 05-06 add the seed spread.")


def scaling_05(gains, trends) -> str:
    """Notebook 05: gain at the largest data size per critic mode, and the three trends."""
    out = ["**Reading.**"]
    ds = gains[(gains["study"] == "data_size") & (gains["metric"] == "cc_mean")]
    for arm, g in ds.groupby("arm"):
        r = g.sort_values("x").iloc[-1]
        out.append(f"- {arm_label(arm)} at {r['x']:g} examples minus the base, CC-Acc mean: {_eff(r)}: "
                   f"{_clear(r['ci_low'], r['ci_high'])}.")
    for study, arm in (("data_size", "contrastive"), ("model_size", "scrit"), ("rounds", "scrit")):
        t = trends[(trends["study"] == study) & (trends["arm"] == arm) & (trends["metric"] == "cc_mean")]
        if not t.empty:
            r = t.iloc[0]
            rho = "undefined" if math.isnan(r["rho"]) else f"{r['rho']:+.2f} (exact p {r['p_rho']:.2f})"
            out.append(f"- {study.replace('_', ' ')} trend (SCRIT, CC-Acc mean): {r['slope']:+.2f} {r['unit']} "
                       f"[{r['ci_low']:+.2f}, {r['ci_high']:+.2f}], {_clear(r['ci_low'], r['ci_high'])}, MDE "
                       f"{r['mde']:.2f}; Spearman rho of the {r['levels']} level means {rho}.")
    if len(out) == 1:
        out.append("no point was measured.")
    return "\n".join(out)


def ablations_06(comp, counts: dict) -> str:
    """Notebook 06: the claim verdicts in one paragraph."""
    measured = len(comp) - counts["not measured"]
    return (f"**Reading.** Of {measured} measured statements of the paper, {counts['reproduced']} have our effect on "
            f"the same side, {counts['not reproduced']} do not and {counts['inconclusive']} are inconclusive (the "
            "study's MDE is above the paper's effect). This compares signs on one build, metric by metric: descriptive. "
            "Where the profile registers claims, they are the study's verdicts (notebook 05; `results/README.md` "
            "opens with them); the table above has every comparison with its paired 95% CI and MDE.")

"""Claims, verdicts, summaries and the README of scrit_utils.study.claims / study_readme on
synthetic study points with per-item scores (tests/study_synth.py)."""
from __future__ import annotations

import pytest

from scrit_utils.core import config
from scrit_utils.study import interpret, readme as study_readme, claims as rep, results_check

from . import study_synth

B = 100  # bootstrap resamples: enough for the verdicts below, fast


def _comp(rows, **kw):
    c = rep.comparisons(rows, n_boot=B, **kw)
    return {(r.claim, r.metric): r.verdict for r in c.itertuples()}, c


def test_verdict_rules():
    est = lambda lo, hi, mde: {"ci_low": lo, "ci_high": hi, "mde": mde, "estimate": (lo + hi) / 2}  # noqa: E731
    assert rep.verdict(5.0, est(1.0, 9.0, 4.0)) == "reproduced"
    assert rep.verdict(-5.0, est(-9.0, -1.0, 4.0)) == "reproduced"
    assert rep.verdict(5.0, est(-9.0, -1.0, 4.0)) == "not reproduced (clear opposite effect)"
    # no clear effect: "not reproduced" only when a paper-sized effect was detectable
    assert rep.verdict(5.0, est(-2.0, 2.0, 3.0)) == "not reproduced (a paper-sized effect was detectable)"
    assert rep.verdict(5.0, est(-8.0, 8.0, 11.0)).startswith("inconclusive (underpowered")
    # paper null: reproduced only inside the equivalence margin
    assert rep.verdict(0.2, est(-0.8, 0.9, 1.0)) == "reproduced (no effect in either)"
    assert rep.verdict(0.2, est(-3.0, 3.0, 4.0)).startswith("inconclusive (paper: no effect")
    assert rep.verdict(0.2, est(1.0, 3.0, 1.0)).startswith("not reproduced (paper: no effect")
    # a trend whose total change over the paper's sweep is not negligible is not a null
    assert rep.verdict(0.4, est(-3.0, 3.0, 4.0), paper_size=0.8).startswith("inconclusive (underpowered")
    assert rep.verdict(5.0, None) == "not measured"


def test_a_clear_gain_reproduces_and_a_decline_does_not():
    v, _ = _comp(study_synth.study(gain=0.04))
    assert v[("SCRIT beats the base critic", "cc_mean")] == "reproduced"
    assert v[("more SCRIT data helps (slope over data-size levels)", "cc_mean")] == "reproduced"
    assert v[("bug-injection critic declines below the base", "cc_mean")] == "reproduced"
    assert v[("ablation: no_validation", "cc_mean")] == "reproduced"
    v, _ = _comp(study_synth.study(gain=-0.04))
    assert v[("SCRIT beats the base critic", "cc_mean")] == "not reproduced (clear opposite effect)"
    assert v[("more SCRIT data helps (slope over data-size levels)", "cc_mean")] == "not reproduced (clear opposite effect)"


def test_no_effect_is_not_reproduced_only_when_detectable():
    big = study_synth.study(gain=0.0, n=600, flip=0.01)
    v, c = _comp(big)
    row = c[(c["claim"] == "SCRIT beats the base critic") & (c["metric"] == "cc_mean")].iloc[0]
    assert row["mde"] < 5.3 and v[("SCRIT beats the base critic", "cc_mean")].startswith("not reproduced (a paper-sized")
    small = study_synth.study(gain=0.0, n=25, flip=0.0)  # no seed spread: items alone decide
    v, c = _comp(small)
    row = c[(c["claim"] == "SCRIT beats the base critic") & (c["metric"] == "cc_mean")].iloc[0]
    assert row["mde"] > 5.3 and row["verdict"].startswith("inconclusive")
    assert row["items_needed"] > 25  # the planning helper says how many items would resolve it


def test_base_copies_per_seed_are_one_measurement():
    rows = [r for r in study_synth.study(gain=0.03) if r["study"] == "data_size" and r["arm"] == "contrastive"]
    once = [r for r in rows if not (r["eval_stage"] == "base" and r["seed"] != 0)]
    s1, s3 = rep.summarize(rows, B), rep.summarize(once, B)
    cell = lambda s: s[(s["study"] == "data_size") & (s["arm"] == "contrastive") & (s["x"] == 0)  # noqa: E731
                       & (s["metric"] == "cc_mean")].iloc[0]
    assert cell(s1)["n_seeds"] == 1 and cell(s1)["mean"] == cell(s3)["mean"]
    t1, t3 = rep.trends(rows, B), rep.trends(once, B)
    pick = lambda t: t[(t["study"] == "data_size") & (t["arm"] == "contrastive") & (t["metric"] == "cc_mean")].iloc[0]  # noqa: E731
    assert pick(t1)["slope"] == pytest.approx(pick(t3)["slope"]) and pick(t1)["levels"] == 5
    trained = s1[(s1["study"] == "data_size") & (s1["arm"] == "contrastive") & (s1["x"] == 128)]
    assert set(trained["n_seeds"]) == {3}


def test_gains_are_paired_against_the_right_reference():
    g = rep.gains(study_synth.study(gain=0.03), B)
    ref = dict(zip(zip(g["study"], g["arm"]), g["vs"]))
    assert ref[("data_size", "contrastive")] == "contrastive"  # its own x = 0 (the base critic)
    assert ref[("model_size", "scrit:models/toy-1")] == "base:models/toy-1"
    assert ref[("ablation", "no_validation")] == "baseline"
    assert not ((g["study"] == "ablation") & (g["arm"] == "baseline")).any()


def test_loop_claims_are_part_of_the_comparison():
    rows = study_synth.study(gain=0.04)
    loop = {"base": rows[0]["items"], "trained": next(r["items"] for r in rows if r["arm"] == "contrastive" and r["x"] == 128),
            "detail": "notebook 04 (synthetic)"}
    v, c = _comp(rows, loop=loop)
    assert v[("SCRIT beats the base critic (loop, notebook 04)", "cc_mean")] == "reproduced"
    assert "item noise only" in c[c["claim"].str.contains("loop")]["detail"].iloc[0]
    scores, diffs = rep.loop_frames(loop, B)
    assert set(scores["critic"]) == {"base", "trained"} and (diffs["delta"] > 0).all()
    assert "trained - base (paired)" in rep.loop_table(scores, diffs).columns


def test_readme_opens_with_its_bottom_line(tmp_path):
    cfg = config.load("configs/smoke.yaml", [f"run.results_dir={tmp_path}"])
    rows = study_synth.study(gain=0.04)
    comp = rep.comparisons(rows, n_boot=B)
    p = study_readme.write_readme(cfg, comp, rep.summarize(rows, B), rep.gains(rows, B), ["- synthetic design"],
                                  trends=rep.trends(rows, B))
    lines = p.read_text().splitlines()
    assert lines[0].startswith("<!-- scrit-run sha=") and lines[1].startswith("# SCRIT study results")
    heads = [l for l in lines if l.startswith("## ")]
    assert heads[:3] == ["## Bottom line", "## Limitations: what the toy world is and is not", "## Claims"]
    text = "\n".join(lines)
    n = rep.verdict_counts(comp)
    assert f"**{n['reproduced']} reproduced**" in text and "- synthetic design" in text
    # wide tables: one row per critic, one column per data size
    header = next(l for l in lines if l.startswith("| critic | 0 (base) | 16 | 32 | 64 | 128 |"))
    assert header
    # model size: one row per critic kind (base, SCRIT, paired gain), one column per model
    i = lines.index(next(l for l in lines if l.startswith("**Model size: CC-Acc")))
    table = lines[i + 2:lines.index("", i + 2)]
    assert [r.split(" | ")[0] for r in table[2:]] == ["| base critic", "| SCRIT", "| gain of SCRIT (paired)"]
    assert all(r.count("[") == table[0].count("params") for r in table[2:]), table


def test_no_comparison_borrows_a_number_the_paper_does_not_give():
    _, c = _comp(study_synth.study(gain=0.04))
    assert "ei_f1_original" not in set(c["metric"])  # the paper reports EI-F1 strict only
    assert {"cc_mean", "ei_f1_strict"} <= set(c["metric"])


def test_a_readme_with_registered_claims_calls_the_paper_comparison_descriptive(tmp_path):
    cfg = config.load("configs/smoke.yaml", [f"run.results_dir={tmp_path}"])
    rows = study_synth.study(gain=0.04)
    comp = rep.comparisons(rows, n_boot=B)
    pre = [results_check.PREREGISTERED_HEAD, "", "| claim |", ""]
    p = study_readme.write_readme(cfg, comp, rep.summarize(rows, B), rep.gains(rows, B), ["- d"], preregistered=pre)
    text = p.read_text()
    heads = [l for l in text.splitlines() if l.startswith("## ")]
    assert heads[:2] == [results_check.PREREGISTERED_HEAD, "## Bottom line"], heads
    assert "## The paper's statements next to ours (descriptive)" in heads and "## Claims" not in heads
    assert "**Descriptive, not claims.**" in text and "measured comparisons" in text
    assert "Holm across the tested claims. The paper comparison: each comparison is tested on its own" in text


def test_interpretations_are_written_from_the_numbers():
    rows = study_synth.study(gain=0.04)
    gains, trends = rep.gains(rows, B), rep.trends(rows, B)
    text = interpret.scaling_05(gains, trends)
    r = gains[(gains["study"] == "data_size") & (gains["arm"] == "contrastive") & (gains["metric"] == "cc_mean")]
    assert f"{r.sort_values('x').iloc[-1]['delta']:+.1f} points" in text and "a clear gain" in text
    comp = rep.comparisons(rows, n_boot=B)
    assert f"{rep.verdict_counts(comp)['reproduced']} have our effect on the same side" in \
        interpret.ablations_06(comp, rep.verdict_counts(comp))


def test_contrastive_vs_direct_at_the_largest_size_both_reached():
    rows = [r for r in study_synth.study(gain=0.04) if r["study"] == "data_size"
            and not (r["arm"] == "direct" and r["x"] == 128)]  # the direct arm ran out of examples at 64
    _, c = _comp(rows)
    row = c[(c["claim"] == "contrastive critic beats the direct critic") & (c["metric"] == "cc_mean")].iloc[0]
    assert row["detail"] == "at 64 examples" and row["verdict"] != "not measured"


def test_readme_puts_a_replicate_runs_verdicts_beside_and_names_the_flips(tmp_path):
    cfg = config.load("configs/smoke.yaml", [f"run.results_dir={tmp_path}", 'sweeps.compare_runs=["rep"]'])
    rows = study_synth.study(gain=0.04)
    comp = rep.comparisons(rows, n_boot=B)
    args = (rep.summarize(rows, B), rep.gains(rows, B), ["- synthetic design"])
    text = study_readme.write_readme(cfg, comp, *args).read_text()
    assert "**Replicate `rep`:** not run yet" in text and "## Replicates" not in text
    # the replicate saw the opposite on the first measured claim
    other = comp.copy()
    i = other.index[other["verdict"].str.startswith("reproduced")][0]
    other.loc[i, "verdict"], other.loc[i, "our_effect"] = "not reproduced (opposite sign)", -3.0
    (tmp_path / "tables" / "rep").mkdir(parents=True)
    other.to_csv(tmp_path / "tables" / "rep" / "06_paper_comparison.csv", index=False)
    (tmp_path / "runs" / "rep").mkdir(parents=True)
    (tmp_path / "runs" / "rep" / "run.json").write_text('{"notebooks": {"06_ablations": {"run_sha": "%s"}}}' % ("c" * 40))
    text = study_readme.write_readme(cfg, comp, *args).read_text()
    measured = int((~comp["verdict"].str.startswith("not measured")).sum())
    assert f"**Replicate `rep`** (run `cccccccccccc`): {measured - 1} of {measured} claims" in text and "1 flip:" in text
    assert f"  - {comp.loc[i, 'claim']} (" in text and "reproduced here, not reproduced there" in text
    df, sha = study_readme.replicate_frame(cfg, comp, "rep")
    assert list(df["flip"]).count("FLIP") == 1 and df.loc[df["flip"] == "FLIP", "rep [95% CI]"].iloc[0].startswith("-3.0")
    assert "## Replicates" in text and "### Beside `rep`" in text

"""Base builds as a random effect: a profile's sweep on several builds (scrit_utils/study/builds.py), and notebook
05's point rows turned into the [build, seed, item] cells the pre-registered claims read."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scrit_utils.core import config
from scrit_utils.core.config import ConfigError
from scrit_utils.study import builds
from scrit_utils.study import preregistration as pre

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "configs" / "smoke.yaml"
SMOKE_MODELS = ("toy-0.1m", "toy-0.2m", "toy-0.3m")


def _build_dir(root: Path, names=SMOKE_MODELS) -> str:
    """A build folder holding the smoke profile's models (links to the committed ones)."""
    root.mkdir(parents=True)
    for n in names:
        (root / n).symlink_to(REPO / "models" / n, target_is_directory=True)
    return str(root)


def test_each_build_moves_every_study_model_and_leaves_the_benchmark_generators(tmp_path):
    b0, b1 = _build_dir(tmp_path / "b0"), _build_dir(tmp_path / "b1")
    cfg = config.load(SMOKE, [f"sweeps.builds=['{b0}', '{b1}']"])
    got = builds.each(cfg)
    assert [label for label, _ in got] == [b0, b1]
    for label, bcfg in got:
        assert bcfg.models.critic == f"{label}/toy-0.3m"
        assert [g.path for g in bcfg.models.generators] == [f"{label}/{Path(g.path).name}" for g in cfg.models.generators]
        assert [g.name for g in bcfg.models.generators] == [g.name for g in cfg.models.generators]  # labels stay
        assert list(bcfg.sweeps.model_sizes) == [f"{label}/{Path(p).name}" for p in cfg.sweeps.model_sizes]
        assert bcfg.world.arith.benchmark_generators == cfg.world.arith.benchmark_generators
        assert bcfg.sweeps.builds == ()
    # no builds: the profile itself, one build labelled ""
    plain = config.load(SMOKE)
    assert builds.each(plain) == [("", plain)] and builds.labels(plain) == [""]


def test_a_build_without_a_model_names_the_build_the_key_and_the_model(tmp_path):
    b0 = _build_dir(tmp_path / "b0", names=("toy-0.1m", "toy-0.3m"))  # no toy-0.2m (a model size)
    cfg = config.load(SMOKE, [f"sweeps.builds=['{b0}']"])
    with pytest.raises(ValueError, match=r"sweeps\.builds\[0\].*no toy-0\.2m there \(sweeps\.model_sizes\[1\]"):
        builds.each(cfg)


def test_a_build_listed_twice_is_a_config_error():
    with pytest.raises(ConfigError, match=r"sweeps\.builds.*listed twice"):
        config.load(SMOKE, ["sweeps.builds=['models', 'models/']"])


# --- point rows -> cells ------------------------------------------------------------------------------------
IDS = [f"w{i}" for i in range(40)]


def _row(build, study, arm, x, seed, hits, n_examples=0, ids=IDS):
    return {"build": build, "study": study, "arm": arm, "x": x, "seed": seed, "n_examples": n_examples,
            "items": {"wrong": {"ids": list(ids), "task": ["arith"] * len(ids), "ok": [int(h) for h in hits]}}}


def _rows(builds_=("b0", "b1", "b2"), seeds=(0, 1), rng=None):
    rng = rng or np.random.default_rng(0)
    rows, truth = [], {}
    for b in builds_:
        base = rng.random(len(IDS)) < 0.2
        truth.setdefault(("base", 0.0), []).append([base])
        for mode in ("contrastive", "approve_everything"):
            for s in seeds:  # every mode and seed asks for the same base evaluation
                rows.append(_row(b, "data_size", mode, 0, s, base))
        for mode, rate in (("contrastive", 0.6), ("approve_everything", 0.1)):
            per_seed = []
            for s in seeds:
                h = rng.random(len(IDS)) < rate
                per_seed.append(h)
                rows.append(_row(b, "data_size", mode, 128, s, h, n_examples=128))
            truth.setdefault((mode, 128.0), []).append(per_seed)
        for params in (66e3, 409e3):
            mb = rng.random(len(IDS)) < 0.2
            truth.setdefault((f"base@{params:g}", 0.0), []).append([mb])
            per_seed = []
            for s in seeds:
                h = rng.random(len(IDS)) < 0.5
                per_seed.append(h)
                rows.append(_row(b, "model_size", f"base:models/x-{params:g}", params, s, mb))
                rows.append(_row(b, "model_size", f"scrit:models/x-{params:g}", params, s, h, n_examples=64))
            truth.setdefault((f"contrastive@{params:g}", 64.0), []).append(per_seed)
        rows.append({**_row(b, "ablation", "no_validation", 64, 0, base)})  # no claim reads the ablations
        for rnd, rate in ((0, 0.2), (1, 0.5), (2, 0.6), (3, 0.7)):  # rounds: arm "scrit" = the first protocol
            per_seed = [rng.random(len(IDS)) < rate for _ in seeds]
            for s, h in zip(seeds, per_seed):
                rows.append(_row(b, "rounds", "scrit", rnd, s, h, n_examples=64 if rnd else 0))
                rows.append(_row(b, "rounds", "scrit:retrain", rnd, s, h, n_examples=64 if rnd else 0))
            truth.setdefault(("rounds", float(rnd)), []).append(per_seed[:1] if rnd == 0 else per_seed)
            truth.setdefault(("rounds:retrain", float(rnd)), []).append(per_seed[:1] if rnd == 0 else per_seed)
    return rows, {k: np.asarray(v, dtype=float) for k, v in truth.items()}


def test_cells_are_build_seed_item_arrays_with_one_base_evaluation_per_build():
    rows, truth = _rows()
    cells, notes = pre.cells_from_points(rows)
    assert notes == []
    assert set(cells) == set(truth)
    for k, v in truth.items():
        np.testing.assert_array_equal(cells[k], v, err_msg=str(k))
    assert cells[("base", 0.0)].shape == (3, 1, len(IDS))
    assert cells[("contrastive", 128.0)].shape == (3, 2, len(IDS))
    df = pre.analyse(cells, n_boot=200).set_index("claim")
    assert df.loc["scrit_vs_base", "builds"] == 3 and df.loc["scrit_vs_base", "measured"]
    assert df.loc["gain_slope_model_size", "measured"]
    assert df.loc["rounds", "measured"] and df.loc["rounds", "builds"] == 3  # rounds 1-3 of the first protocol
    assert df.loc["scrit_vs_base", "verdict"] == "reproduced"  # 60% vs 20% hits on 3 builds x 40 items


def test_a_cell_one_build_did_not_reach_is_left_out_and_named():
    rows, _ = _rows()
    # build b2's approve-everything arm was capped at 100 examples: its x differs from the other builds'
    rows = [{**r, "x": 100} if r["build"] == "b2" and r["arm"] == "approve_everything" and r["x"] == 128 else r
            for r in rows]
    cells, notes = pre.cells_from_points(rows)
    assert ("approve_everything", 128.0) not in cells and ("approve_everything", 100.0) not in cells
    assert any("approve_everything at 128: not on build(s) ['b2']" in n for n in notes)


def test_cells_scored_on_other_items_are_an_error():
    rows, _ = _rows()
    rows.append(_row("b0", "data_size", "direct", 128, 0, np.zeros(39), n_examples=128, ids=IDS[:39]))
    with pytest.raises(ValueError, match="other items"):
        pre.cells_from_points(rows)


def test_one_build_is_measured_but_not_claimable():
    rows, _ = _rows(builds_=("",))
    cells, _ = pre.cells_from_points(rows)
    df = pre.analyse(cells, n_boot=200).set_index("claim")
    assert df.loc["scrit_vs_base", "measured"]
    assert df.loc["scrit_vs_base", "verdict"].startswith("not claimable")


def test_readme_opens_with_the_claims_and_the_arms_at_matched_counts():
    from scrit_utils.study import readme

    rows, _ = _rows()
    cells, notes = pre.cells_from_points(rows)
    arms = pre.arms_table(cells, n_boot=100)
    at128 = arms[arms["examples"] == 128]
    assert set(at128["arm"]) == {"contrastive", "approve_everything"} and set(at128["builds"]) == {3}
    assert arms.iloc[0]["arm"] == "base" and arms.iloc[0]["examples"] == 0
    # each build's own mean, in build order (the t interval over 3 builds is wide; the order per build is not)
    base_by_build = cells[("base", 0.0)].mean(axis=(1, 2)) * 100
    assert arms.iloc[0]["per_build"] == " / ".join(f"{m:.1f}" for m in base_by_build)
    lines = readme.preregistered_lines(pre.analyse(cells, n_boot=100), arms, ["a note"])
    text = "\n".join(lines)
    assert lines[0] == "## Pre-registered claims (study v3)"
    assert "| `scrit_vs_base` |" in text and "reproduced" in text and "- a note" in text
    assert "### Arms at matched example counts" in text


def test_natural_vs_injected_puts_each_diagnosed_arm_on_both_sets():
    rows, _ = _rows()
    inj_ids = [f"injected:{i}" for i in IDS]
    for r in rows:  # the base and contrastive at 128 were diagnosed
        if r["study"] == "data_size" and r["arm"] == "contrastive":
            r["items_injected"] = {"wrong": {"ids": inj_ids, "task": ["arith"] * len(IDS), "ok": [1] * len(IDS)}}
    df = pre.natural_vs_injected(rows, n_boot=100)
    assert list(df["arm"]) == ["base", "contrastive"]
    assert (df["mean_injected"] == 100.0).all() and (df["mean_natural"] < 100.0).all()
    assert pre.natural_vs_injected(_rows()[0], n_boot=100).empty  # nothing diagnosed: no table


def test_pilot_components_and_the_mde_grid_of_every_design():
    from scrit_utils.study import pilot_v3

    rows, _ = _rows()
    cells, _ = pre.cells_from_points(rows)
    comp = pilot_v3.components(cells, n_boot=100).set_index("claim")
    assert set(comp.index) == {"scrit_vs_base", "scrit_vs_approve_everything"}  # the differences measured at 128
    assert comp.loc["scrit_vs_base", "trained_arms"] == 1 and comp.loc["scrit_vs_approve_everything", "trained_arms"] == 2
    assert (comp[["sd_seed", "sd_item"]] >= 0).all().all() and (comp["builds"] == 3).all()
    grid = pilot_v3.mde_grid(comp.reset_index())
    assert len(grid) == len(pilot_v3.BUILDS) * len(pilot_v3.SEEDS) * len(pilot_v3.ITEMS)
    assert list(grid["sft_runs_per_arm"]) == sorted(grid["sft_runs_per_arm"])  # cheapest first
    one = grid.set_index(["builds", "seeds", "items"])["max"]
    assert one[(5, 3, 1200)] < one[(3, 1, 300)]  # more of everything: a smaller detectable effect


def test_model_sizes_trained_on_different_counts_are_not_measured_and_say_why():
    rows, _ = _rows()
    rows = [{**r, "n_examples": 50} if r["arm"] == "scrit:models/x-409000" else r for r in rows]  # one size short
    df = pre.analyse(pre.cells_from_points(rows)[0], n_boot=100).set_index("claim")
    v = df.loc["gain_slope_model_size", "verdict"]
    assert v.startswith("not measured (the model sizes were trained on different example counts") and "409000" in v
    assert not df.loc["gain_slope_model_size", "measured"] and df.loc["scrit_vs_base", "measured"]


# --- the headroom variant (sweeps.headroom_builds) ------------------------------------------------------------
def test_each_build_gets_its_own_headroom_variant_and_a_miscount_is_a_config_error(tmp_path):
    b0, b1 = _build_dir(tmp_path / "b0"), _build_dir(tmp_path / "b1")
    h0, h1 = _build_dir(tmp_path / "h0"), _build_dir(tmp_path / "h1")
    cfg = config.load(SMOKE, [f"sweeps.builds=['{b0}', '{b1}']", f"sweeps.headroom_builds=['{h0}', '{h1}']"])
    assert [bcfg.sweeps.headroom_builds for _, bcfg in builds.each(cfg)] == [(h0,), (h1,)]  # paired by position
    with pytest.raises(ConfigError, match=r"sweeps\.headroom_builds: 1 folder\(s\) for 2 build\(s\)"):
        config.load(SMOKE, [f"sweeps.builds=['{b0}', '{b1}']", f"sweeps.headroom_builds=['{h0}']"])


def test_a_headroom_variant_without_the_critic_fails_before_any_build_runs(tmp_path):
    b0, b1 = _build_dir(tmp_path / "b0"), _build_dir(tmp_path / "b1")
    h0, h1 = _build_dir(tmp_path / "h0"), _build_dir(tmp_path / "h1", names=("toy-0.1m",))  # h1 lacks the critic
    cfg = config.load(SMOKE, [f"sweeps.builds=['{b0}', '{b1}']", f"sweeps.headroom_builds=['{h0}', '{h1}']"])
    with pytest.raises(ValueError, match=r"sweeps\.headroom_builds\[1\] = .*h1: no toy-0\.3m there \(models\.critic"):
        builds.each(cfg)  # all builds' configs are made before notebook 05 runs a stage


def test_headroom_cells_are_read_by_no_claim_and_tabled_with_the_gain_difference():
    rows, _ = _rows()
    rng = np.random.default_rng(5)
    for b in ("b0", "b1", "b2"):  # the variant: a better base (smaller gap), SCRIT reaching about the same level
        vb = rng.random(len(IDS)) < 0.5
        for s in (0, 1):
            rows.append(_row(b, "headroom", "base:h", 409e3, s, vb))
            rows.append(_row(b, "headroom", "scrit:h", 409e3, s, rng.random(len(IDS)) < 0.6, n_examples=128))
    cells, notes = pre.cells_from_points(rows)
    assert notes == [] and cells[(pre.HEADROOM_BASE, 0.0)].shape == (3, 1, len(IDS))
    assert cells[(pre.HEADROOM, 128.0)].shape == (3, 2, len(IDS))
    plain = pre.analyse(pre.cells_from_points(_rows()[0])[0], n_boot=200)
    with_h = pre.analyse(cells, n_boot=200)
    assert plain.equals(with_h)  # no claim reads the headroom cells
    assert not pre.arms_table(cells, n_boot=100)["arm"].str.startswith("headroom").any()
    t = pre.headroom_table(cells, 128, n_boot=300).set_index("critic")
    own, var = t.loc["the build's critic"], t.loc["headroom variant"]
    assert own["gain"] == pytest.approx(own["scrit"] - own["base"])
    diff = t.loc["gain difference (build's critic - variant)"]
    assert diff["gain"] == pytest.approx(own["gain"] - var["gain"]) and diff["ci_low"] < diff["gain"] < diff["ci_high"]
    assert own["builds"] == 3 and own["seeds"] == 2
    assert pre.headroom_table(pre.cells_from_points(_rows()[0])[0], 128, n_boot=100).empty  # no variant: no table


def test_the_timing_report_counts_every_builds_stages(tmp_path):
    """notebook 06's timing report reads the stage dirs of every build's points, not only the first build's (the
    v3 run at 6a98cfa listed build 0's stages only)."""
    from types import SimpleNamespace

    from scrit_utils.study import studies

    rows = [{"build": b, "data_stages": [f"/a/02/{b}", "/a/01/shared"], "train_stage": f"/a/train/{b}",
             "eval_stage": f"/a/eval/{b}"} for b in ("b0", "b1", "b2")]
    abl = [{"build": "b0", "data_stages": ["/a/03/abl"], "train_stage": "/a/train/abl", "eval_stage": "/a/eval/abl"}]
    dirs = studies.timing_dirs(rows, abl, SimpleNamespace(dir="/a/05"), SimpleNamespace(dir="/a/06"))
    assert len(dirs) == len(set(dirs)) == 3 * 3 + 1 + 3 + 2  # each stage once, the shared one too
    for b in ("b0", "b1", "b2"):
        assert {f"/a/02/{b}", f"/a/train/{b}", f"/a/eval/{b}"} <= set(dirs)
    assert {"/a/03/abl", "/a/train/abl", "/a/eval/abl", "/a/05", "/a/06"} <= set(dirs)

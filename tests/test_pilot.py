"""The pilot (scrit_utils.study.pilot) on the smoke profile: real stages on dev items, noise, and a design from it."""
from __future__ import annotations

import json
import math

import pytest

from scrit_utils.core import config
from scrit_utils.study import pilot, design as study_design

SMOKE = "configs/smoke.yaml"


def _cfg(tmp_path, extra=()):
    cfg = config.load(SMOKE, [f"run.artifacts_dir={tmp_path / 'artifacts'}", f"run.results_dir={tmp_path / 'results'}"])
    return pilot.pilot_config(cfg, ["sweeps.data_sizes=[0,8]", "sweeps.seeds=[0,1]", "sweeps.critic_modes=[contrastive]",
                                    "sweeps.model_sizes=[]", "sweeps.rounds=1", "ablations.variants=[]", *extra])


def test_pilot_config_scores_on_dev_and_needs_the_toy_world(tmp_path):
    cfg = _cfg(tmp_path)
    assert cfg.world.arith.eval_split == "dev" and cfg.sweeps.data_sizes == (0, 8)
    with pytest.raises(config.ConfigError, match="dev split"):
        pilot.pilot_config(config.load("configs/qwen2.5-1.5b.yaml"))
    with pytest.raises(ValueError, match="pilot_config"):
        pilot.run(config.load(SMOKE), items=[8], seeds=[2])


@pytest.mark.slow
def test_pilot_on_smoke_measures_noise_on_dev_and_plans_a_design(tmp_path):
    cfg = _cfg(tmp_path)
    res = pilot.run(cfg, items=[8, 64, 4096], seeds=[2, 8], progress=lambda _: None)
    benches = list((tmp_path / "artifacts").glob("04_benchmark/*/bench/summary.json"))  # one benchmark stage
    assert benches and all(json.loads(p.read_text())["split"] == "dev" for p in benches)
    scrit = res.comparisons[(res.comparisons["claim"] == "SCRIT beats the base critic")
                            & (res.comparisons["metric"] == "cc_mean")].iloc[0]
    assert scrit["n_items"] > 0 and scrit["n_seeds"] == 2 and not math.isnan(scrit["se_item"])
    claims = pilot.measured_claims(res.comparisons)
    assert ("SCRIT beats the base critic", "cc_mean") in claims
    # the grid predicts each measured claim at every design; the pilot's own design reproduces its MDE
    assert len(res.grid) == len(claims) * 3 * 2
    own = study_design.scaled_mde(scrit, int(scrit["n_items"]), int(scrit["n_seeds"]))
    assert own == pytest.approx(scrit["mde"], rel=1e-6)
    if res.design is not None:
        assert res.design in {(n, k) for n in (8, 64, 4096) for k in (2, 8)}
    text = pilot.report(res, cfg, ["sweeps.seeds=[0,1]"], SMOKE)
    assert text.startswith("<!-- pilot sha=") and "## Predicted MDE per design" in text
    out = pilot.save(res, tmp_path / "pilot", text)
    assert out.read_text() == text and json.loads((tmp_path / "pilot" / "points.json").read_text())

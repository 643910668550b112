"""The rounds protocol with the real stages (issue #24 item 5): 2 rounds x 2 chains on the smoke profile.

Each chain's round-2 data are critiqued and validated by its own round-1 model, and its round-2 point
fine-tunes that model (continue) or the base on the pooled rounds (retrain); the v2 defaults give the
same SFT stage keys as the v2 code did. Unit tests of the bookkeeping: tests/test_rounds.py."""
from __future__ import annotations

import json
import time

import pytest

from scrit_utils.core import config
from scrit_utils.pipeline import training
from scrit_utils.study import sweeps
from scrit_utils.toy_models.build import is_complete

SMOKE = config.load("configs/smoke.yaml")
MODELS = [SMOKE.models.critic, *(g.path for g in SMOKE.models.generators)]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not all(is_complete(config.resolve_path(m)) for m in MODELS),
                       reason=f"committed toy base models {MODELS} not built yet (scrit build-base-models)"),
]


def _model(job) -> str:
    """The directory of the model a job's SFT stage trains."""
    return str(training.trained_model_dir(sweeps.train_stage(job.cfg_train, job.st03, job.examples)))


def test_each_chain_continues_its_own_round_one_model(tmp_path):
    t0 = time.time()
    base = ["sweeps.rounds=2", "sweeps.seeds=[0, 1]", f"run.artifacts_dir={tmp_path / 'artifacts'}"]
    proto = ["chains=2", "arms=[continue, retrain]", "lr_factor=0.1", "replay=1.0"]
    cfg = config.load("configs/smoke.yaml", [*base, *(f"sweeps.rounds_protocol.{p}" for p in proto)])
    jobs = sweeps.round_jobs(cfg, progress=lambda _: None)
    pts = {(j.arm, j.x, j.seed): j for j in jobs}
    assert len(pts) == len(jobs) == 2 * 2 * 3  # arms x chains x (base, round 1, round 2)
    parents = {}
    for chain, seed in enumerate((0, 1)):
        r1, r2 = pts[("scrit", 1, seed)], pts[("scrit", 2, seed)]
        assert r1.cfg_train.models.critic == SMOKE.models.critic and r1.cfg_train.training.seed == seed
        parent = _model(r1)
        assert (config.resolve_path(parent) / "config.json").exists()  # trained to critique round 2
        assert r2.st03.cfg.models.critic == parent  # round 2's data: critiqued and validated by its own parent
        assert r2.cfg_train.models.critic == parent and r2.cfg_train.training.seed == seed  # ... and it goes on
        assert r2.cfg_train.training.learning_rate == pytest.approx(SMOKE.training.learning_rate * 0.1)
        n1, n2 = len(r1.examples), len(r2.examples)
        assert r2.note == f"continue; chain {chain}; {n1} of {n2} examples replayed from round 1"
        re1, re2 = pts[("scrit:retrain", 1, seed)], pts[("scrit:retrain", 2, seed)]
        assert _model(re1) == parent  # round 1 is one SFT point in both arms
        assert re2.st03.dir == r2.st03.dir and re2.examples == r2.examples  # full replay = the pooled set
        assert re2.cfg_train.models.critic == SMOKE.models.critic  # retrain: the base ...
        assert re2.cfg_train.training.learning_rate == SMOKE.training.learning_rate  # ... at the profile's rate
        parents[chain] = parent
    assert parents[0] != parents[1]  # no shared parent across chains
    r2 = [j for j in jobs if j.x == 2]  # protocol, chain and replay are in the SFT stage keys
    assert len({sweeps.train_stage(j.cfg_train, j.st03, j.examples).hash for j in r2}) == len(r2) == 4

    # the pooled set trains (the earlier round's examples under round-qualified ids)
    re2 = pts[("scrit:retrain", 2, 1)]
    st = sweeps.run_train(re2.cfg_train, re2.st03, re2.examples)
    ids = [json.loads(line)["id"] for line in (st.dir / "examples.jsonl").read_text().splitlines()]
    assert len(ids) == len(set(ids)) == len(re2.examples)
    assert sum(i.startswith("r1@") for i in ids) == len(pts[("scrit", 1, 1)].examples)

    # the v2 defaults: seeds[0]'s round-1 model is every seed's parent, and the SFT stages are the v2 code's
    v2 = config.load("configs/smoke.yaml", base)
    old = {(j.x, j.seed): j for j in sweeps.round_jobs(v2, progress=lambda _: None)}
    assert {j.arm for j in old.values()} == {"scrit"} and all(j.note == "" for j in old.values())
    for seed in (0, 1):
        j = old[(2, seed)]
        assert j.examples and j.cfg_train.models.critic == parents[0]
        assert j.examples == pts[("scrit", 2, 0)].examples[-len(j.examples):]  # chain 0's round-2 data, own part
        acfg = sweeps.arm_cfg(v2, "contrastive", parents[0])  # the v2 code: point_cfg(arm_cfg(critic), seed)
        assert sweeps.train_stage(j.cfg_train, j.st03, j.examples).hash == \
            sweeps.train_stage(sweeps.point_cfg(acfg, seed), j.st03, j.examples).hash
    assert time.time() - t0 < 90

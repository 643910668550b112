"""The rounds protocol (issue #24 item 5; scrit_utils.study.rounds): chains keep their own parents, and
``continue`` / ``retrain`` build their training sets from the rounds' examples as the profile says.

The plan gets its two model steps as callables; here they are bookkeeping functions over synthetic example
lists (each round's data name the critic that made them, each "model" names the point it came from), and
the stages are real stage descriptions (scrit_utils.core.artifacts.stage, nothing run). The real steps on the
smoke profile: tests/test_rounds_smoke.py (slow).
"""
from __future__ import annotations

import pytest

from scrit_utils.core import artifacts, config
from scrit_utils.core.config import ConfigError
from scrit_utils.core.records import SFTExample
from scrit_utils.core.rounds_config import RoundsProtocolConfig
from scrit_utils.study import rounds
from scrit_utils.study.selection import example_ids_hash


def _cfg(*overrides: str, n_rounds: int = 3):
    return config.load("configs/smoke.yaml", ["sweeps.seeds=[0, 1, 2]", f"sweeps.rounds={n_rounds}", *overrides])


def _examples(tag: str, n_pos: int = 4, n_neg: int = 4) -> tuple:
    """A round's own examples; ids repeat across rounds (the same pairs, critiqued again)."""
    return tuple(SFTExample(f"pair{i}", [{"role": "user", "content": tag}], f"{tag}:{i}", i < n_pos, {"critic": tag})
                 for i in range(n_pos + n_neg))


class Steps:
    """``data_for`` and ``train`` over synthetic rounds: a model's name records the point it was trained from."""

    def __init__(self, cfg, tmp_path, empty_after: str | None = None):
        self.cfg, self.root, self.empty_after = cfg, tmp_path, empty_after
        self.data_calls: list = []
        self.trained: dict[str, rounds.RoundPoint] = {}

    def data_for(self, critic):
        self.data_calls.append(critic)
        st = artifacts.stage("03_validation", self.cfg, ["sweeps.rounds"], "1", extra_key={"critic": critic},
                             root=self.root)
        name = critic or "base"
        empty = self.empty_after is not None and critic is not None and self.empty_after in critic
        return rounds.RoundData(st, () if empty else _examples(name))

    def train(self, p):
        model = f"model(r{p.round},chain{p.chain},seed{p.seed},from {p.critic or 'base'})"
        self.trained[model] = p
        return model


def _by(points, **kw):
    return [p for p in points if all(getattr(p, k) == v for k, v in kw.items())]


def test_each_chain_keeps_its_own_parent_through_the_rounds(tmp_path):
    cfg = _cfg("sweeps.rounds_protocol.chains=3", "sweeps.rounds_protocol.arms=[continue]")
    steps = Steps(cfg, tmp_path)
    pts = rounds.plan(cfg, steps.data_for, steps.train, progress=lambda _: None)
    assert len(pts) == 3 * 3  # one point per chain and round
    assert len(steps.trained) == 3 * 2  # each chain's rounds 1..R-1 make the next parent
    for chain, seed in enumerate(cfg.sweeps.seeds):
        mine = sorted(_by(pts, chain=chain), key=lambda p: p.round)
        assert [p.round for p in mine] == [1, 2, 3] and {p.seed for p in mine} == {seed}
        assert mine[0].critic is None and mine[0].init is None  # round 1: the base critic's data, the base
        for prev, cur in zip(mine, mine[1:]):
            parent = steps.trained[cur.critic]
            assert parent is prev and parent.chain == chain  # the parent is this chain's previous model
            assert cur.init == cur.critic  # continue: the parent is fine-tuned again
            assert {e.meta["critic"] for e in cur.data.examples} == {cur.critic}  # its data: its parent's critiques
    for r in (2, 3):
        parents = [p.critic for p in _by(pts, round=r)]
        assert len(set(parents)) == 3  # no parent shared across chains
    # round 1's data come from the base once; every later round from each chain's own parent
    assert steps.data_calls[0] is None and steps.data_calls.count(None) == 1
    assert len(set(steps.data_calls)) == len(steps.data_calls) == 1 + 3 * 2


def test_the_v2_defaults_share_one_parent_and_train_every_seed_on_the_round_alone(tmp_path):
    cfg = _cfg()
    assert cfg.sweeps.rounds_protocol == RoundsProtocolConfig()  # smoke states no protocol: v2's
    steps = Steps(cfg, tmp_path)
    pts = rounds.plan(cfg, steps.data_for, steps.train, progress=lambda _: None)
    assert [(p.round, p.seed) for p in pts] == [(r, s) for r in (1, 2, 3) for s in (0, 1, 2)]
    for r in (2, 3):
        crit = {p.critic for p in _by(pts, round=r)}
        assert len(crit) == 1 and steps.trained[crit.pop()].seed == 0  # seeds[0]'s model is every seed's parent
    for p in pts:
        assert p.arm == "scrit" and p.chain is None and p.n_earlier == 0
        assert p.examples == p.data.examples  # the round's own examples, ids unchanged: the same SFT stage keys
        assert rounds.train_overrides(cfg, p) == {} and rounds.note(cfg, p) == ""
    assert rounds.all_seeds(cfg) == [0, 1, 2]


def test_continue_replays_a_share_of_each_earlier_round_at_a_lower_rate(tmp_path):
    cfg = _cfg("sweeps.rounds_protocol.chains=1", "sweeps.rounds_protocol.lr_factor=0.1",
               "sweeps.rounds_protocol.replay=0.5")
    steps = Steps(cfg, tmp_path)
    r1, r2, r3 = sorted(rounds.plan(cfg, steps.data_for, steps.train, progress=lambda _: None), key=lambda p: p.round)
    assert r1.examples == r1.data.examples and r1.lr_factor == 1.0 and rounds.train_overrides(cfg, r1) == {}
    # round 3: half of round 1's and half of round 2's own examples (class ratio kept), then round 3's
    assert r3.n_earlier == 4 + 4 and len(r3.examples) == 8 + 8
    earlier = r3.examples[: r3.n_earlier]
    assert [e.meta["round"] for e in earlier] == [1] * 4 + [2] * 4
    assert sum(e.label_correct for e in earlier) == 4  # 2 + 2: each round's 1:1 ratio
    assert [e.completion for e in earlier[:4]] == [e.completion for e in (r1.data.examples[:2] + r1.data.examples[4:6])]
    assert r3.examples[r3.n_earlier:] == r3.data.examples
    assert all(e.meta["critic"] == r2.critic for e in earlier[4:])  # round 2's own examples, not its replay
    ov = rounds.train_overrides(cfg, r3)
    assert ov == {"training.learning_rate": pytest.approx(cfg.training.learning_rate * 0.1)}
    assert str(ov["training.learning_rate"]) == "5e-05"  # readable in the stage's config
    assert rounds.note(cfg, r3) == "chain 0; 8 of 16 examples replayed from rounds 1..2"


def test_retrain_fine_tunes_the_base_on_the_pooled_rounds(tmp_path):
    cfg = _cfg("sweeps.rounds_protocol.chains=2", "sweeps.rounds_protocol.arms=[retrain]",
               "sweeps.rounds_protocol.lr_factor=0.1", "sweeps.rounds_protocol.replay=0.25")
    steps = Steps(cfg, tmp_path)
    pts = rounds.plan(cfg, steps.data_for, steps.train, progress=lambda _: None)
    for p in pts:
        assert p.init is None and p.lr_factor == 1.0  # the base at the profile's rate; replay does not apply
        assert len(p.examples) == 8 * p.round and p.n_earlier == 8 * (p.round - 1)  # every earlier round, whole
        if p.round > 1:
            assert rounds.train_overrides(cfg, p) == {"models.critic": cfg.models.critic}
            assert steps.trained[p.critic].chain == p.chain  # data still from the chain's own parent
    r3 = _by(pts, chain=1, round=3)[0]
    assert [e.meta.get("round", 3) for e in r3.examples] == [1] * 8 + [2] * 8 + [3] * 8


def test_two_arms_share_round_one_and_name_the_second_arm(tmp_path):
    cfg = _cfg("sweeps.rounds_protocol.chains=2", "sweeps.rounds_protocol.arms=[continue, retrain]",
               "sweeps.rounds_protocol.replay=1.0", n_rounds=2)
    steps = Steps(cfg, tmp_path)
    pts = rounds.plan(cfg, steps.data_for, steps.train, progress=lambda _: None)
    assert {p.arm for p in pts} == {"scrit", "scrit:retrain"}
    for chain in (0, 1):
        a, b = (_by(pts, chain=chain, round=1, protocol=x)[0] for x in ("continue", "retrain"))
        same = ("examples", "critic", "init", "seed", "lr_factor")
        assert [getattr(a, k) for k in same] == [getattr(b, k) for k in same]
        c, d = (_by(pts, chain=chain, round=2, protocol=x)[0] for x in ("continue", "retrain"))
        assert c.examples == d.examples and c.critic == d.critic  # full replay: the same pooled set and parent
        assert c.init == c.critic and d.init is None  # ... fine-tuned from the parent vs from the base
        assert rounds.note(cfg, d) == f"retrain; chain {chain}; 8 of 16 examples pooled from round 1"
    assert len(steps.data_calls) == 1 + 2  # the retrain arm's parents are the continue arm's (same round-1 points)


def test_replayed_ids_name_their_round_and_stage(tmp_path):
    cfg = _cfg()
    a = rounds.RoundData(artifacts.stage("s", cfg, [], "1", extra_key={"k": 1}, root=tmp_path), _examples("x"))
    b = rounds.RoundData(artifacts.stage("s", cfg, [], "1", extra_key={"k": 2}, root=tmp_path), _examples("x"))
    ex_a, _ = rounds.training_set("retrain", 0.0, [a], a)
    assert len({e.id for e in ex_a}) == len(ex_a) == 16  # the same pair in two rounds: two ids
    assert ex_a[0].id == f"r1@{a.stage.hash}/pair0"
    ex_b, _ = rounds.training_set("retrain", 0.0, [b], a)
    assert example_ids_hash(ex_a) != example_ids_hash(ex_b)  # another earlier stage: another SFT stage key
    assert rounds.replay_subset(a.examples, 0.0) == [] and rounds.replay_subset(a.examples, 1.0) == list(a.examples)
    with pytest.raises(ValueError, match="unknown rounds protocol"):
        rounds.training_set("restart", 0.0, [], a)


def test_an_empty_round_stops_its_chain(tmp_path):
    cfg = _cfg("sweeps.rounds_protocol.chains=1")
    steps = Steps(cfg, tmp_path, empty_after="model(r1")
    msgs: list[str] = []
    pts = rounds.plan(cfg, steps.data_for, steps.train, progress=msgs.append)
    assert [p.round for p in pts] == [1, 2] and pts[1].examples == ()
    assert any("no training examples" in m for m in msgs)


def test_bad_settings_are_errors_naming_the_key():
    with pytest.raises(ConfigError, match=r"sweeps\.rounds_protocol\.chains: 4 chains need 4 SFT seeds"):
        rounds.chain_seeds(_cfg("sweeps.rounds_protocol.chains=4"))
    for ov, msg in (("replay=1.5", "replay 1.5: must be a share"), ("lr_factor=0", "lr_factor 0.0: must be > 0"),
                    ("chains=-1", "chains -1: must be >= 0"), ("arms=[]", "arms is empty"),
                    ("arms=[retrain, retrain]", r"arms \[.retrain., .retrain.\]: a protocol is named twice")):
        with pytest.raises(ConfigError, match=rf"sweeps\.rounds_protocol: {msg}"):
            _cfg(f"sweeps.rounds_protocol.{ov}")
    with pytest.raises(ConfigError, match=r"sweeps\.rounds_protocol\.arms\[0\]: expected one of"):
        _cfg("sweeps.rounds_protocol.arms=[restart]")

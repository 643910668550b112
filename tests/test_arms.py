"""The critic arms are one table (scrit_utils.core.arms.ARMS): a new arm is one row plus a profile entry.

The dummy arm below is added the way a researcher adds one -- a row in the table and its name in a
profile -- and the test checks that the profile accepts it, stage 02 builds its critiques from the
row's behaviour, and the figures and claims' labels read it; no other file is touched."""
from __future__ import annotations

import random

import pytest

from scrit_utils.core import arms, config
from scrit_utils.core.config import ConfigError
from scrit_utils.pipeline import self_critic
from scrit_utils.study import figures, registry
from scrit_utils.worlds import arith

DUMMY = arms.CriticArm("contrastive_copy", "SCRIT, second copy", "#2ca02c", prompt="contrastive", critiques="pairs")


@pytest.fixture
def dummy_arm(monkeypatch):
    monkeypatch.setitem(arms.ARMS, DUMMY.name, DUMMY)  # the one row
    return DUMMY


def _profile(tmp_path, mode: str):
    p = tmp_path / "dummy.yaml"  # the profile entry: a diff over the smoke profile
    p.write_text(f"include: {config.REPO_ROOT / 'configs' / 'smoke.yaml'}\n"
                 f"self_critique:\n  mode: {mode}\nsweeps:\n  critic_modes: [contrastive, {mode}]\n")
    return p


def test_a_profile_naming_an_unknown_arm_is_an_error_naming_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"self_critique\.mode: expected one of 'contrastive', 'direct', "
                                          r"'bug_injection', .*got str 'contrastive_copy'"):
        config.load(_profile(tmp_path, "contrastive_copy"))
    with pytest.raises(ConfigError, match=r"sweeps\.critic_modes\[1\]: expected one of .*'nope' \(set by override"):
        config.load("configs/smoke.yaml", ["sweeps.critic_modes=[contrastive, nope]"])


def test_a_dummy_arm_is_one_row_and_a_profile_entry(tmp_path, dummy_arm):
    cfg = config.load(_profile(tmp_path, dummy_arm.name))
    assert cfg.self_critique.mode == dummy_arm.name and dummy_arm.name in cfg.sweeps.critic_modes

    # stage 02's behaviour comes from the row: a contrastive prompt (reference shown) on every pair
    rng = random.Random(0)
    problems = [arith.to_problem(arith._sample_problem(rng, cfg.world.arith)) for _ in range(3)]
    P = {p.id: p for p in problems}
    sols = [arith.reference_solution(p) for p in problems]
    sols += [arith.inject_error(p, random.Random(i)) for i, p in enumerate(problems)]
    S = {s.id: s for s in sols}
    pairs = self_critic.make_pairs(problems, sols, seed=0)
    jobs = self_critic.critique_jobs(arms.arm(cfg.self_critique.mode), pairs, P, S)
    assert len(jobs) == len(pairs) and all(ref for _, _, ref, _, _ in jobs)
    direct = self_critic.critique_jobs(arms.arm("direct"), pairs, P, S)
    assert all(ref is None for _, _, ref, _, _ in direct)  # the control: same pairs, no reference

    # figures and claims read the table
    assert registry.arm_label(dummy_arm.name) == "SCRIT, second copy"
    assert figures.color(dummy_arm.name) == "#2ca02c"
    assert figures._arm_order(["base", dummy_arm.name, "contrastive"]) == ["contrastive", dummy_arm.name, "base"]


def test_unknown_arm_lookup_lists_the_known_ones():
    with pytest.raises(KeyError, match="unknown critic arm 'orcale' \\(known: contrastive, direct, bug_injection, "
                                       "bug_injection_world, oracle, approve_everything"):
        arms.arm("orcale")

"""The study-v3 rows of the critic-arm table (scrit_utils.core.arms.ARMS): each control differs from SCRIT in one
field, builds its critiques / checks / SFT set from that field, and keys the stages it changes.

Synthetic pools: the world's problems, reference and rule-injected solutions, and critiques whose verdict and
answer are varied so that every check passes on some and fails on others."""
from __future__ import annotations

import dataclasses
import random

import pytest

from scrit_utils import worlds
from scrit_utils.core import arms, artifacts, config
from scrit_utils.core.records import CritiqueRecord, SFTExample, stable_id
from scrit_utils.pipeline import self_critic, validation
from scrit_utils.study import ablations, selection, sweeps
from scrit_utils.worlds import arith

NEW = ("bug_injection_world", "oracle", "approve_everything", "unvalidated", "only_answer", "only_verdict")


def _cfg(tmp_path, mode: str, *extra: str):
    # all three checks on, check (i) on every critique: the profile the ablations select from
    return config.load("configs/smoke.yaml", [f"run.artifacts_dir={tmp_path}", f"self_critique.mode={mode}",
                                              "validation.answer_matches_reference=true",
                                              "validation.verdict_matches_label=true", *extra])


@pytest.fixture(scope="module")
def world_pool():
    """Problems, one reference (correct) and one injected (wrong) solution each, and their pairs."""
    rng = random.Random(3)
    cfg = arith.ArithConfig(max_steps=4)
    problems = [arith.to_problem(arith._sample_problem(rng, cfg), cfg) for _ in range(24)]
    sols = [arith.reference_solution(p) for p in problems]
    sols += [arith.inject_error(p, random.Random(i)) for i, p in enumerate(problems)]
    pairs = self_critic.make_pairs(problems, sols, seed=0)
    return {p.id: p for p in problems}, {s.id: s for s in sols}, pairs


def _critiques(P, S, pairs):
    """A contrastive-arm pool: the world's critique, with the verdict or the corrected answer spoiled on some."""
    out = []
    for i, pair in enumerate(pairs):
        s, p = S[pair.solution_id], P[pair.problem_id]
        text = arith.ground_truth_critique(p, s.steps)
        if i % 3 == 1:  # wrong verdict
            text = text.replace("is Incorrect", "is Correct") if "is Incorrect" in text else text.replace("is Correct", "is Incorrect")
        if i % 4 == 2:  # wrong corrected answer
            text = text.replace(f"\\boxed{{{p.answer}}}", f"\\boxed{{{int(p.answer) + 1}}}")
        meta = {"problem_id": p.id, "solution_id": s.id, "generator": s.generator, "label_correct": pair.label_correct}
        out.append(self_critic.make_record(self_critic.critique_id(pair.id, "contrastive", 0), pair.id, "contrastive",
                                           "m", [{"role": "user", "content": "x"}], text, meta))
    return out


def _direct(crits):
    """Check (i)'s direct critiques: approve every third correction."""
    return {c.id: CritiqueRecord(id=stable_id(c.id, "d"), target_id=c.id, mode="validation", model="m", prompt="",
                                 text="", verdict=(i % 3 != 0), first_error_step=-1 if i % 3 else 2, final_answer=None)
            for i, c in enumerate(crits)}


def _pool(cfg, crits, P, S, direct):
    st = artifacts.stage("03_test", cfg, ["run.seed"], "1")
    return selection.Pool(st, crits, validation.validate(cfg, crits, P, direct), P, S, {})


# --- the table ---------------------------------------------------------------------------------------
def test_every_control_differs_from_its_reference_row_in_one_thing():
    behaviour = [f.name for f in dataclasses.fields(arms.CriticArm)
                 if f.name not in ("name", "label", "color", "external_supervision", "max_draws", "shares_critiques_with")]

    def diff(a, b):
        return {f for f in behaviour if getattr(arms.ARMS[a], f) != getattr(arms.ARMS[b], f)}

    assert diff("approve_everything", "contrastive") == {"sft"}
    assert diff("unvalidated", "contrastive") == diff("only_answer", "contrastive") == {"checks"}
    assert diff("only_verdict", "contrastive") == {"checks"}
    assert diff("bug_injection_world", "bug_injection") == {"injector"}  # the paper's arm: the model's bugs
    assert diff("direct", "contrastive") == {"prompt"}
    # the oracle: the world writes the critique, and exact targets need no validation
    assert diff("oracle", "contrastive") == {"critiques", "checks"} and arms.ARMS["oracle"].checks == ()
    assert [r.name for r in arms.ARMS.values() if r.external_supervision] == ["bug_injection_world", "oracle"]
    assert all("external supervision" in arms.ARMS[n].label for n in ("bug_injection_world", "oracle"))
    for row in arms.ARMS.values():
        assert set(row.checks or ()) <= set(validation.CHECKS)
        assert arms.critique_source(row).shares_critiques_with is None


def test_a_row_with_a_bad_field_is_an_error_naming_the_arm():
    with pytest.raises(ValueError, match="arm 'x': unknown checks \\['nope'\\]"):
        arms.CriticArm("x", "x", "#000", prompt="contrastive", critiques="pairs", checks=("nope",))
    with pytest.raises(ValueError, match="arm 'x': critiques must be one of"):
        arms.CriticArm("x", "x", "#000", prompt="contrastive", critiques="bugs")
    with pytest.raises(ValueError, match="label must say 'external supervision'"):
        arms.CriticArm("x", "x", "#000", prompt="contrastive", critiques="oracle", external_supervision=True)


def test_the_v3_profile_lists_the_new_arms_at_scrits_counts():
    cfg = config.load("configs/toy-v3-arms.yaml")
    assert set(NEW) <= set(cfg.sweeps.critic_modes) and cfg.sweeps.critic_modes[0] == "contrastive"
    assert all(sweeps.mode_sizes(cfg, m) == sweeps.data_sizes(cfg) for m in cfg.sweeps.critic_modes)
    with pytest.raises(config.ConfigError, match=r"sweeps\.critic_modes\[1\]: expected one of .*'oracle'.*got str 'orcale'"):
        config.load("configs/toy-v3-arms.yaml", ["sweeps.critic_modes=[contrastive, orcale]"])


# --- stage keys --------------------------------------------------------------------------------------
def test_the_first_three_rows_keep_their_stage_keys_and_a_changed_row_recomputes(tmp_path, monkeypatch):
    for mode in ("contrastive", "direct", "bug_injection"):
        cfg = config.load("configs/smoke.yaml", [f"run.artifacts_dir={tmp_path}", f"self_critique.mode={mode}"])
        for st in (self_critic.stage(cfg), validation.stage(cfg)):
            assert set(st.config_slice["_extra"]) == {"prompt_version"}, (mode, st.name)
    smoke = _cfg(tmp_path, "contrastive")
    before02, before03 = self_critic.stage(smoke).hash, validation.stage(smoke).hash
    monkeypatch.setitem(arms.ARMS, "contrastive", dataclasses.replace(arms.ARMS["contrastive"], prompt="direct"))
    assert self_critic.stage(smoke).hash != before02 and validation.stage(smoke).hash != before03
    monkeypatch.undo()
    # a check-set arm shares SCRIT's stage 02 (same critiques and ids) and has its own stage 03
    only = _cfg(tmp_path, "only_answer")
    assert self_critic.stage(only).hash == before02 and validation.stage(only).hash != before03
    assert self_critic.generating_cfg(only).self_critique.mode == "contrastive"
    # bug_injection leaves the injector to the profile (world.arith.injector), as the v2 design did: its stage 02
    # keeps the old key under either setting, and bug_injection_world names the world's rule explicitly
    bug = config.load("configs/smoke.yaml", [f"run.artifacts_dir={tmp_path}", "self_critique.mode=bug_injection"])
    toy_like = config.load("configs/smoke.yaml", [f"run.artifacts_dir={tmp_path}", "self_critique.mode=bug_injection",
                                                  "world.arith.injector=world"])
    assert "arm" not in self_critic.stage(toy_like).config_slice["_extra"]
    assert "arm" not in self_critic.stage(bug).config_slice["_extra"]
    assert self_critic.stage(toy_like).hash != self_critic.stage(bug).hash  # the world knob is in the key


# --- what each row builds -------------------------------------------------------------------------------
def test_oracle_targets_are_the_worlds_exact_critique_of_the_same_pairs(tmp_path, world_pool):
    P, S, pairs = world_pool
    cfg = _cfg(tmp_path, "oracle")
    jobs = self_critic.critique_jobs(arms.arm("oracle"), pairs, P, S)
    assert [j[0] for j in jobs] == [j[0] for j in self_critic.critique_jobs(arms.arm("contrastive"), pairs, P, S)]
    st = artifacts.stage("02_test", cfg, ["run.seed"], "1")
    crits = self_critic.oracle_critiques(cfg, st, jobs, P)
    assert len(crits) == len(pairs)
    for c in crits:
        sol = S[c.meta["solution_id"]]
        assert c.text == arith.ground_truth_critique(P[sol.problem_id], sol.steps, with_reference=False)
        assert c.text == worlds.get(cfg).exact_critique(P[sol.problem_id], sol.steps)
    assert validation.enabled_checks(cfg) == []  # exact targets: nothing to validate
    results = validation.validate(cfg, crits, P, None)
    sft, info = validation.build_sft(cfg, crits, results, P, S)
    by_crit = {c.id: c for c in crits}
    assert sft and all(e.completion == by_crit[e.meta["critique_id"]].text for e in sft)
    assert info["sft_correct"] == info["sft_incorrect"]  # balanced like SCRIT


def test_approve_everything_has_no_incorrect_class_example(tmp_path, world_pool):
    P, S, pairs = world_pool
    crits = _critiques(P, S, pairs)
    scrit = _pool(_cfg(tmp_path, "contrastive"), crits, P, S, _direct(crits))
    acfg = _cfg(tmp_path, "approve_everything")
    ours = _pool(acfg, crits, P, S, _direct(crits))
    assert [r.passed for r in ours.results] == [r.passed for r in scrit.results]  # the same checks
    cands = selection.candidates(acfg, ours)
    assert cands and all(e.label_correct for e in cands)
    n = len(cands)
    ex = selection.nested_subset(cands, n, selection.arm_ratio(acfg))
    assert len(ex) == n and all(e.label_correct for e in ex)
    # SCRIT's validated critiques of correct solutions, and all of them
    scrit_pos = {e.id for e in selection.candidates(_cfg(tmp_path, "contrastive"), scrit, ratio=1.0)}
    assert {e.id for e in cands} == scrit_pos
    _, info = validation.build_sft(acfg, crits, ours.results, P, S)
    assert info["sft_incorrect"] == 0 and info["sft_correct"] == info["passed_correct"]


@pytest.mark.parametrize("arm,ablation", [("unvalidated", "no_validation"), ("only_answer", "only_answer"),
                                          ("only_verdict", "only_verdict")])
def test_check_set_arms_select_like_the_ablations_did(tmp_path, world_pool, arm, ablation):
    P, S, pairs = world_pool
    crits = _critiques(P, S, pairs)
    ccfg = _cfg(tmp_path, "contrastive")
    scrit = _pool(ccfg, crits, P, S, _direct(crits))
    old = selection.candidates(ccfg, scrit, checks=ablations.CHECK_SETS[ablation])
    acfg = _cfg(tmp_path, arm)
    assert validation.enabled_checks(acfg) == list(arms.arm(arm).checks)
    # the arm's own stage 03: no check (i) generations (it is not among its checks)
    mine = _pool(acfg, crits, P, S, None)
    new = selection.candidates(acfg, mine)
    assert [e.id for e in new] == [e.id for e in old] and new
    assert len(new) != len(selection.candidates(ccfg, scrit))  # the checks matter on this pool
    for n in (4, 8, 16):
        assert selection.nested_subset(new, n, 0.5) == selection.nested_subset(old, n, 0.5)


def test_yield_counts_per_class(tmp_path, world_pool):
    P, S, pairs = world_pool
    crits = _critiques(P, S, pairs)
    cfg = _cfg(tmp_path, "contrastive")
    results = validation.validate(cfg, crits, P, _direct(crits))
    _, info = validation.build_sft(cfg, crits, results, P, S)
    y = validation.yield_counts(results, info)
    n_pos = sum(p.label_correct for p in pairs)
    assert y["critiqued_correct"] == n_pos and y["critiqued_incorrect"] == len(pairs) - n_pos
    assert y["yield_correct"] == round(info["passed_correct"] / n_pos, 4)


def test_bug_injection_world_uses_the_worlds_injector_and_bug_injection_the_profiles(tmp_path, world_pool, monkeypatch):
    P, S, pairs = world_pool
    cfg = _cfg(tmp_path, "bug_injection_world")
    st = artifacts.stage("inject_test", cfg, ["run.seed"], "1")
    inj = self_critic.inject_bugs(cfg, st, None, pairs, P, S)  # no model needed
    assert len(inj) == sum(p.label_correct for p in pairs) and all(s.generator == "injected:world" for s in inj)
    assert len(self_critic.inject_bugs(_cfg(tmp_path, "bug_injection", "world.arith.injector=world"),
                                       artifacts.stage("inject_w", cfg, ["run.seed"], "1"), None, pairs, P, S)) == len(inj)
    model = _cfg(tmp_path, "bug_injection", "world.arith.injector=model")  # the profile's knob decides for this row

    def generate(backend, out, items, **kw):
        raise RuntimeError(f"the model writes {len(items)} bugs")

    monkeypatch.setattr(self_critic.common, "generate_resumable", generate)
    with pytest.raises(RuntimeError, match=f"the model writes {len(inj)} bugs"):
        self_critic.inject_bugs(model, artifacts.stage("inject_m", model, ["run.seed"], "1"), None, pairs, P, S)


# --- drawing more problems ---------------------------------------------------------------------------------
def test_next_draw_from_the_yield():
    def ex(n_pos, n_neg):
        return [SFTExample(id=str(i), prompt=[], completion="", label_correct=i < n_pos) for i in range(n_pos + n_neg)]
    assert selection.next_draw(1.0, ex(600, 600), 1024, 0.5, 8) is None  # enough
    assert selection.next_draw(1.0, ex(700, 112), 1024, 0.5, 8) == pytest.approx(5.26)  # 512/112 * 1.15
    assert selection.next_draw(1.0, ex(700, 112), 1024, 0.5, 4) == 4.0  # capped
    assert selection.next_draw(1.0, ex(700, 0), 1024, 0.5, 8) == 8.0  # nothing seen: the cap
    assert selection.next_draw(8.0, ex(700, 112), 1024, 0.5, 8) is None  # at the cap
    assert selection.next_draw(1.0, ex(1024, 0), 1024, 1.0, 8) is None  # correct-only arm needs no incorrect ones


def test_a_draw_is_a_superset_of_the_profiles_problems(tmp_path):
    cfg = config.load("configs/smoke.yaml", [f"run.artifacts_dir={tmp_path}", "self_critique.mode=direct"])
    drawn = sweeps.arm_cfg(cfg, "direct", draw=2.5)
    assert drawn.world.arith.n_problems == 60 and cfg.world.arith.n_problems == 24
    few, many = worlds.get(cfg).problems(), worlds.get(drawn).problems()
    assert [p.id for p in many[:len(few)]] == [p.id for p in few]
    assert sweeps.arm_cfg(cfg, "direct") == sweeps.arm_cfg(cfg, "direct", draw=1.0)
    real = config.load("configs/smoke.yaml", [f"run.artifacts_dir={tmp_path}", "world.kind=real"])
    assert worlds.get(real).draw_overrides(3.0) == {}  # a world that cannot draw more keeps the profile's


# --- stages 02-03 end to end ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_oracle_and_approve_everything_run_stages_02_03_of_the_smoke_profile(tmp_path):
    from scrit_utils.pipeline import data

    for mode in ("oracle", "approve_everything"):
        cfg = config.load("configs/smoke.yaml", [f"run.artifacts_dir={tmp_path}", f"self_critique.mode={mode}"])
        data.run(cfg, tables=False)
        st02 = self_critic.run(cfg, tables=False).stage
        rep = validation.run(cfg, tables=False)
        sft = validation.load_sft(rep.stage)
        assert rep.counts["critiques"] == st02.manifest["counts"]["critiques"] and "yield_correct" in rep.counts
        if mode == "oracle":
            assert st02.manifest["counts"]["unparsed"] == 0 and rep.counts["passed"] == rep.counts["critiques"]
            assert sft and rep.counts["sft_correct"] == rep.counts["sft_incorrect"]
        else:
            scrit = config.load("configs/smoke.yaml", [f"run.artifacts_dir={tmp_path}"])
            assert st02.dir == self_critic.stage(scrit).dir  # SCRIT's critiques, not new ones
            assert rep.counts["sft_incorrect"] == 0 and all(e.label_correct for e in sft)

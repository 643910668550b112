"""Loop stage logic without models: pairing, filtering, balancing, SFT targets, validation checks."""
from __future__ import annotations

import random

import pytest

from scrit_utils.core import config
from scrit_utils.critique import prompts
from scrit_utils.pipeline import data, self_critic, validation
from scrit_utils.core.records import CritiqueRecord, Problem, Solution
from scrit_utils.worlds import arith


def _sol(pid, i, ok, gen="g", ans=None):
    return Solution(id=f"{pid}-{gen}-{i}", problem_id=pid, generator=gen, steps=("1+1=2",),
                    final_answer=ans if ans is not None else ("2" if ok else str(10 + i)), is_correct=ok)


def _problems():
    return [Problem(id=f"p{i}", question=f"q{i}", answer="2", reference_solution="Step 1: 1+1=2 \\boxed{2}") for i in range(3)]


def test_pairs_follow_the_rule():
    probs = _problems()
    sols = [_sol("p0", 0, True), _sol("p0", 1, True), _sol("p0", 2, False), _sol("p0", 3, False),
            _sol("p1", 0, True), _sol("p1", 1, False)]
    pairs = {p.solution_id: p for p in self_critic.make_pairs(probs, sols, seed=0)}
    by_id = {s.id: s for s in sols}
    assert len(pairs) == len(sols)
    for sid, p in pairs.items():
        s = by_id[sid]
        assert p.label_correct == s.is_correct
        if p.reference_solution_id is not None:
            ref = by_id[p.reference_solution_id]
            assert ref.is_correct and ref.problem_id == s.problem_id and ref.id != s.id
    # p1's only correct solution has no other correct one -> the problem's reference solution
    assert pairs["p1-g-0"].reference_solution_id is None
    assert pairs["p1-g-1"].reference_solution_id == "p1-g-0"
    assert pairs["p0-g-0"].reference_solution_id == "p0-g-1"
    # deterministic in the seed
    assert self_critic.make_pairs(probs, sols, seed=0) == self_critic.make_pairs(probs, sols, seed=0)


def test_filter_keeps_mixed_problems_and_caps_generators():
    cfg = config.load("configs/smoke.yaml", ["data.cap_correct_per_generator=1", "data.cap_incorrect_per_generator=2"])
    probs = _problems()
    sols = [_sol("p0", i, i % 2 == 0) for i in range(6)] + [_sol("p1", i, True) for i in range(3)] \
        + [_sol("p2", i, False, gen="h") for i in range(2)] + [_sol("p2", 9, True, gen="h")]
    kp, ks = data.filter_and_cap(cfg, probs, sols)
    assert {p.id for p in kp} == {"p0", "p2"}  # p1 has only correct solutions
    for gen in ("g", "h"):
        assert sum(s.is_correct for s in ks if s.generator == gen) <= 1
        assert sum(not s.is_correct for s in ks if s.generator == gen) <= 2
    assert data.distinct_answers(sols)["p1"] == 1 and data.distinct_answers(sols)["p0"] == 4


@pytest.mark.parametrize("ratio, pos, neg", [(0.5, 10, 4), (0.25, 10, 30), (0.75, 5, 100), (1.0, 3, 9), (0.0, 3, 9)])
def test_balance_ratio(ratio, pos, neg):
    p, n = validation.balance(list(range(pos)), list(range(100, 100 + neg)), ratio, None, random.Random(0))
    assert len(p) <= pos and len(n) <= neg and len(p) + len(n) > 0
    assert abs(len(p) / (len(p) + len(n)) - ratio) <= 1 / (len(p) + len(n))
    p2, n2 = validation.balance(list(range(pos)), list(range(100, 100 + neg)), ratio, 2, random.Random(0))
    assert len(p2) + len(n2) <= 2


def _gt_critique(problem, sol, cid, label):
    text = arith.ground_truth_critique(problem, sol.steps, with_reference=True)
    rec = self_critic.make_record(cid, "pair-" + cid, "contrastive", "m", [{"role": "user", "content": "x"}], text,
                                  {"problem_id": problem.id, "solution_id": sol.id, "label_correct": label, "generator": sol.generator})
    return rec


def test_validation_checks_and_sft_targets_have_no_reference():
    cfg = config.load("configs/smoke.yaml", ["validation.direct_critic_approves=false", "validation.answer_matches_reference=true",
                                              "validation.verdict_matches_label=true"])
    probs = arith.generate_problems(0, 6, "train")
    P = {p.id: p for p in probs}
    S, crits = {}, []
    for i, p in enumerate(probs):
        good = arith.reference_solution(p, generator="g")
        bad = arith.inject_error(p, random.Random(i))
        S[good.id], S[bad.id] = good, bad
        crits.append(_gt_critique(p, good, f"c{i}g", True))
        crits.append(_gt_critique(p, bad, f"c{i}b", False))
    # one wrong conclusion: claims a wrong solution is correct
    wrong = crits[1]
    bad_text = arith.ground_truth_critique(P[wrong.meta["problem_id"]], S[crits[0].meta["solution_id"]].steps, True)
    crits[1] = self_critic.make_record(wrong.id, wrong.target_id, "contrastive", "m", [{"role": "user", "content": "x"}],
                                       bad_text, wrong.meta)
    assert all(c.text.startswith(prompts.REFERENCE_ANALYSIS_HEADER) for c in crits)
    res = validation.validate(cfg, crits, P, None)
    assert set(res[0].checks) == {"answer_matches_reference", "verdict_matches_label"}
    assert [r.passed for r in res].count(False) == 1 and not res[1].passed
    assert res[1].meta["all_checks"]["verdict_matches_label"] is False
    sft, info = validation.build_sft(cfg, crits, res, P, S)
    assert info["passed_correct"] == 6 and info["passed_incorrect"] == 5
    assert len(sft) == 10 and sum(e.label_correct for e in sft) == 5
    for ex in sft:
        assert ex.completion.startswith(prompts.CRITIQUE_HEADER)
        assert "reference" not in ex.completion.lower() and "Values:" not in ex.completion
        assert ex.prompt == prompts.direct_critic_messages(P[ex.meta["problem_id"]].question,
                                                           self_critic.solution_text(S[next(c for c in crits if c.id == ex.meta["critique_id"]).meta["solution_id"]]),
                                                           cfg.generation.prompt_variant)
    # switching every check off keeps everything (the "without self-validation" ablation)
    off = config.load("configs/smoke.yaml", ["validation.direct_critic_approves=false", "validation.answer_matches_reference=false",
                                             "validation.verdict_matches_label=false"])
    assert all(r.passed and r.checks == {} for r in validation.validate(off, crits, P, None))


def test_gated_direct_check_keeps_the_same_critiques_and_refuses_to_select_on_check_i_alone():
    """direct_check_scope gated: check (i) runs only where (ii) and (iii) passed; the kept set is the same."""
    from scrit_utils.study import selection

    msg = [{"role": "user", "content": "x"}]
    probs = arith.generate_problems(3, 8, "train")
    P = {p.id: p for p in probs}
    crits = []
    for i, p in enumerate(probs):
        good = arith.reference_solution(p, generator="g")
        bad = arith.inject_error(p, random.Random(i))
        crits.append(_gt_critique(p, good, f"c{i}g", True))
        if i % 2:
            crits.append(_gt_critique(p, bad, f"c{i}b", False))
        else:  # calls the wrong solution correct: fails check (iii)
            meta = {"problem_id": p.id, "solution_id": bad.id, "label_correct": False, "generator": "g"}
            crits.append(self_critic.make_record(f"c{i}b", "pair", "contrastive", "m", msg, crits[-1].text, meta))
    approve = arith.ground_truth_critique(probs[0], arith.reference_solution(probs[0]).steps, with_reference=False)
    # the direct critic approves every other correction
    direct = {c.id: self_critic.make_record("d" + c.id, c.id, "validation", "m", msg,
                                            approve if k % 3 else "Conclusion: Incorrect", {"critique_id": c.id})
              for k, c in enumerate(crits)}
    on = ["validation.answer_matches_reference=true", "validation.verdict_matches_label=true"]
    full = config.load("configs/smoke.yaml", [*on, "validation.direct_check_scope=all"])
    gated = config.load("configs/smoke.yaml", [*on, "validation.direct_check_scope=gated", 'ablations.variants=["baseline"]'])
    ran = [validation.needs_direct_check(gated, validation.free_checks(c, P)) for c in crits]
    assert 0 < sum(ran) < len(crits)
    assert all(validation.needs_direct_check(full, validation.free_checks(c, P)) for c in crits)
    r_all, r_gated = validation.validate(full, crits, P, direct), validation.validate(gated, crits, P, direct)
    assert [r.passed for r in r_all] == [r.passed for r in r_gated] and 0 < sum(r.passed for r in r_all) < sum(ran)
    assert [r.meta["all_checks"]["direct_critic_approves"] is None for r in r_gated] == [not x for x in ran]
    overall, _, _ = validation.pass_rates(r_gated, {})
    assert overall.loc[0, "direct_check_ran"] == sum(ran) / len(crits)
    from types import SimpleNamespace

    pool = selection.Pool(SimpleNamespace(dir="artifacts/03_self_validation/x"), crits, r_gated, P, {}, {})
    with pytest.raises(ValueError, match="direct_check_scope"):
        selection.candidates(gated, pool, checks=("direct_critic_approves",))
    # a profile asking for the check-(i)-alone ablation cannot gate it
    with pytest.raises(config.ConfigError, match="validation.direct_check_scope"):
        config.load("configs/smoke.yaml", ["validation.direct_check_scope=gated", 'ablations.variants=["only_direct_critic"]'])


def test_correction_text_for_both_verdicts():
    p = arith.generate_problems(1, 1, "train")[0]
    bad = arith.inject_error(p, random.Random(0))
    crit = _gt_critique(p, bad, "c", False)
    corr = validation.correction_text(crit, bad)
    assert corr == p.reference_solution  # GT correction = the reference steps
    good = arith.reference_solution(p)
    crit_ok = _gt_critique(p, good, "d", True)
    assert validation.correction_text(crit_ok, good) == self_critic.solution_text(good)


def test_extract_injected():
    t = f"bla {prompts.INJECTED_SOLUTION_START}\nStep 1: 1+1=3 \\boxed{{3}}\n{prompts.INJECTED_SOLUTION_END} tail"
    assert self_critic.extract_injected(t) == "Step 1: 1+1=3 \\boxed{3}"
    assert self_critic.extract_injected("nothing here") is None


def test_world_injector_corrupts_each_correct_solution_once(tmp_path):
    """The bug_injection_world arm (the world's rule-based injector, external supervision): one rule-injected
    wrong solution per correct student solution, labelled and graded wrong, reproducible from the seed."""
    from scrit_utils.core import artifacts
    from scrit_utils.critique.grading import is_equivalent
    from scrit_utils.core.records import Pair

    cfg = config.load("configs/smoke.yaml", [f"run.artifacts_dir={tmp_path}", "self_critique.mode=bug_injection_world",
                                             "world.arith.injector=world"])
    probs = {p.id: p for p in arith.generate_problems(0, 4, "train")}
    sols = {p.id + "/ref": arith.reference_solution(p) for p in probs.values()}
    pairs = [Pair(id=f"pair{i}", problem_id=pid, solution_id=pid + "/ref", reference_solution_id=None,
                  label_correct=(i != 3)) for i, pid in enumerate(probs)]

    def run(name):
        st = artifacts.stage(name, cfg, ["run.seed"], "1")
        return self_critic.inject_bugs(cfg, st, None, pairs, probs, sols)

    inj = run("inject_a")
    assert len(inj) == 3  # the pair labelled incorrect gets no injection
    for s, p in zip(inj, pairs[:3]):
        assert s.problem_id == p.problem_id and s.generator == "injected:world" and s.is_correct is False
        assert not is_equivalent(s.final_answer, probs[p.problem_id].answer)
        assert s.meta["source_solution_id"] == p.solution_id
    assert [s.text for s in run("inject_b")] == [s.text for s in inj]
    from scrit_utils import worlds

    real = config.load("configs/smoke.yaml", [f"run.artifacts_dir={tmp_path}", "world.arith.injector=world",
                                              "world.kind=real"])
    assert worlds.get(cfg).injects_errors and not worlds.get(real).injects_errors  # a toy knob, read by the toy world
    with pytest.raises(config.ConfigError, match="self_critique.injector: moved to world.arith.injector"):
        config.load("configs/smoke.yaml", ["self_critique.injector=world"])

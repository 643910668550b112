"""The arithmetic world: determinism, disjoint splits, reference solutions, injection, GT critiques."""
from __future__ import annotations

import random

import pytest

from scrit_utils.critique import prompts
from scrit_utils.critique.parsing import extract_last_boxed, parse_critique
from scrit_utils.worlds import arith


def test_same_seed_same_problems_and_different_seed_differs():
    a = arith.generate_problems(3, 50, "train")
    b = arith.generate_problems(3, 50, "train")
    c = arith.generate_problems(4, 50, "train")
    assert [p.question for p in a] == [p.question for p in b]
    assert [p.question for p in a] != [p.question for p in c]
    assert len({p.id for p in a}) == 50


def test_splits_are_disjoint_and_assigned_by_question_hash():
    qs = {s: {p.question for p in arith.generate_problems(0, 300, s)} for s in arith.SPLITS}
    names = list(qs)
    assert all(not qs[a] & qs[b] for i, a in enumerate(names) for b in names[i + 1:])
    for s, q in qs.items():
        assert all(arith.split_of(x) == s for x in q)
    # a different stream/seed of the same split still never lands in another split
    other = {p.question for p in arith.generate_problems(9, 300, "benchmark", stream="x")}
    assert not other & qs["train"]


def test_difficulty_knobs_are_respected():
    cfg = arith.ArithConfig(min_steps=5, max_steps=5, max_value=99, max_addend=9, max_factor=3)
    for p in arith.generate_problems(1, 100, "train", cfg):
        ap = arith.parse_problem(p)
        assert len(ap.ops) == 5
        assert all(0 <= v <= 99 for v in ap.values())
        assert all((b <= 9) if o in "+-" else (2 <= b <= 3) for o, b in ap.ops)
    with pytest.raises(ValueError):
        arith.ArithConfig(min_steps=3, max_steps=2)


def test_reference_solution_format_parses_and_grades():
    from scrit_utils.critique.grading import is_equivalent

    for p in arith.generate_problems(0, 40, "benchmark"):
        text = p.reference_solution
        assert text.startswith("Step 1: ")
        assert extract_last_boxed(text) == p.answer
        assert is_equivalent(extract_last_boxed(text), p.answer)
        steps = arith.split_steps(text)
        assert len(steps) == p.meta["n_steps"]
        assert arith.label_solution(p, steps) == arith.StepLabel(-1, True, True)
        # the question text alone recovers the structured problem
        q_only = p.__class__(id=p.id, question=p.question, answer=p.answer)
        assert arith.parse_problem(q_only).values() == arith.parse_problem(p).values()


@pytest.mark.parametrize("kind", ["result", "operand"])
def test_injected_errors_have_the_labelled_first_error(kind):
    for i, p in enumerate(arith.generate_problems(0, 60, "seed")):
        s = arith.inject_error(p, random.Random(i), kind=kind)
        lab = arith.label_solution(p, s.steps)
        assert not lab.is_correct and lab.clean
        assert lab.first_error_step == s.meta["first_error_step"]
        assert s.final_answer != p.answer and extract_last_boxed(s.text) == s.final_answer
        assert arith.split_steps(s.text) == list(s.steps)


def test_ground_truth_critiques_round_trip_through_the_parser():
    for i, p in enumerate(arith.generate_problems(0, 40, "seed")):
        for sol in (arith.reference_solution(p), arith.inject_error(p, random.Random(i))):
            for with_ref in (False, True):
                text = arith.ground_truth_critique(p, sol.steps, with_reference=with_ref)
                c = parse_critique(text)
                assert c.verdict is sol.is_correct
                want = -1 if sol.is_correct else sol.meta["first_error_step"]
                assert c.first_error_step == want and c.predicted_error_step() == want
                assert c.final_answer == p.answer  # the correction always ends on the right answer
                assert len(c.step_critiques) == (p.meta["n_steps"] if sol.is_correct else want)
                if with_ref:
                    assert c.reference_analysis and "\\boxed" not in c.reference_analysis
                    assert text.startswith(prompts.REFERENCE_ANALYSIS_HEADER)
                else:
                    assert c.reference_analysis is None


def test_check_body_writes_checked_value_then_student_value_and_its_own_verdict():
    assert arith.step_body(42, "*", 3, 126, 129) == "42*3=126|129 wrong"
    assert arith.step_body(5, "+", 2, 7, 7) == "5+2=7|7 ok"  # unpadded: values as the student wrote them
    assert arith.step_body(5, "+", 2, 7, None) == "5+2=7|??? wrong"


def test_reference_analysis_indexes_values_by_step():
    p = arith.generate_problems(0, 1, "benchmark", arith.ArithConfig(min_steps=3, max_steps=3))[0]
    vals = arith.parse_problem(p).values()
    assert arith.reference_analysis(p) == f"Values: 1:{vals[1]} 2:{vals[2]} 3:{vals[3]}"


def test_sampled_solution_labels_handle_malformed_text():
    p = arith.generate_problems(0, 1, "benchmark")[0]
    assert not arith.label_solution(p, ["garbage"]).clean
    steps = arith.split_steps(p.reference_solution)
    short = arith.label_solution(p, steps[:-1])
    assert not short.is_correct and not short.clean


def test_seed_critiques_balanced_disjoint_and_deterministic():
    a = arith.seed_critiques(0, 20)
    assert [e.target for e in a] == [e.target for e in arith.seed_critiques(0, 20)]
    for mode in ("direct", "contrastive"):
        m = [e for e in a if e.mode == mode]
        assert len(m) == 20 and sum(not e.label_correct for e in m) == 10
    pids = [e.meta["problem_id"] for e in a]
    assert len(set(pids)) == 40  # every critique on its own problem
    train = {p.id for p in arith.generate_problems(0, 500, "train")}
    assert not set(pids) & train


def test_drill_lines_are_half_mismatched_and_verdicts_match_values():
    lines = arith.drill_lines(random.Random(0), 400)
    wrong = 0
    for ctx, verdict in lines:
        body = ctx.split("\n")[1]
        critic, student = body.split("=", 1)[1].split("|")
        assert (critic == student) == (verdict == " ok")
        wrong += verdict == " wrong"
    assert 150 < wrong < 250


# the toy benchmarks (natural errors, the injected diagnostic, shapes): tests/test_arith_bench.py

"""Fluke rate, checked-value accuracy and the teacher-forced step spans, on cases with known answers."""
from __future__ import annotations

import random

from scrit_utils.critique import prompts
from scrit_utils.core.records import Solution
from scrit_utils.worlds import arith
from scrit_utils.worlds import arith_diagnostics as ad


def _probs(n=6):
    return arith.generate_problems(0, n, "benchmark")


def test_fluke_rate_counts_right_answers_on_wrong_steps():
    probs = _probs(4)
    sols = [arith.reference_solution(p) for p in probs[:3]]
    # a right final answer written after a wrong step: a fluke
    p = probs[3]
    steps = list(arith.reference_steps(arith.parse_problem(p)))
    steps[0] = steps[0].rsplit("=", 1)[0] + "=" + str(int(steps[0].rsplit("=", 1)[1]) + 1)
    sols.append(Solution(id="f", problem_id=p.id, generator="g", steps=tuple(steps), final_answer=p.answer,
                         is_correct=True, text=prompts.format_solution(steps)))
    sols.append(arith.inject_error(probs[0], random.Random(0)))  # wrong answer: not counted at all
    r = ad.fluke_rate(probs, sols)
    assert r == {"n_right": 4, "n_fluke": 1, "fluke_rate": 25.0}


def test_checked_value_accuracy_of_ground_truth_and_of_a_sycophant():
    probs = _probs()
    wrong = [arith.inject_error(p, random.Random(i)) for i, p in enumerate(probs)]
    steps = [w.steps for w in wrong]
    truth = [arith.ground_truth_critique(p, s) for p, s in zip(probs, steps)]
    r = ad.checked_value_accuracy(probs, steps, truth)
    assert r["checked_acc"] == 100.0 and r["checked_acc_error"] == 100.0
    assert r["error_lines"] == len(probs) and r["lines"] == sum(w.meta["first_error_step"] for w in wrong)
    # a sycophant copies the student's value as its checked value: right on every line but the wrong one
    syco = [t.replace(f"={arith.parse_problem(p).values()[w.meta['first_error_step']]}|", f"={arith.step_value(w.steps[w.meta['first_error_step'] - 1])}|", 1)
            for t, p, w in zip(truth, probs, wrong)]
    s = ad.checked_value_accuracy(probs, steps, syco)
    assert s["checked_acc_error"] == 0.0
    assert s["checked_acc"] == 100.0 * (r["lines"] - len(probs)) / r["lines"]
    # an unparseable critique checks nothing right
    assert ad.checked_value_accuracy(probs, steps, ["no critique"] * len(probs))["checked_acc"] == 0.0
    targets = ad.step_targets(probs, steps)
    assert len(targets) == r["lines"] and sum(e for _, _, e in targets) == len(probs)


def test_value_spans_cover_exactly_each_steps_value_and_the_next_token():
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained("models/tokenizer")
    for p in _probs(4):
        vals = arith.parse_problem(p).values()
        ref = prompts.format_solution(arith.reference_steps(arith.parse_problem(p)))
        enc = tok(ref, add_special_tokens=False, return_offsets_mapping=True)
        ids = list(enc["input_ids"]) + [tok.eos_token_id]
        spans = ad._value_token_spans(ref, enc["offset_mapping"], shift=0)
        assert sorted(spans) == list(range(1, len(vals)))
        for k, (lo, hi) in spans.items():
            assert tok.decode(ids[lo:hi]) == str(vals[k])  # the value's tokens; hi is the token after it

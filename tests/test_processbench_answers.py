"""Reference answers for ProcessBench (strict EI-F1): join to the source sets, coverage, join checked.

ProcessBench ships no answers. Its GSM8K and OlympiadBench problems are joined on their text to GSM8K
(both splits) and math_eval/olympiadbench in ../shared/data. The join is checked against ProcessBench's
own ``final_answer_correct``: a solution's boxed answer graded against the joined answer must agree
with it, and does far less when the answers are attached to the wrong problems.
"""
from __future__ import annotations

import json

import pytest

from scrit_utils.critique.grading import grade_batch
from scrit_utils.critique.parsing import extract_last_boxed
from scrit_utils.worlds import real

# subprocesses, servers or whole real-data sets: `make test` runs them, `make test-fast` does not
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def joined(shared_data):
    items = real.load_processbench(shared_data / "processbench")
    return real.attach_processbench_answers(items, real.default_answer_sources(shared_data))


def test_coverage_on_shared_data(joined, shared_data):
    items, coverage = joined
    assert set(real.default_answer_sources(shared_data)) == {"gsm8k", "olympiadbench"}
    got = {s: (c.n_answered, c.n_items, c.n_ambiguous) for s, c in coverage.items()}
    # MATH's test problems are not in ../shared/data (only a hub id would give them)
    assert got == {"gsm8k": (400, 400, 0), "olympiadbench": (1000, 1000, 0), "math": (0, 1000, 0)}
    assert coverage["math"].source is None and coverage["gsm8k"].fraction == 1.0
    by_id = {it.id: it for it in items}
    assert by_id["gsm8k-0"].answer is not None and by_id["math-0"].answer is None


def _agreement(items, answers) -> float:
    """Share of items whose boxed final answer, graded against ``answers``, matches final_answer_correct."""
    finals = [extract_last_boxed("\n\n".join(it.steps)) for it in items]
    ok = grade_batch([(f, a) for f, a in zip(finals, answers)], n_jobs=2, timeout_s=10, progress=False)
    return sum(o == it.final_answer_correct for o, it in zip(ok, items)) / len(items)


def test_join_agrees_with_final_answer_correct(joined):
    items, _ = joined
    boxed = [it for it in items if extract_last_boxed("\n\n".join(it.steps)) is not None]
    # every GSM8K item (numbers: fast), every 3rd OlympiadBench one (math-verify: slow). Measured on all:
    # GSM8K 334/338 = 98.8%, OlympiadBench 892/916 = 97.4% (the rest: answers that differ, or lenient labels)
    for subset, step, floor in (("gsm8k", 1, 0.98), ("olympiadbench", 3, 0.93)):
        sub = [it for it in boxed if it.subset == subset][::step]
        agree = _agreement(sub, [it.answer for it in sub])
        print(f"{subset}: {len(sub)} solutions with a boxed answer, agreement with final_answer_correct {agree:.3f}")
        assert agree >= floor, subset
    # control: the same GSM8K answers shifted by one problem
    sub = [it for it in boxed if it.subset == "gsm8k"]
    shifted = [it.answer for it in sub[1:] + sub[:1]]
    assert _agreement(sub, shifted) < 0.7


def test_load_problem_answers_formats_and_errors(tmp_path):
    rows = [
        {"problem": "What is  1+1?", "solution": "so \\boxed{2}."},
        {"problem": "Half of 3?", "answer": "\\frac{3}{2}"},
        {"question": "Twice?", "final_answer": ["$4$", "$5$"]},
        {"problem": "Dup?", "answer": "1"}, {"problem": "Dup?", "answer": "2"},
        {"problem": "Same twice?", "answer": "7"}, {"problem": "Same twice?", "answer": "7"},
    ]
    path = tmp_path / "math.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    got = real.load_problem_answers(path, "math")
    assert got[real.problem_key("What is 1+1?")] == "2" and got[real.problem_key("Half of 3?")] == "\\frac{3}{2}"
    assert got[real.problem_key("Twice?")] == "4, 5"
    assert got[real.problem_key("Dup?")] is None and got[real.problem_key("Same twice?")] == "7"
    (tmp_path / "as_list.json").write_text(json.dumps(rows[:2]))
    assert len(real.load_problem_answers(tmp_path / "as_list.json", "omnimath")) == 2
    assert real.problem_key("$\\quad$ Let $T=2$.\n x") == "Let$T=2$.x"
    path.write_text(json.dumps({"problem": "ok?", "answer": "1"}) + "\n" + json.dumps({"text": "no question"}) + "\n")
    with pytest.raises(real.RealDataError, match=r"math\.jsonl:2: missing key 'question'"):
        real.load_problem_answers(path, "math")
    path.write_text(json.dumps({"problem": "no answer here"}) + "\n")
    with pytest.raises(real.RealDataError, match=r"math\.jsonl:1: missing key 'answer'"):
        real.load_problem_answers(path, "math")


def test_attach_keeps_existing_answers_and_checks_subsets(tmp_path):
    item = real.ProcessBenchItem(subset="math", id="math-0", problem="Half of 3?", steps=("x",), label=-1,
                                 final_answer_correct=True)
    src = tmp_path / "m.jsonl"
    src.write_text(json.dumps({"problem": "Half  of 3?", "answer": "1.5"}) + "\n")
    out, cov = real.attach_processbench_answers([item, item.__class__(**{**item.__dict__, "id": "math-1",
                                                                          "answer": "3/2"})], {"math": src})
    assert [it.answer for it in out] == ["1.5", "3/2"] and cov["math"].n_answered == 2
    with pytest.raises(real.RealDataError, match="unknown ProcessBench subset"):
        real.attach_processbench_answers([item], {"maths": src})
    with pytest.raises(real.RealDataError, match="not a directory"):
        real.default_answer_sources(tmp_path / "nowhere")

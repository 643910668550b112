"""Loaders for the real evaluation data (local copies in ../shared/data)."""
from __future__ import annotations

import json

import pytest

from scrit_utils.core.records import Problem
from scrit_utils.worlds import real

LOCAL_RC_TASKS = ("arc-challenge", "college_math", "gpqa", "gsm8k", "math", "mmlu_stem")
RC_ROWS = {"arc-challenge": 263, "college_math": 279, "gpqa": 190, "gsm8k": 273, "math": 268, "mmlu_stem": 292}


@pytest.mark.parametrize("scenario", real.REALCRITIC_SCENARIOS)
def test_realcritic_all_local_tasks(shared_data, scenario):
    items = real.load_realcritic(shared_data / "realcritic", scenario)
    counts = {t: sum(it.task == t for it in items) for t in LOCAL_RC_TASKS}
    assert counts == RC_ROWS
    assert len({it.id for it in items}) == len(items)
    if scenario == "wrong_data":
        assert all(it.label_correct is False for it in items)
    else:
        frac = sum(it.label_correct for it in items) / len(items)
        assert 0.3 < frac < 0.7 and all(isinstance(it.label_correct, bool) for it in items)
    mc = [it for it in items if it.task in real.REALCRITIC_MC_TASKS]
    assert all(it.gt in "ABCDE" and len(it.gt) == 1 for it in mc)
    assert all(it.solution and it.question for it in items)
    gsm = next(it for it in items if it.task == "gsm8k")
    assert gsm.reference_solution  # gt_cot
    assert next(it for it in items if it.task == "gpqa").reference_solution is None  # gt_cot "None"
    p = items[0].to_problem()
    assert isinstance(p, Problem) and p.answer == items[0].gt


def test_realcritic_subset_and_missing_task(shared_data):
    items = real.load_realcritic(shared_data / "realcritic", "mix_data", tasks=["gsm8k"])
    assert len(items) == 273 and items[0].idx == "0" and items[0].gt == "540" and items[0].label_correct is True
    with pytest.raises(real.RealDataError, match=r"minerva_math.*mix_data/minerva_math/test.jsonl"):
        real.load_realcritic(shared_data / "realcritic", "mix_data", tasks=["gsm8k", "minerva_math"])
    assert len(real.load_realcritic(shared_data / "realcritic", "mix_data", tasks=["gsm8k", "minerva_math"],
                                    allow_missing=True)) == 273
    with pytest.raises(real.RealDataError, match="unknown RealCritic task"):
        real.load_realcritic(shared_data / "realcritic", "mix_data", tasks=["nope"])
    with pytest.raises(real.RealDataError, match="scenario"):
        real.load_realcritic(shared_data / "realcritic", "own_data")


def test_realcritic_bad_row_names_file_and_line(tmp_path):
    d = tmp_path / "mix_data" / "gsm8k"
    d.mkdir(parents=True)
    good = {"idx": 0, "question": "q", "gt": "1", "reasoning": "r", "pred": "1", "previous_score": [True]}
    bad = {k: v for k, v in good.items() if k != "gt"}
    (d / "test.jsonl").write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(real.RealDataError, match=r"test\.jsonl:2: missing key 'gt'"):
        real.load_realcritic(tmp_path, "mix_data")
    (d / "test.jsonl").write_text(json.dumps(good) + "\n{not json\n")
    with pytest.raises(real.RealDataError, match=r"test\.jsonl:2: invalid JSON"):
        real.load_realcritic(tmp_path, "mix_data")


def test_processbench_all_rows(shared_data):
    items = real.load_processbench(shared_data / "processbench")
    assert len(items) == 2400
    assert {s: sum(it.subset == s for it in items) for s in ("gsm8k", "math", "olympiadbench")} == \
        {"gsm8k": 400, "math": 1000, "olympiadbench": 1000}
    assert all(-1 <= it.label < len(it.steps) for it in items)
    # a solution with no wrong paragraph must have a correct final answer
    assert all(it.final_answer_correct for it in items if it.label == -1)
    assert items[0].id == "gsm8k-0" and items[0].label == 1
    with pytest.raises(real.RealDataError, match=r"omnimath.*omnimath\.json"):
        real.load_processbench(shared_data / "processbench", subsets=["omnimath"])


def test_processbench_bad_row(tmp_path):
    rows = [{"id": "x-0", "generator": "g", "problem": "p", "steps": ["a", "b"], "label": 5,
             "final_answer_correct": False}]
    (tmp_path / "gsm8k.json").write_text(json.dumps(rows))
    with pytest.raises(real.RealDataError, match=r"gsm8k\.json\[0\] \(id=x-0\): key 'label'"):
        real.load_processbench(tmp_path)


def test_gsm8k(shared_data):
    train = real.load_gsm8k(shared_data / "gsm8k", "train")
    test = real.load_gsm8k(shared_data / "gsm8k", "test")
    assert (len(train), len(test)) == (7473, 1319)
    assert train[0].answer == "72" and "####" not in train[0].solution
    assert all(it.answer.lstrip("-").replace(".", "").isdigit() for it in train + test)


def test_math_eval_all_tasks(shared_data):
    items = real.load_math_eval(shared_data / "math_eval")
    counts = {t: sum(it.task == t for it in items) for t in real.MATH_EVAL_TASKS}
    assert counts == {"aime24": 30, "amc23": 40, "college_math": 2818, "gsm8k": 1319, "minerva_math": 272,
                      "olympiadbench": 675}
    assert all(it.question.strip() and it.answer.strip() for it in items)
    by = {t: [it for it in items if it.task == t] for t in counts}
    assert by["amc23"][0].answer == "27"
    assert by["minerva_math"][0].answer == "1.6"
    assert by["college_math"][0].answer == "10-4 n"
    assert by["olympiadbench"][0].answer == "2"
    assert by["gsm8k"][0].answer == "18"
    assert by["aime24"][0].answer == "204"


def test_not_a_path_nor_hub_id(tmp_path):
    with pytest.raises(real.RealDataError, match="neither an existing path nor a hub id"):
        real.load_realcritic(tmp_path / "missing" / "dir", "mix_data")

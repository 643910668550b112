"""`scrit eval` end to end (subprocess) on real benchmark files with synthetic critique texts."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from scrit_utils.critique import metrics as ev
from scrit_utils.critique import prompts
from scrit_utils.worlds import real

# subprocesses, servers or whole real-data sets: `make test` runs them, `make test-fast` does not
pytestmark = pytest.mark.slow

# tasks whose grading agrees 100% with RealCritic's previous_score (college_math is checked elsewhere)
TASKS = ["arc-challenge", "gpqa", "gsm8k", "math", "mmlu_stem"]


def _scrit(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scrit_utils.cli", *args], capture_output=True, text=True,
                          timeout=300)


def _restate(answer: str) -> str:
    return prompts.render_critique(prompts.CritiqueParts(step_critiques=("Looks right.",), is_correct=True,
                                                         first_error_step=-1, correction=answer))


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_cc_restating_pred_reproduces_previous_score(shared_data, tmp_path):
    items = real.load_realcritic(shared_data / "realcritic", "mix_data", tasks=TASKS)
    crit = tmp_path / "crit.jsonl"
    # mix both documented key styles: task+idx and id "<task>/<idx>"
    _write_jsonl(crit, [({"task": it.task, "idx": it.idx} if i % 2 else {"id": it.id}) | {"critique": _restate(it.pred)}
                        for i, it in enumerate(items)])
    out = tmp_path / "cc.json"
    r = _scrit("eval", "cc", "--benchmark", str(shared_data / "realcritic"), "--scenario", "mix_data",
               "--tasks", *TASKS, "--critiques", str(crit), "--out", str(out), "--quiet", "--n-boot", "200",
               "--jobs", "2")
    assert r.returncode == 0, r.stderr
    assert "mean (unweighted)" in r.stdout
    res = json.loads(out.read_text())
    for task in TASKS:
        labels = [it.label_correct for it in items if it.task == task]
        expected = 100 * sum(labels) / len(labels)
        got = res["per_task"][task]
        assert got["acc"] == pytest.approx(expected), task
        assert got["ci"][0] <= got["acc"] <= got["ci"][1]
    assert res["mean"]["acc"] == pytest.approx(ev.cc_acc([it.task for it in items],
                                                         [it.label_correct for it in items])["mean"])
    # restating never changes correctness
    t = res["transitions"]
    assert t["correct->incorrect"] == 0 and t["incorrect->correct"] == 0
    assert t["correct->correct"] == sum(it.label_correct for it in items)


def test_cc_wrong_data_restating_scores_zero_and_fixing_scores_full(shared_data, tmp_path):
    items = real.load_realcritic(shared_data / "realcritic", "wrong_data", tasks=["gsm8k", "arc-challenge"])
    crit = tmp_path / "crit.jsonl"
    # odd items: the critic "fixes" the solution to the ground truth; even: it restates the wrong answer
    _write_jsonl(crit, [{"task": it.task, "idx": it.idx,
                         "critique": _restate(it.gt if i % 2 else it.pred)} for i, it in enumerate(items)])
    out = tmp_path / "cc.json"
    r = _scrit("eval", "cc", "--benchmark", str(shared_data / "realcritic"), "--scenario", "wrong_data",
               "--tasks", "gsm8k", "arc-challenge", "--critiques", str(crit), "--out", str(out), "--quiet",
               "--n-boot", "100")
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert res["transitions"]["incorrect->correct"] == len(items) // 2
    assert res["transitions"]["incorrect->incorrect"] == len(items) - len(items) // 2
    assert res["transitions"]["correct->correct"] == 0


def test_cc_bad_critiques_file(shared_data, tmp_path):
    crit = tmp_path / "crit.jsonl"
    _write_jsonl(crit, [{"task": "gsm8k", "idx": 0, "critique": "x"}, {"task": "gsm8k", "idx": 99999, "critique": "y"}])
    r = _scrit("eval", "cc", "--benchmark", str(shared_data / "realcritic"), "--tasks", "gsm8k",
               "--critiques", str(crit))
    assert r.returncode == 2 and "crit.jsonl:2" in r.stderr and "gsm8k/99999" in r.stderr
    _write_jsonl(crit, [{"task": "gsm8k", "idx": 0, "critique": "x"}])
    r = _scrit("eval", "cc", "--benchmark", str(shared_data / "realcritic"), "--tasks", "gsm8k",
               "--critiques", str(crit))
    assert r.returncode == 2 and "--allow-missing" in r.stderr
    r = _scrit("eval", "cc", "--benchmark", str(shared_data / "realcritic"), "--tasks", "minerva_math",
               "--critiques", str(crit))
    assert r.returncode == 2 and "minerva_math/test.jsonl" in r.stderr


def _oracle(it: real.ProcessBenchItem, answer: str = "0") -> str:
    if it.label == -1:
        return _restate(answer)
    return prompts.render_critique(prompts.CritiqueParts(
        step_critiques=tuple("ok" for _ in range(it.label)) + ("wrong",), is_correct=False,
        first_error_step=it.label + 1, correction=f"fixed \\boxed{{{answer}}}"))


def test_ei_original_on_processbench(shared_data, tmp_path):
    items = real.load_processbench(shared_data / "processbench", subsets=["gsm8k"])
    crit = tmp_path / "crit.jsonl"
    # every 4th critique says "correct" regardless of the label; the rest name the labelled step (1-based)
    rows = [{"id": it.id, "critique": _restate("0") if i % 4 == 0 else _oracle(it)} for i, it in enumerate(items)]
    _write_jsonl(crit, rows)
    out = tmp_path / "ei.json"
    r = _scrit("eval", "ei", "--benchmark", str(shared_data / "processbench"), "--subsets", "gsm8k",
               "--critiques", str(crit), "--out", str(out), "--quiet", "--n-boot", "200")
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    preds = [-1 if i % 4 == 0 else (it.label + 1 if it.label != -1 else -1) for i, it in enumerate(items)]
    expected = ev.processbench_f1([it.label for it in items], preds, pred_offset=1)
    got = res["per_task"]["gsm8k"]
    assert got["f1"] == pytest.approx(expected["f1"]) and got["correct_acc"] == 100.0
    assert 70 < got["error_acc"] < 80  # ~3/4 of erroneous samples named exactly
    # strict needs reference answers, which ProcessBench does not ship
    r = _scrit("eval", "ei", "--benchmark", str(shared_data / "processbench"), "--subsets", "gsm8k",
               "--critiques", str(crit), "--strict", "--quiet")
    assert r.returncode == 2 and "reference answer" in r.stderr


def test_ei_strict_with_answers(shared_data, tmp_path):
    allrows = json.loads((shared_data / "processbench" / "gsm8k.json").read_text())
    rows = [r for r in allrows if r["label"] == -1][:20] + [r for r in allrows if r["label"] != -1][:20]
    for i, row in enumerate(rows):
        row["answer"] = str(i)
    bench = tmp_path / "pb"
    bench.mkdir()
    (bench / "gsm8k.json").write_text(json.dumps(rows))
    items = real.load_processbench(bench)
    # critique i names the labelled step shifted by +1 (inside the ±1 tolerance) and boxes the right
    # answer only for even i
    crit = tmp_path / "crit.jsonl"
    crits, preds, ok = [], [], []
    for i, it in enumerate(items):
        ans = str(i) if i % 2 == 0 else "-999"
        if it.label == -1:
            crits.append({"id": it.id, "critique": _restate(ans)})
            preds.append(-1)
        else:
            crits.append({"id": it.id, "critique": prompts.render_critique(prompts.CritiqueParts(
                step_critiques=("ok",), is_correct=False, first_error_step=it.label + 2,
                correction=f"\\boxed{{{ans}}}"))})
            preds.append(it.label + 2)
        ok.append(i % 2 == 0)
    _write_jsonl(crit, crits)
    out = tmp_path / "ei.json"
    r = _scrit("eval", "ei", "--benchmark", str(bench), "--critiques", str(crit), "--strict", "--out", str(out),
               "--quiet", "--n-boot", "100")
    assert r.returncode == 0, r.stderr
    got = json.loads(out.read_text())["per_task"]["gsm8k"]
    expected = ev.strict_f1([it.label for it in items], preds, ok, pred_offset=1, label_offset=0)
    assert got["f1"] == pytest.approx(expected["f1"]) and got["error_acc"] == pytest.approx(expected["error_acc"])
    assert 0 < got["f1"] < 100


def test_ei_strict_on_real_processbench_with_source_answers(shared_data, tmp_path):
    """Strict EI-F1 on the real subsets whose source answers are in ../shared/data; MATH has none there."""
    items = real.load_processbench(shared_data / "processbench", subsets=["gsm8k", "math"])
    joined, _ = real.attach_processbench_answers(items, real.default_answer_sources(shared_data))
    # every 3rd critique boxes a wrong answer; the rest name the labelled step and box the source answer
    crits, preds, ok = [], [], []
    for i, it in enumerate(joined):
        ans = "-999" if i % 3 == 0 or it.answer is None else it.answer
        crits.append({"id": it.id, "critique": _oracle(it, ans)})
        if it.subset == "gsm8k":
            preds.append(it.label + 1 if it.label != -1 else -1)
            ok.append(i % 3 != 0)
    crit = tmp_path / "crit.jsonl"
    _write_jsonl(crit, crits)
    out = tmp_path / "ei.json"
    args = ["eval", "ei", "--benchmark", str(shared_data / "processbench"), "--subsets", "gsm8k", "math",
            "--critiques", str(crit), "--strict", "--quiet", "--n-boot", "100", "--jobs", "2"]
    r = _scrit(*args, "--answers-root", str(shared_data), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "gsm8k            400/400" in r.stdout and "not scored (too few reference answers): math" in r.stdout
    res = json.loads(out.read_text())
    assert res["scored_subsets"] == ["gsm8k"] and res["skipped_subsets"] == ["math"]
    assert res["answer_coverage"]["math"] == {"subset": "math", "n_items": 1000, "n_answered": 0, "source": None,
                                              "n_ambiguous": 0}
    gsm = [it for it in joined if it.subset == "gsm8k"]
    expected = ev.strict_f1([it.label for it in gsm], preds, ok, pred_offset=1, label_offset=0)
    assert list(res["per_task"]) == ["gsm8k"] and res["n"] == 400
    assert res["per_task"]["gsm8k"]["f1"] == pytest.approx(expected["f1"]) and 60 < expected["f1"] < 70
    # the same through --answers-from; a bad spec and an uncovered-only selection are clear errors
    r = _scrit(*args, "--answers-from", f"gsm8k={shared_data / 'gsm8k'}")
    assert r.returncode == 0 and "gsm8k            400/400" in r.stdout, r.stderr
    r = _scrit(*args, "--answers-from", "maths=x")
    assert r.returncode == 2 and "SUBSET=PATH_OR_HUB_ID" in r.stderr
    math_crit = tmp_path / "math.jsonl"
    _write_jsonl(math_crit, [c for c in crits if c["id"].startswith("math-")])
    r = _scrit("eval", "ei", "--benchmark", str(shared_data / "processbench"), "--subsets", "math", "--critiques",
               str(math_crit), "--strict", "--quiet", "--answers-root", str(shared_data))
    assert r.returncode == 2 and "math 0/1000" in r.stderr and "--answers-from" in r.stderr

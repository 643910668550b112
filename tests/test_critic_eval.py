"""critic_eval: end to end with a real tiny Qwen2 critic, and the scoring checked against hand-computed values."""
from __future__ import annotations

import random

import pytest
import torch

from scrit_utils.critique import prompts
from scrit_utils.generation import GenerationRequest, SamplingParams
from scrit_utils.generation.transformers_backend import TransformersBackend
from scrit_utils.critique.grading import is_equivalent
from scrit_utils.critique.parsing import parse_critique
from scrit_utils.pipeline import benchmark_eval as ce
from scrit_utils.worlds import arith

from .tiny_lm import build_tiny_lm

torch.set_num_threads(1)


# --- toy-world benchmark items ----------------------------------------------------------------------
def toy_benchmarks(n: int = 6, seed: int = 0) -> dict[str, list[dict]]:
    probs = arith.generate_problems(seed, n, "benchmark", arith.ArithConfig(), stream="critic-eval-test")
    rng = random.Random(seed)
    mix, wrong, pb = [], [], []
    for i, p in enumerate(probs):
        task = "arith-a" if i % 3 else "arith-b"  # two tasks: the mean is over tasks, not items
        good = arith.reference_solution(p)
        bad = arith.inject_error(p, rng)
        sol = good if i % 2 == 0 else bad
        mix.append({"id": f"mix/{i}", "task": task, "question": p.question, "gt": p.answer, "solution": sol.text,
                    "original_correct": i % 2 == 0, "reference": good.text})
        wrong.append({"id": f"wrong/{i}", "task": task, "question": p.question, "gt": p.answer,
                      "solution": bad.text, "original_correct": False})
        lab = arith.label_solution(p, sol.steps).first_error_step
        pb.append({"id": f"pb-{i}", "subset": task, "problem": p.question, "steps": list(sol.steps),
                   "label": -1 if lab == -1 else lab - 1, "answer": p.answer})
    return {"wrong": wrong, "mix": mix, "processbench": pb}


@pytest.fixture(scope="module")
def tiny_backend(tmp_path_factory):
    path = build_tiny_lm(tmp_path_factory.mktemp("critic"), tokenizer="toy", hidden=32, layers=2)
    return TransformersBackend(path, batch_size=8)


def fast_cfg(**kw) -> ce.CriticEvalConfig:
    base = dict(variant="compact", params=SamplingParams(max_new_tokens=16),
                solve_params=SamplingParams(max_new_tokens=16), n_boot=50, progress=False)
    base.update(kw)
    return ce.CriticEvalConfig(**base)


def pct(xs) -> float:
    xs = list(xs)
    return 100.0 * sum(xs) / len(xs)


def expected_cc_mean(rows) -> float:
    tasks = sorted({r["task"] for r in rows})
    return sum(pct(r["corrected_correct"] for r in rows if r["task"] == t) for t in tasks) / len(tasks)


def expected_pb_f1(rows) -> float:
    f1s = []
    for t in sorted({r["task"] for r in rows}):
        g = [r for r in rows if r["task"] == t]
        err = [r["predicted_step"] is not None and r["predicted_step"] == r["label"] + 1 for r in g if r["label"] != -1]
        ok = [r["predicted_step"] == -1 for r in g if r["label"] == -1]
        a, b = pct(err), pct(ok)
        f1s.append(0.0 if a + b == 0 else 2 * a * b / (a + b))
    return sum(f1s) / len(f1s)


# --- end to end with a real model ------------------------------------------------------------------------
def test_end_to_end_with_tiny_model(tiny_backend):
    bench = toy_benchmarks()
    rows, metrics = ce.evaluate(tiny_backend, bench, fast_cfg())
    assert set(rows) == {"wrong", "mix", "processbench", "own_solve", "own"}
    for name in ("wrong", "mix", "processbench"):
        assert [r["id"] for r in rows[name]] == [ce.as_item(x).id for x in bench[name]]
    # every parsed field and grade is what the parser / grader give for that row's text
    for name in ("wrong", "mix", "own", "processbench"):
        for r in rows[name]:
            assert isinstance(r["text"], str) and r["mode"] == "direct"
            c = parse_critique(r["text"])
            assert (r["verdict"], r["first_error_step"], r["final_answer"]) == (c.verdict, c.first_error_step,
                                                                               c.final_answer)
            assert r["corrected_correct"] == (c.final_answer is not None and is_equivalent(c.final_answer, r["gt"]))
    # metrics recomputed independently from the rows
    for name in ("wrong", "mix", "own"):
        m = metrics["cc"][name]
        assert m["mean"]["acc"] == pytest.approx(expected_cc_mean(rows[name]))
        assert set(m["per_task"]) == {"arith-a", "arith-b"}
        assert sum(m["transitions"].values()) == len(rows[name])
    assert metrics["processbench"]["original"]["mean"]["f1"] == pytest.approx(expected_pb_f1(rows["processbench"]))
    assert metrics["processbench"]["strict"] is not None  # every toy item has a gt
    # own scenario: the critic's own greedy solutions, graded, then critiqued
    assert len(rows["own_solve"]) == len(bench["mix"])
    assert [r["original_correct"] for r in rows["own"]] == [s["correct"] for s in rows["own_solve"]]
    assert metrics["cc"]["own"]["solve_acc"] == pytest.approx(pct(s["correct"] for s in rows["own_solve"]))
    assert metrics["mode"] == "direct" and metrics["prompt_version"] == prompts.PROMPT_VERSION
    # greedy: a second run gives the same critiques
    again, _ = ce.evaluate_cc(tiny_backend, bench["mix"], fast_cfg(), scenario="mix")
    assert [r["text"] for r in again] == [r["text"] for r in rows["mix"]]


def test_contrastive_uses_reference_when_present(tiny_backend):
    bench = toy_benchmarks()
    items = bench["mix"][:2] + [{k: v for k, v in bench["mix"][2].items() if k != "reference"}]
    rows, m = ce.evaluate_cc(tiny_backend, items, fast_cfg(mode="contrastive"), scenario="mix")
    assert [r["mode"] for r in rows] == ["contrastive", "contrastive", "direct"]
    assert m["modes"] == {"contrastive": 2, "direct": 1}


# --- scoring with known critiques ---------------------------------------------------------------------
class ScriptedCritic:
    """A Backend whose critiques are fixed per request id (a critic whose every answer we know)."""

    name = "scripted"

    def __init__(self, texts: dict[str, str]):
        self.texts = texts
        self.seen: list[GenerationRequest] = []

    def generate(self, requests, params, progress=True):
        self.seen += list(requests)
        return [self.texts[r.id] for r in requests]


def critique(verdict_correct: bool, step: int, answer: str) -> str:
    return prompts.render_critique(prompts.CritiqueParts(
        step_critiques=("checked",) * max(step, 1), is_correct=verdict_correct,
        first_error_step=-1 if verdict_correct else step,
        correction=answer if verdict_correct else f"Step {step}: fixed \\boxed{{{answer}}}"))


def test_cc_acc_and_transitions_from_known_critiques():
    bench = toy_benchmarks(n=8)
    items = ce.items_from(bench["mix"])
    # fix items 0, 1, 2, 5 (right answer); the rest end with a wrong answer
    fixed = {0, 1, 2, 5}
    texts = {it.id: critique(k % 2 == 0, 1, it.gt if k in fixed else str(int(it.gt) + 1))
             for k, it in enumerate(items)}
    rows, m = ce.evaluate_cc(ScriptedCritic(texts), items, fast_cfg(), scenario="mix")
    assert [r["corrected_correct"] for r in rows] == [k in fixed for k in range(len(items))]
    per_task = {}
    for k, it in enumerate(items):
        per_task.setdefault(it.task, []).append(k in fixed)
    exp = {t: pct(v) for t, v in per_task.items()}
    assert {t: r["acc"] for t, r in m["per_task"].items()} == pytest.approx(exp)
    assert m["mean"]["acc"] == pytest.approx(sum(exp.values()) / len(exp))
    assert m["mean"]["acc"] != pytest.approx(pct(k in fixed for k in range(len(items))))  # not the item mean
    lo, hi = m["mean"]["ci"]
    assert lo <= m["mean"]["acc"] <= hi
    orig = [it.original_correct for it in items]
    assert m["transitions"] == {
        "correct->correct": sum(o and k in fixed for k, o in enumerate(orig)),
        "correct->incorrect": sum(o and k not in fixed for k, o in enumerate(orig)),
        "incorrect->correct": sum((not o) and k in fixed for k, o in enumerate(orig)),
        "incorrect->incorrect": sum((not o) and k not in fixed for k, o in enumerate(orig)),
    }
    assert m["parse_rate"] == 100.0


def test_processbench_f1_original_and_strict_from_known_critiques():
    items = ce.items_from(toy_benchmarks(n=8)["processbench"])
    # behaviours cycled over the erroneous / the correct items: (prediction kind, corrected answer right?)
    on_err = [("exact", True), ("off1", True), ("exact", False), ("far", True)]
    on_ok = [("ok", True), ("alarm", True), ("ok", False)]
    texts, preds, n_err, n_ok = {}, {}, 0, 0
    for it in items:
        if it.label == -1:
            kind, right = on_ok[n_ok % len(on_ok)]
            n_ok += 1
        else:
            kind, right = on_err[n_err % len(on_err)]
            n_err += 1
        # critiques number steps from 1, ProcessBench labels from 0
        pred = {"ok": -1, "alarm": 2, "exact": it.label + 1, "off1": it.label + 2, "far": it.label + 4}[kind]
        preds[it.id] = pred
        texts[it.id] = critique(pred == -1, max(pred, 1), it.gt if right else "0")
    assert n_err >= 3 and n_ok >= 3
    rows, m = ce.evaluate_processbench(ScriptedCritic(texts), items, fast_cfg())
    assert [r["predicted_step"] for r in rows] == [preds[it.id] for it in items]
    assert m["original"]["mean"]["f1"] == pytest.approx(expected_pb_f1(rows))

    def strict_f1(g):
        err = [abs(r["predicted_step"] - 1 - r["label"]) <= 1 and r["predicted_step"] != -1 and r["corrected_correct"]
               for r in g if r["label"] != -1]
        ok = [r["predicted_step"] == -1 and r["corrected_correct"] for r in g if r["label"] == -1]
        a, b = pct(err), pct(ok)
        return 0.0 if a + b == 0 else 2 * a * b / (a + b)

    tasks = sorted({r["task"] for r in rows})
    exp_strict = sum(strict_f1([r for r in rows if r["task"] == t]) for t in tasks) / len(tasks)
    assert m["strict"]["mean"]["f1"] == pytest.approx(exp_strict)
    assert m["strict"]["mean"]["f1"] != pytest.approx(m["original"]["mean"]["f1"])


def test_strict_skipped_without_gt_and_input_errors():
    items = [dict(x, answer=None) for x in toy_benchmarks(n=4)["processbench"]]
    texts = {ce.as_item(x).id: critique(True, 1, "1") for x in items}
    _, m = ce.evaluate_processbench(ScriptedCritic(texts), items, fast_cfg())
    assert m["strict"] is None and "gt" in m["strict_skipped"]
    with pytest.raises(ValueError, match="gt"):
        ce.evaluate_cc(ScriptedCritic({}), [{"id": "a", "question": "q", "solution": "s"}], fast_cfg())
    with pytest.raises(ValueError, match="missing field 'solution'"):
        ce.as_item({"id": "a", "question": "q"})
    with pytest.raises(ValueError, match="mode"):
        ce.CriticEvalConfig(mode="oracle")
    with pytest.raises(ValueError, match="duplicate"):
        ce.items_from([{"id": "a", "question": "q", "solution": "s"}] * 2)


def test_score_critiques_matches_run_critiques_for_texts_written_elsewhere():
    items = ce.items_from(toy_benchmarks(n=6)["mix"])
    texts = {it.id: critique(k % 2 == 0, 2, it.gt if k % 3 else "nope") for k, it in enumerate(items)}
    texts[items[1].id] = "no verdict here"
    be = ScriptedCritic(texts)
    cfg = fast_cfg()
    ran = ce.run_critiques(be, items, cfg, "mix")
    scored = ce.score_critiques(items, [texts[it.id] for it in items], cfg, "mix",
                                modes=[r["mode"] for r in ran], seeds=[r.seed for r in be.seen])
    assert scored == ran
    plain = ce.score_critiques(items, [texts[it.id] for it in items], cfg, "mix")
    assert [r["seed"] for r in plain] == [None] * len(items) and {r["mode"] for r in plain} == {"direct"}
    assert [r["corrected_correct"] for r in plain] == [bool(k % 3) and k != 1 for k in range(len(items))]
    assert [r["parsed"] for r in plain] == [k != 1 for k in range(len(items))]
    with pytest.raises(ValueError, match="3 critique texts for 6 items"):
        ce.score_critiques(items, ["x"] * 3, cfg)


def test_sampled_requests_carry_per_item_seeds():
    items = ce.items_from(toy_benchmarks(n=4)["mix"])
    be = ScriptedCritic({it.id: critique(True, 1, it.gt) for it in items})
    ce.run_critiques(be, items, fast_cfg(params=SamplingParams(max_new_tokens=8, temperature=0.7), seed=3), "mix")
    seeds = [r.seed for r in be.seen]
    assert len(set(seeds)) == len(items)
    be2 = ScriptedCritic(be.texts)
    ce.run_critiques(be2, items[::-1], fast_cfg(seed=3), "mix")
    assert [r.seed for r in be2.seen] == seeds[::-1]  # a seed belongs to its item, not its position


def test_loader_records_convert(shared_data):
    from scrit_utils.worlds import real

    rc = real.load_realcritic(shared_data / "realcritic", "mix_data", tasks=["gsm8k"])[:3]
    pb = real.load_processbench(shared_data / "processbench", ["gsm8k"])[:3]
    a = ce.items_from(rc)
    assert a[0].id == rc[0].id and a[0].gt == rc[0].gt and a[0].original_correct == rc[0].label_correct
    b = ce.items_from(pb)
    assert b[0].label == pb[0].label and b[0].task == "gsm8k"
    assert b[0].solution.startswith("Step 1: ") and f"Step {len(pb[0].steps)}: " in b[0].solution


# --- the stage-04 path: given "own" items, one backend per set, resumable files, flat metric rows ---------
def test_evaluate_with_given_own_items_routes_each_set_and_flattens_the_metrics():
    bench = toy_benchmarks(n=8)
    # "own" items come from elsewhere (stage 04: the base critic's solutions), so nothing is solved here
    own = [dict(x, id=f"own/{k}", original_correct=k % 2 == 1) for k, x in enumerate(bench["wrong"])]
    sets = {"wrong": bench["wrong"], "own": own, "processbench": bench["processbench"]}
    critics = {}
    for name, xs in sets.items():
        its = ce.items_from(xs)
        critics[name] = ScriptedCritic({it.id: critique(k % 2 == 0, 1, it.gt if k % 3 else "0")
                                        for k, it in enumerate(its)})
    rows, m = ce.evaluate(ScriptedCritic({}), sets, fast_cfg(), own_from="mix", backend_for=critics.__getitem__)
    assert list(rows) == ["wrong", "own", "processbench"]  # no "own_solve": the own items were given
    for name, be in critics.items():  # each set generated by its own backend, once
        assert [r.id for r in be.seen] == [ce.as_item(x).id for x in sets[name]]
    flat = ce.metric_rows(m)
    assert [(r["metric"], r["benchmark"]) for r in flat] == [
        (metric, task) for metric in ("cc_acc_wrong", "cc_acc_own", "ei_f1_original", "ei_f1_strict")
        for task in ("arith-a", "arith-b", "mean")]  # per task, then the unweighted mean over tasks
    by = {(r["metric"], r["benchmark"]): r for r in flat}
    for name in ("wrong", "own"):
        assert by[(f"cc_acc_{name}", "mean")]["value"] == pytest.approx(expected_cc_mean(rows[name]))
        got = m["cc"][name]["per_task"]["arith-a"]
        assert by[(f"cc_acc_{name}", "arith-a")] == {"benchmark": "arith-a", "metric": f"cc_acc_{name}",
                                                      "value": got["acc"], "ci_low": got["ci"][0],
                                                      "ci_high": got["ci"][1], "n": got["n"]}
    assert by[("ei_f1_original", "mean")]["value"] == pytest.approx(expected_pb_f1(rows["processbench"]))
    assert by[("ei_f1_strict", "mean")]["value"] == pytest.approx(m["processbench"]["strict"]["mean"]["f1"])
    # without reference answers strict EI-F1 has no rows at all (not a zero)
    _, m2 = ce.evaluate(critics["processbench"], {"processbench": [dict(x, answer=None) for x in bench["processbench"]]},
                        fast_cfg())
    assert {r["metric"] for r in ce.metric_rows(m2)} == {"ei_f1_original"}


def test_resumable_backend_writes_reads_back_and_resumes(tmp_path):
    from scrit_utils.pipeline.common import ResumableBackend
    from scrit_utils.core.records import ResumableJsonl

    items = ce.items_from(toy_benchmarks(n=6)["mix"])
    texts = {it.id: critique(True, 1, it.gt) for it in items}
    be = ScriptedCritic(texts)
    path = tmp_path / "critiques.jsonl"
    rec = lambda r, t: {"id": r.id, "text": t, "n_messages": len(r.messages)}  # noqa: E731
    # an interrupted run left item 0; its chunk (size 2) is regenerated whole, the stored text is kept
    ResumableJsonl(path).append([{"id": items[0].id, "text": "stored before the interruption"}])
    rows = ce.run_critiques(ResumableBackend(be, ResumableJsonl(path), rec, chunk_size=2), items, fast_cfg(), "mix")
    assert [r["text"] for r in rows] == ["stored before the interruption"] + [texts[it.id] for it in items[1:]]
    assert len(be.seen) == len(items) and path.exists()  # every chunk generated once; file finalized
    again = ce.run_critiques(ResumableBackend(be, ResumableJsonl(path), rec, chunk_size=2), items, fast_cfg(), "mix")
    assert again == rows and len(be.seen) == len(items)  # a finished file: nothing generated again
    more = ce.items_from(toy_benchmarks(n=7)["mix"])
    with pytest.raises(RuntimeError, match="no generated text for 1 requests"):
        ce.run_critiques(ResumableBackend(ScriptedCritic({}), ResumableJsonl(path), rec, 2), more, fast_cfg(), "mix")


def test_greedy_memo_generates_a_repeated_prompt_once_with_the_same_text(tiny_backend):
    from scrit_utils.pipeline.common import GreedyMemoBackend

    items = ce.items_from(toy_benchmarks(n=6)["mix"])
    reqs, _ = ce.critique_requests(items, fast_cfg())
    params = SamplingParams(max_new_tokens=24)
    plain = tiny_backend.generate(reqs, params, progress=False)
    memo = GreedyMemoBackend(tiny_backend)
    first = memo.generate(reqs[:4], params, progress=False)
    # a second set repeats two prompts (other ids and seeds) and brings two new ones
    again = [GenerationRequest(id=f"own-{r.id}", messages=r.messages, seed=r.seed + 1) for r in reqs[2:4]]
    second = memo.generate(again + reqs[4:], params, progress=False)
    assert first + second[2:] == plain and second[:2] == plain[2:4]
    assert memo.reused == 2 and len(memo.memo) == len(reqs)
    # sampled requests are separate draws: never answered from the memo
    memo.generate(reqs[:2], SamplingParams(max_new_tokens=8, temperature=1.0), progress=False)
    assert memo.reused == 2

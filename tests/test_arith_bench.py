"""The toy benchmarks (#24 item 1): claim sets of natural errors only, the injected diagnostic beside them, error
shapes, shortfall reported not filled, and the profile check that keeps the critic and the study's generators out.

The benchmarks are built with the committed v1 model ``models/toy-0.6m`` (in the default world ~3/4 of its
solutions are wrong, so a few dozen samples fill small sets: seconds on one core).
"""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from scrit_utils.core import config
from scrit_utils.core.config_schema import ConfigError
from scrit_utils.critique.parsing import extract_last_boxed
from scrit_utils.core.records import Problem
from scrit_utils.worlds import arith, arith_bench, arith_errors, arith_natural

REPO = Path(__file__).resolve().parents[1]
GEN = {"toy-0.6m": "models/toy-0.6m"}


def _rows(d: Path) -> dict[str, list[dict]]:
    rc = {s: [json.loads(l) for l in (d / "realcritic" / f / "arith" / "test.jsonl").read_text().splitlines()]
          for s, f in (("mix", "mix_data"), ("wrong", "wrong_data"))}
    return {**rc, "processbench": json.loads((d / "processbench" / "arith.json").read_text())}


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    return out, arith_bench.write_toy_benchmarks(out, seed=0, n_per_class=6, generators=GEN, samples_per_problem=1,
                                                 max_samples=400)


# --- the builder ----------------------------------------------------------------------------------------
def test_claim_sets_hold_natural_errors_only_with_exact_labels(bench):
    out, s = bench
    rows = _rows(out)
    assert s["injected_in_claim_sets"] == 0 and s["shortfall"] == {}
    assert {k: (len(v), s["claim_sets"][k]["items"]) for k, v in rows.items()} == {
        "mix": (12, 12), "wrong": (6, 6), "processbench": (12, 12)}
    for name, rs in rows.items():
        assert {r["origin"] for r in rs} <= {"natural", "reference"}, name
        assert all(r.get("model", r.get("generator")) in {"toy-0.6m", "reference"} for r in rs)
    for r in rows["mix"] + rows["wrong"]:
        p = arith_bench._problem_of(r["question"], None, r["gt"])
        right = extract_last_boxed(r["reasoning"]) == r["gt"]
        assert right == (r.get("previous_score") == [True])  # wrong set: every answer wrong
        if not right:  # a wrong item is a model's text, never the reference's or the injector's
            assert r["origin"] == "natural" and r["error_shape"] != "correct"
        assert arith.split_of(r["question"]) == "benchmark"
    assert sum(r["previous_score"] == [True] for r in rows["mix"]) == 6  # balanced
    for r in rows["processbench"]:
        p = arith_bench._problem_of(r["problem"], None, "0")
        lab = arith.label_solution(p, r["steps"])
        assert r["label"] == (-1 if lab.is_correct else lab.first_error_step - 1)
        assert (r["error_shape"] == "correct") == (r["label"] == -1)
    assert sum(r["label"] == -1 for r in rows["processbench"]) == 6
    qs = [r["question"] for r in rows["mix"] + rows["wrong"]] + [r["problem"] for r in rows["processbench"]]
    assert len(set(qs)) == len(qs)  # every item on its own problem


def test_diagnostic_set_is_labelled_injected_and_paired_with_the_claim_sets(bench):
    out, s = bench
    claims, diag = _rows(out), _rows(arith_bench.diagnostic_dir(out))
    for name in claims:
        assert len(diag[name]) == len(claims[name])
        for c, d in zip(claims[name], diag[name]):
            assert c.get("question", c.get("problem")) == d.get("question", d.get("problem"))  # same problem, same row
            if c["origin"] == "natural" and c["error_shape"] != "correct":
                assert d["origin"] == "injected" and d.get("model", d.get("generator")) == "injected"
                assert d["error_shape"] == "one_local"
            else:
                assert d == {**c, **({"id": d["id"]} if "id" in c else {})}  # correct items shared
    assert s["diagnostic"]["origins"]["wrong"] == {"injected": 6}
    assert all(r["id"].startswith("arith-injected-") for r in diag["processbench"])


def test_summary_reports_shapes_and_yield(bench):
    out, s = bench
    assert json.loads((out / "summary.json").read_text()) == s
    g = s["sampling"]["per_generator"]["toy-0.6m"]
    assert g["samples"] == s["sampling"]["samples"] <= 400 and g["wrong_answer_per_100"] > 30
    for name in arith_bench.SETS:
        shapes = s["error_shapes"][name]["shapes"]
        assert sum(shapes.values()) == s["claim_sets"][name]["items"]
        assert sum(v for k, v in shapes.items() if k != "correct") == s["claim_sets"][name]["natural_wrong"]
    md = (out / "error_shapes.md").read_text()
    assert "| wrong | 6 | 6 |" in md and "not a claim set" in md


def test_shortfall_is_reported_not_filled(tmp_path):
    # 2 x 4 correct-item problems use 8 of the 10 samples: the wrong items get at most 2 problems
    s = arith_bench.write_toy_benchmarks(tmp_path, seed=0, n_per_class=4, generators=GEN, samples_per_problem=1,
                                         max_samples=10)
    rows = _rows(tmp_path)
    assert s["sampling"]["samples"] == 10 and s["sampling"]["capped"]
    natural = sum(s["claim_sets"][k]["natural_wrong"] for k in arith_bench.SETS)
    assert natural <= 2 and s["shortfall"]["wrong"] == 4 - s["claim_sets"]["wrong"]["natural_wrong"] > 0
    assert len(rows["wrong"]) == s["claim_sets"]["wrong"]["natural_wrong"]
    assert len(rows["mix"]) == 2 * s["claim_sets"]["mix"]["natural_wrong"]  # balanced even when short
    assert all(r["origin"] != "injected" for rs in rows.values() for r in rs)
    assert "Short of the quota" in (tmp_path / "error_shapes.md").read_text()


def test_dev_split_items_and_no_generators_refused(tmp_path):
    arith_bench.write_toy_benchmarks(tmp_path / "dev", seed=0, n_per_class=2, generators=GEN, samples_per_problem=1,
                                     split="dev", max_samples=200)
    rows = _rows(tmp_path / "dev")
    qs = [r["question"] for r in rows["mix"] + rows["wrong"]] + [r["problem"] for r in rows["processbench"]]
    assert {arith.split_of(q) for q in qs} == {"dev"}
    with pytest.raises(ValueError, match="held-out split"):
        arith_bench.write_toy_benchmarks(tmp_path / "x", seed=0, n_per_class=2, generators=GEN, split="train")
    with pytest.raises(ValueError, match="benchmark_generators.*never injected"):
        arith_bench.write_toy_benchmarks(tmp_path / "y", seed=0, n_per_class=2, generators=None)


def test_deal_gives_each_problem_to_one_set_in_turn():
    probs = arith.generate_problems(0, 8, "dev")
    wrong = arith.inject_error(probs[0], random.Random(0))
    cands = lambda p, s: [] if p.id == probs[1].id else [wrong]  # noqa: E731 (problem 1 has no error)
    dealt = arith_natural.deal(probs, cands, {"a": 2, "b": 2, "c": 1}, seed=0)
    got = {k: [p.id for p, _ in v] for k, v in dealt.items()}
    assert got == {"a": [probs[0].id, probs[4].id], "b": [probs[2].id, probs[5].id], "c": [probs[3].id]}


# --- error shapes on hand-made solutions -------------------------------------------------------------------
P = Problem(id="p", question="Start with 5. Add 3. Multiply by 2. Subtract 4.", answer="12")  # 5 -> 8 -> 16 -> 12


@pytest.mark.parametrize("steps,shape", [
    (["5+3=8", "8*2=16", "16-4=12 \\boxed{12}"], "correct"),
    (["5+3=9", "9*2=18", "18-4=14 \\boxed{14}"], "one_local"),  # wrong result, carried on
    (["5+4=9", "9*2=18", "18-4=14 \\boxed{14}"], "one_local"),  # wrong operand
    (["5+3=8", "9*2=18", "18-4=14 \\boxed{14}"], "one_local"),  # miscopied value
    (["5+3=9", "9*2=20", "20-4=16 \\boxed{16}"], "several"),
    (["5+3=9", "9*2=18", "18-4=14 \\boxed{12}"], "several"),  # a slip, then the right box: lucky, not local
    (["5+3=8", "8*2=16", "16-4=12 \\boxed{13}"], "final_only"),
    (["5+3=8", "8*2=16 \\boxed{16}"], "step_count"),
    (["5+3=8", "8*2=16", "16-4=12", "12+1=13 \\boxed{13}"], "step_count"),
    (["5+3=8", "8*2=16", "16-4=12"], "malformed"),  # no box
    (["five and three", "8*2=16", "16-4=12 \\boxed{12}"], "malformed"),
])
def test_error_shape_of_hand_made_solutions(steps, shape):
    assert arith_errors.shape(P, steps) == shape


def test_injected_errors_are_one_local_and_the_table_counts_lucky_answers():
    probs = arith.generate_problems(1, 150, "dev")
    assert {arith_errors.shape(p, arith.inject_error(p, random.Random(p.id)).steps) for p in probs} == {"one_local"}
    rows = [arith_errors.describe(P, ["5+3=9", "9*2=18", "18-4=14 \\boxed{12}"], True),
            arith_errors.describe(P, ["5+3=8", "8*2=16", "16-4=12 \\boxed{12}"], True)]
    t = arith_errors.shape_table(rows)
    assert t == {"n": 2, "shapes": {"correct": 1, "several": 1}, "final_answer_right": 1, "first_error_step": {"1": 1}}


# --- the profile check ----------------------------------------------------------------------------------
def _smoke(gens: str):
    # a size sweep without toy-0.1m, so that the generator rule is what refuses it below
    return config.load(REPO / "configs" / "smoke.yaml", [f"world.arith.benchmark_generators={gens}",
                                                         "sweeps.model_sizes=[models/toy-66k, models/toy-0.2m]"])


@pytest.mark.parametrize("gens,match", [
    ("[{name: b, path: models/toy-0.3m}]", r"\[0\]\.path: models/toy-0.3m is models\.critic"),
    ("[{name: b, path: ./models/toy-0.2m, temperature: 0.5}]", r"\[0\]\.path: \./models/toy-0.2m is sweeps\.model_sizes\[1\]"),
    ("[{name: b, path: models/toy-0.1m, temperature: 1.0}]", r"\[0\]: models/toy-0.1m at temperature 1.0 is models\.generators\[0\]"),
    ("[{name: toy-0.3m, path: models/toy-0.6m}]", r"\[0\]\.name: 'toy-0.3m' is also models\.generators\[1\]\.name"),
    ("[{name: b, path: models/toy-0.6m}, {name: b, path: models/toy-150k}]", r": name 'b' twice"),
])
def test_profile_refuses_benchmark_generators_that_are_study_models(gens, match):
    with pytest.raises(ConfigError, match=r"smoke\.yaml: world\.arith\.benchmark_generators" + match):
        _smoke(gens)


def test_profile_accepts_held_out_builds_and_temperatures():
    # a study generator at another temperature is held out by temperature (the check's rule)
    cfg = config.load(REPO / "configs" / "smoke.yaml", ["world.arith.benchmark_generators=[{name: b, path: models/toy-0.1m, "
                                                        "temperature: 1.4}]", "sweeps.model_sizes=[]"])
    assert cfg.world.arith.benchmark_generators[0].temperature == 1.4
    for name in ("toy", "toy-seed1", "toy-full", "smoke"):
        a = config.load(REPO / "configs" / f"{name}.yaml").world.arith
        assert a.benchmark_generators, name


def test_world_refuses_an_empty_generator_list_and_a_claim_set_with_injected_items(tmp_path, bench):
    from scrit_utils import worlds

    cfg = config.load(REPO / "configs" / "smoke.yaml", ["world.arith.benchmark_generators=[]"])
    with pytest.raises(ValueError, match="world.arith.benchmark_generators: empty"):
        worlds.get(cfg).build_benchmarks(tmp_path / "b")
    out, _ = bench
    world = worlds.get(config.load(REPO / "configs" / "smoke.yaml"))
    claims, diag = world.benchmark_items(out), world.injected_benchmark_items(out)
    assert [it["question"] for it in claims["wrong"]] == [it["question"] for it in diag["wrong"]]
    assert all(it["id"].startswith("injected:") for v in diag.values() for it in v)
    with pytest.raises(ValueError, match="injected items in a claim set"):
        world.benchmark_items(arith_bench.diagnostic_dir(out))  # the diagnostic read as claims: refused


def test_the_old_natural_errors_switch_names_its_replacement():
    with pytest.raises(ConfigError, match=r"evaluation\.natural_errors: moved to world\.arith\.benchmark_generators"):
        config.load(REPO / "configs" / "smoke.yaml", ["evaluation.natural_errors=true"])
    with pytest.raises(ConfigError, match=r"world\.arith\.natural_errors: unknown key \(allowed: .*benchmark_generators"):
        config.load(REPO / "configs" / "smoke.yaml", ["world.arith.natural_errors=true"])

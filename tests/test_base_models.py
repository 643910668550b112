"""A tiny base-model build runs in seconds and yields a loadable, reproducible HF model dir."""
from __future__ import annotations

import json
import random

import pytest

from scrit_utils.toy_models import data as bd
from scrit_utils.toy_models import build as bm
from scrit_utils.generation import GenerationRequest, SamplingParams, derive_seed
from scrit_utils.worlds import arith


def _tiny_cfg(out, **kw):
    return bm.BuildConfig(out_dir=str(out), sizes=("toy-66k",), max_steps=6, n_seed_contrastive=6, n_seed_copy=4,
                          n_seed_direct=4, log_every=1, jobs=1, solve_batch=4, seed_batch=2, drill_batch=2, **kw)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("bm")
    bm.build_base_models(_tiny_cfg(out))
    return out / "toy-66k"


def test_tiny_build_is_a_loadable_hf_dir(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    assert bm.is_complete(tiny_model)
    assert (tiny_model / "model.safetensors").exists()
    m = AutoModelForCausalLM.from_pretrained(str(tiny_model))
    assert type(m).__name__ == "Qwen2ForCausalLM"
    tok = AutoTokenizer.from_pretrained(str(tiny_model))
    assert GenerationConfig.from_pretrained(str(tiny_model)).eos_token_id == tok.eos_token_id
    info = json.loads((tiny_model / "build_info.json").read_text())
    assert info["steps"] == 6 and info["n_params"] == bm.n_params(m) and info["complete"]
    assert info["recipe_version"] == bm.RECIPE_VERSION
    log = json.loads((tiny_model / "train_log.json").read_text())
    # the recipe's three phases, each its share of the 6 steps, logged in order by one loop
    assert [r["step"] for r in log] == list(range(1, 7))
    assert [p["name"] for p in info["phases"]] == [p.name for p in bm.RECIPE]
    assert [r["phase"] for r in log] == [p["name"] for p in info["phases"] for _ in range(p["end"] - p["start"])]
    assert (tiny_model / "train_log.csv").read_text().startswith("step,")


def test_same_seed_same_weights_and_generations(tiny_model, tmp_path):
    from safetensors.torch import load_file

    from scrit_utils.generation.transformers_backend import TransformersBackend

    bm.build_base_models(_tiny_cfg(tmp_path))
    a = load_file(str(tiny_model / "model.safetensors"))
    b = load_file(str(tmp_path / "toy-66k" / "model.safetensors"))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    probs = arith.generate_problems(0, 3, "benchmark")
    reqs = [GenerationRequest(id=p.id, messages=arith.solve_messages(p), seed=derive_seed(0, "t", p.id, 0)) for p in probs]
    params = SamplingParams(max_new_tokens=12, temperature=1.0)
    g1 = TransformersBackend(str(tiny_model)).generate(reqs, params, progress=False)
    g2 = TransformersBackend(str(tmp_path / "toy-66k")).generate(reqs, params, progress=False)
    assert g1 == g2 and all(isinstance(t, str) for t in g1)


def test_complete_model_is_skipped_and_restart_resumes(tiny_model, tmp_path):
    before = (tiny_model / "model.safetensors").stat().st_mtime_ns
    bm.build_base_models(_tiny_cfg(tiny_model.parent))
    assert (tiny_model / "model.safetensors").stat().st_mtime_ns == before
    # a run interrupted after a checkpoint resumes from it and ends in the same weights
    from safetensors.torch import load_file

    cfg = _tiny_cfg(tmp_path / "r", ckpt_every=2)
    bm.ensure_tokenizer(cfg)
    assert bm.train_one(cfg, "toy-66k", progress=False, stop_after=2) is None
    assert (tmp_path / "r" / "toy-66k.ckpt" / "state.pt").exists()
    assert not bm.is_complete(tmp_path / "r" / "toy-66k")
    bm.train_one(cfg, "toy-66k", progress=False)
    full = load_file(str(tmp_path / "r" / "toy-66k" / "model.safetensors"))
    assert not (tmp_path / "r" / "toy-66k.ckpt").exists()
    assert all((full[k] == load_file(str(tiny_model / "model.safetensors"))[k]).all() for k in full)


def test_unknown_size_and_bad_profile_key_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown base model size"):
        bm.build_base_models(bm.BuildConfig(out_dir=str(tmp_path), sizes=("toy-9m",)))
    with pytest.raises(ValueError, match="unknown key"):
        bm.config_from_dict({"n_layers": 3})


def test_sampled_solutions_record_their_generator_and_are_reproducible(tiny_model):
    from scrit_utils.worlds.arith_bench import sample_solutions

    probs = arith.generate_problems(0, 2, "benchmark")
    gens = {"tiny": str(tiny_model)}
    a = sample_solutions(probs, gens, seed=1, temperature=1.0)
    b = sample_solutions(probs, gens, seed=1, temperature=1.0)
    assert [s.text for s in a] == [s.text for s in b]
    assert [s.generator for s in a] == ["tiny", "tiny"] and [s.problem_id for s in a] == [p.id for p in probs]
    assert all(s.is_correct in (True, False) for s in a)


def test_recipe_is_data_one_loop_for_every_size():
    cfg = bm.BuildConfig()
    # only width/depth and the compute-scaled step count differ between sizes
    steps = [cfg.steps_for(n) for n in (66_000, 150_000, 409_000, 709_000)]
    assert steps == sorted(steps) and steps[1] == cfg.steps_base
    three = bm.config_from_dict({"recipe": [{"name": n, "share": s, "mix": [0, 1, 0, 0], "lr": 1e-3}
                                            for n, s in (("a", 0.5), ("b", 0.3), ("c", 0.2))]})
    assert three.phase_bounds(1000) == [(0, 500), (500, 800), (800, 1000)]  # shares of the size's steps
    assert three.phase_bounds(3) == [(0, 1), (1, 2), (2, 3)]  # every phase gets at least one step
    assert cfg.phase_bounds(1000)[-1][1] == 1000 and len(cfg.phase_bounds(1000)) == len(bm.RECIPE)
    assert bm.BuildConfig(max_steps=1).steps_for(10**6) == len(cfg.recipe)
    # a recipe from plain data (a profile's base_models.recipe) round-trips; a bad phase names its index
    d = {"recipe": [{"name": "a", "share": 1.0, "mix": [0, 1, 0, 0], "lr": 1e-3}], "steps_base": 10}
    c = bm.config_from_dict(d)
    assert c.recipe == (bm.Phase("a", 1.0, (0.0, 1.0, 0.0, 0.0), 1e-3),) and bm.config_from_dict(bm._cfg_dict(c)) == c
    with pytest.raises(ValueError, match=r"recipe\[0\].*unknown key"):
        bm.config_from_dict({"recipe": [{"name": "a", "share": 1, "mix": [0, 1, 0, 0], "lr": 1, "steps": 3}]})
    with pytest.raises(ValueError, match=r"recipe\[0\].*mix"):
        bm.config_from_dict({"recipe": [{"name": "a", "share": 1, "mix": [0, 1], "lr": 1}]})


def test_a_custom_recipe_runs_its_phases_with_their_mixtures(tmp_path):
    recipe = ({"name": "only-solve", "share": 1, "mix": [0, 1, 0, 0], "lr": 1e-3, "warmup": 1},
              {"name": "only-contrastive", "share": 1, "mix": [0, 0, 0, 1], "lr": 1e-3, "warmup": 1})
    cfg = bm.config_from_dict({**bm._cfg_dict(_tiny_cfg(tmp_path)), "recipe": recipe, "max_steps": 4})
    bm.build_base_models(cfg)
    log = json.loads((tmp_path / "toy-66k" / "train_log.json").read_text())
    assert [r["phase"] for r in log] == ["only-solve"] * 2 + ["only-contrastive"] * 2
    assert all(r["loss_solve"] is not None and r["loss_contrastive"] is None for r in log[:2])
    assert all(r["loss_contrastive"] is not None and r["loss_solve"] is None for r in log[2:])


def test_reference_weight_marks_only_what_the_reference_determines():
    from transformers import AutoTokenizer

    probs = arith.generate_problems(0, 1, "seed")
    p = probs[0]
    wrong = arith.inject_error(p, random.Random(0))
    target = arith.ground_truth_critique(p, wrong.steps, with_reference=True)
    spans = bd.reference_value_spans(target)
    marked = [target[a:b] for a, b in spans]
    vals = arith.parse_problem(p).values()
    # one checked value per critique line, then every number of the correction (the reference's solution)
    n_lines = target.count("### Critique of Step")
    assert marked[:n_lines] == [str(v) for v in vals[1:n_lines + 1]]
    assert marked[-1] == str(vals[-1]) and all(m.isdigit() for m in marked)
    tok = AutoTokenizer.from_pretrained("models/tokenizer")
    enc = bd.Encoder(tok, verdict_weight=2.0, copy_weight=1.0, ref_weight=7.0)
    msgs = arith.contrastive_messages(p, wrong.text)
    _, w_con = enc.pair(msgs, target, mode="contrastive")
    _, w_dir = enc.pair(msgs, target, mode="direct")
    _, w_off = bd.Encoder(tok, 2.0, 1.0, 1.0).pair(msgs, target, mode="contrastive")
    n_digits = sum(len(m) for m in marked)  # digits are single tokens in the toy tokenizer
    assert w_con.count(7.0) == n_digits and 7.0 not in w_dir and w_dir == w_off


def test_seed_pools_direct_from_the_hard_world_contrastive_from_both():
    cfg = bm.BuildConfig(n_seed_contrastive=4, n_seed_copy=6, n_seed_direct=5)
    ex = bm.seed_examples(cfg)
    assert len(ex["direct"]) == 5 and len(ex["contrastive"]) == 10
    assert all(e.mode == "direct" for e in ex["direct"]) and all(e.mode == "contrastive" for e in ex["contrastive"])

    def top(e):
        return max(int(x) for x in __import__("re").findall(r"\d+", e.target.split("## Conclusion")[0]))
    # the direct seed teaches the format on values the base never learns to compute
    assert min(top(e) for e in ex["direct"]) > 0 and max(top(e) for e in ex["direct"]) > cfg.world.max_value
    assert max(top(e) for e in ex["contrastive"][:4]) <= cfg.world.max_value
    assert all(e.target.startswith("## Reference Analysis") for e in ex["contrastive"])

"""A tiny base-model build runs in seconds and yields a loadable, reproducible HF model dir."""
from __future__ import annotations

import json
import random

import pytest

from scrit_utils import base_models as bm
from scrit_utils.generation import GenerationRequest, SamplingParams, derive_seed
from scrit_utils.worlds import arith


def _tiny_cfg(out, **kw):
    return bm.BuildConfig(out_dir=str(out), sizes=("toy-0.1m",), max_steps=3, n_seed_per_mode=6, copy_seed_n=4, log_every=1,
                          drill_only_steps=1, drill_phase=0.0, phase2_mix=(0.0, 0.5, 0.0, 0.5),
                          jobs=1, solve_batch=4, seed_batch=2, drill_batch=2, warmup=2, **kw)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("bm")
    bm.build_base_models(_tiny_cfg(out))
    return out / "toy-0.1m"


def test_tiny_build_is_a_loadable_hf_dir(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    assert bm.is_complete(tiny_model)
    assert (tiny_model / "model.safetensors").exists()
    m = AutoModelForCausalLM.from_pretrained(str(tiny_model))
    assert type(m).__name__ == "Qwen2ForCausalLM"
    tok = AutoTokenizer.from_pretrained(str(tiny_model))
    assert GenerationConfig.from_pretrained(str(tiny_model)).eos_token_id == tok.eos_token_id
    info = json.loads((tiny_model / "build_info.json").read_text())
    assert info["steps"] == 3 and info["n_params"] == bm.n_params(m) and info["complete"]
    log = json.loads((tiny_model / "train_log.json").read_text())
    # 3 main steps, 3 critique-phase (phase 3) steps, 3 phase-4 and 3 phase-5 steps: max_steps caps all four
    assert [r["step"] for r in log] == list(range(1, 13))
    assert info["verdict_tune"]["mix_steps"] == 3 and info["critique_tune"]["mix_steps"] == 3
    assert info["critique_tune"]["mix"] == list(bm.BuildConfig().critique_mix)
    assert (tiny_model / "train_log.csv").read_text().startswith("step,")


def test_same_seed_same_weights_and_generations(tiny_model, tmp_path):
    from safetensors.torch import load_file

    from scrit_utils.generation.transformers_backend import TransformersBackend

    bm.build_base_models(_tiny_cfg(tmp_path))
    a = load_file(str(tiny_model / "model.safetensors"))
    b = load_file(str(tmp_path / "toy-0.1m" / "model.safetensors"))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    probs = arith.generate_problems(0, 3, "benchmark")
    reqs = [GenerationRequest(id=p.id, messages=arith.solve_messages(p), seed=derive_seed(0, "t", p.id, 0)) for p in probs]
    params = SamplingParams(max_new_tokens=12, temperature=1.0)
    g1 = TransformersBackend(str(tiny_model)).generate(reqs, params, progress=False)
    g2 = TransformersBackend(str(tmp_path / "toy-0.1m")).generate(reqs, params, progress=False)
    assert g1 == g2 and all(isinstance(t, str) for t in g1)


def test_complete_model_is_skipped_and_restart_resumes(tiny_model, tmp_path):
    before = (tiny_model / "model.safetensors").stat().st_mtime_ns
    bm.build_base_models(_tiny_cfg(tiny_model.parent))
    assert (tiny_model / "model.safetensors").stat().st_mtime_ns == before
    # a run interrupted after a checkpoint resumes from it and ends in the same weights
    from safetensors.torch import load_file

    cfg = _tiny_cfg(tmp_path / "r", ckpt_every=2)
    bm.ensure_tokenizer(cfg)
    assert bm.train_one(cfg, "toy-0.1m", progress=False, stop_after=2) is None
    assert (tmp_path / "r" / "toy-0.1m.ckpt" / "state.pt").exists()
    assert not bm.is_complete(tmp_path / "r" / "toy-0.1m")
    bm.train_one(cfg, "toy-0.1m", progress=False)
    full = load_file(str(tmp_path / "r" / "toy-0.1m" / "model.safetensors"))
    assert not (tmp_path / "r" / "toy-0.1m.ckpt").exists()
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


def test_a_model_built_before_phase_4_gets_only_phase_4(tiny_model, tmp_path):
    import shutil

    out = tmp_path / "old"
    shutil.copytree(tiny_model.parent, out)
    info_path = out / "toy-0.1m" / "build_info.json"
    info = json.loads(info_path.read_text())
    del info["critique_tune"]
    info_path.write_text(json.dumps(info))
    assert not bm.is_complete(out / "toy-0.1m") and bm.main_done(out / "toy-0.1m")
    n_log = len(json.loads((out / "toy-0.1m" / "train_log.json").read_text()))
    bm.build_base_models(_tiny_cfg(out))
    info = json.loads(info_path.read_text())
    assert bm.is_complete(out / "toy-0.1m") and info["verdict_tune"] and info["critique_tune"]["mix_steps"] == 3
    assert len(json.loads((out / "toy-0.1m" / "train_log.json").read_text())) == n_log + 3


def test_reference_weight_marks_only_what_the_reference_determines():
    from transformers import AutoTokenizer

    probs = arith.generate_problems(0, 1, "seed")
    p = probs[0]
    wrong = arith.inject_error(p, random.Random(0))
    target = arith.ground_truth_critique(p, wrong.steps, with_reference=True)
    spans = bm.reference_value_spans(target)
    marked = [target[a:b] for a, b in spans]
    vals = arith.parse_problem(p).values()
    # one checked value per critique line, then every number of the correction (the reference's solution)
    n_lines = target.count("### Critique of Step")
    assert marked[:n_lines] == [str(v) for v in vals[1:n_lines + 1]]
    assert marked[-1] == str(vals[-1]) and all(m.isdigit() for m in marked)
    tok = AutoTokenizer.from_pretrained("models/tokenizer")
    enc = bm.Encoder(tok, verdict_weight=2.0, copy_weight=1.0, ref_weight=7.0)
    msgs = arith.contrastive_messages(p, wrong.text)
    _, w_con = enc.pair(msgs, target, mode="contrastive")
    _, w_dir = enc.pair(msgs, target, mode="direct")
    _, w_off = bm.Encoder(tok, 2.0, 1.0, 1.0).pair(msgs, target, mode="contrastive")
    n_digits = sum(len(m) for m in marked)  # digits are single tokens in the toy tokenizer
    assert w_con.count(7.0) == n_digits and 7.0 not in w_dir and w_dir == w_off


def test_phase_5_runs_only_where_it_has_steps_and_upgrades_an_older_dir(tiny_model, tmp_path):
    import shutil

    # per-size settings: toy-0.1m and toy-0.6m have phase-5 steps, the others only record the phase
    cfg = bm.BuildConfig()
    assert [bm._size_setting(cfg, s, "reference_steps") for s in bm.SIZES] == [1000, 0, 0, 800]
    assert bm._size_setting(cfg, "toy-0.1m", "reference_mix") == (0.3, 0.1, 0.2, 0.4)
    assert bm._size_setting(cfg, "toy-0.6m", "reference_mix") == cfg.reference_mix
    info = json.loads((tiny_model / "build_info.json").read_text())
    rec = info["reference_tune"]
    assert rec["mix_steps"] == 3 and rec["mix"] == [0.3, 0.1, 0.2, 0.4]  # capped by max_steps
    # an older dir: phase 5 missing, or recorded with 0 steps before the recipe gave this size steps
    for case in ("missing", "zero-step record"):
        out = tmp_path / case.replace(" ", "-")
        shutil.copytree(tiny_model.parent, out)
        info_path = out / "toy-0.1m" / "build_info.json"
        old = dict(info)
        if case == "missing":
            del old["reference_tune"]
        else:
            old["reference_tune"] = {"drill_steps": 0, "mix_steps": 0, "seconds": 0.0}
        info_path.write_text(json.dumps(old))
        assert bm.is_complete(out / "toy-0.1m") == (case != "missing")
        n_log = len(json.loads((out / "toy-0.1m" / "train_log.json").read_text()))
        before = (out / "toy-0.1m" / "model.safetensors").read_bytes()
        bm.build_base_models(_tiny_cfg(out))
        new_info = json.loads(info_path.read_text())
        assert bm.is_complete(out / "toy-0.1m") and new_info["reference_tune"]["mix_steps"] == 3
        assert new_info["reference_tune"]["ref_weight"] == bm.BuildConfig().ref_weight
        assert len(json.loads((out / "toy-0.1m" / "train_log.json").read_text())) == n_log + 3
        assert (out / "toy-0.1m" / "model.safetensors").read_bytes() != before
        assert bm.steps_done(new_info) == bm.steps_done(new_info, upto="reference_tune") + 3
        # a recorded phase with steps is never rerun
        after = (out / "toy-0.1m" / "model.safetensors").read_bytes()
        bm.build_base_models(_tiny_cfg(out))
        assert (out / "toy-0.1m" / "model.safetensors").read_bytes() == after


def test_phase_5_pool_adds_copy_world_critiques_only_to_the_contrastive_pool():
    from transformers import AutoTokenizer

    cfg = bm.BuildConfig(n_seed_per_mode=4, copy_seed_n=6)
    enc = bm.Encoder(AutoTokenizer.from_pretrained("models/tokenizer"), 2.0, 1.0, 10.0)
    plain, with_copy = bm.encode_seed(cfg, enc), bm.encode_seed(cfg, enc, copy_critiques=True)
    assert len(plain["direct"]) == len(with_copy["direct"]) == 4
    assert len(plain["contrastive"]) == 4 and len(with_copy["contrastive"]) == 10
    assert with_copy["contrastive"][:4] == plain["contrastive"]
    big = [e for e in arith.seed_critiques(0, 6, cfg.copy_world, stream="copy-critiques") if e.mode == "contrastive"]
    assert max(max(arith.parse_problem(arith.generate_problems(0, 12, "seed", cfg.copy_world,
                                                              stream="copy-critiques")[i]).values())
               for i in range(12)) > cfg.world.max_value  # the copy world really is out of the base world's range
    assert all(e.target.startswith("## Reference Analysis") for e in big)
    assert bm.config_from_dict(bm._cfg_dict(cfg)) == cfg

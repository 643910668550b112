"""The v3 base-model recipe (issue #24 item 3): the bug-injection instruction as a batch kind, the step floor,
build plans (seeds, named variants), a tiny v3 build, and the v2 models staying current and reproducible."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from scrit_utils.critique import prompts
from scrit_utils.pipeline.data import parse_solution
from scrit_utils.pipeline.self_critic import extract_injected
from scrit_utils.toy_models import build as bm
from scrit_utils.toy_models import cli as bcli
from scrit_utils.toy_models import data as bd
from scrit_utils.toy_models.info import is_current
from scrit_utils.worlds import arith

V3_PROFILE = "configs/base_models/v3_world.yaml"
V2_DIRS = [Path(d) / s for d in ("models", "models/seed1") for s in ("toy-66k", "toy-150k", "toy-409k", "toy-709k")]
V3_VERSION = bm.BuildConfig(recipe="v3").recipe_version


def _tok():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained("models/tokenizer")


def test_inject_pair_is_the_study_prompt_and_the_world_injection_in_markers():
    for p in arith.generate_problems(3, 5, "train"):
        msgs, target, wrong = bd.inject_pair(p, random.Random(f"t/{p.id}"))
        # the prompt the study's bug-injection stage sends (compact variant) on the problem's correct solution
        assert msgs == prompts.bug_injection_messages(p.question, p.reference_solution, variant="compact")
        assert arith.reference_solution(p).text == p.reference_solution
        # the target: exactly the world's injected solution (same rng) inside the markers
        expect = arith.inject_error(p, random.Random(f"t/{p.id}"))
        assert wrong == expect and not expect.is_correct
        assert target == f"{prompts.INJECTED_SOLUTION_START}\n{expect.text}\n{prompts.INJECTED_SOLUTION_END}"
        # and the study reads it back as a usable injected solution (steps, a wrong final answer)
        steps, ans = parse_solution(extract_injected(target))
        assert steps == expect.steps and ans == expect.final_answer != p.answer


def test_inject_batches_are_built_from_inject_pair_on_fresh_train_problems():
    enc = bd.Encoder(_tok(), verdict_weight=5.0, copy_weight=10.0, ref_weight=5.0)
    cfg = bm.BuildConfig(inject_batch=3)
    phase = bm.Phase("inject-only", 1.0, (0, 0, 0, 0, 1), 1e-3)
    kind, items = bm.make_batch(cfg, phase, enc, {}, "toy-66k", step=7)
    assert kind == "inject" and len(items) == 3
    probs = arith.generate_problems(7, 3, "train", cfg.world, stream="inject/toy-66k")
    assert all(arith.split_of(p.question) == "train" for p in probs)
    for p, (ids, w) in zip(probs, items):
        msgs, target, _ = bd.inject_pair(p, random.Random(f"0/toy-66k/inject/7/{p.id}"))
        assert (ids, w) == enc.pair(msgs, target)
        n_prompt = w.index(1.0)
        # loss on the target only, every target token (no verdict words in an injected solution) at weight 1
        assert set(w[:n_prompt]) == {0.0} and set(w[n_prompt:]) == {1.0}
        assert enc.tok.decode(ids[n_prompt:]) == target + "<|im_end|>"
    # a different step draws different problems (a pure function of seed, model and step)
    assert bm.make_batch(cfg, phase, enc, {}, "toy-66k", step=8)[1] != items


def test_v2_batches_draw_as_before_the_inject_kind_existed():
    # the v2 phases' 4-weight mixes are read as "no inject"; the kind drawn at every step is what v2 drew
    for ph in bm.RECIPE:
        assert len(ph.mix) == len(bm.BATCH_KINDS) and ph.mix[-1] == 0.0
        for step in range(300):
            rng = random.Random(f"0/toy-66k/step{step}")
            assert rng.choices(bm.BATCH_KINDS, weights=ph.mix)[0] == \
                random.Random(f"0/toy-66k/step{step}").choices(bm.BATCH_KINDS[:4], weights=ph.mix[:4])[0]
    assert bm.Phase("a", 1, (0, 1, 0, 0), 1e-3) == bm.Phase("a", 1, (0, 1, 0, 0, 0), 1e-3)
    # the v3 recipe mixes inject batches as data (a mix weight), and only v3 does
    assert [p.mix[-1] for p in bm.RECIPE_V3] == [0.0, 0.1] and all(p.mix[-1] == 0 for p in bm.RECIPE)


@pytest.mark.parametrize("model_dir", V2_DIRS, ids=str)
def test_committed_v2_models_stay_current_and_their_recipe_reproduces(model_dir):
    info = json.loads((model_dir / "build_info.json").read_text())
    assert is_current(model_dir) and not is_current(model_dir, V3_VERSION)
    # the recorded settings, read by today's code; the world sections keep the keys ArithConfig still has (the
    # study-only knobs recorded then, e.g. natural_errors, were renamed since; the builder reads none of them)
    import dataclasses

    known = {f.name for f in dataclasses.fields(arith.ArithConfig)}
    rec = dict(info["build_config"])
    for key in ("world", "copy_world", "direct_world"):
        rec[key] = {k: v for k, v in rec[key].items() if k in known}
    cfg = bm.config_from_dict(rec)
    assert cfg.world == bm.config_from_dict(bcli.config_from_profile("configs/base_models/v2_world.yaml")).world
    assert cfg.recipe == bm.RECIPE and cfg.recipe_name == "v2" and cfg.recipe_version == info["recipe_version"]
    assert cfg.min_train_steps == 0 and cfg.direct_inworld_fraction == 0.0
    assert cfg.steps_for(info["n_params"]) == info["steps"]
    assert [{"name": p.name, "start": lo, "end": hi} for p, (lo, hi) in
            zip(cfg.recipe, cfg.phase_bounds(info["steps"]))] == info["phases"]


def test_min_train_steps_is_a_floor_under_the_compute_scaled_count():
    v2, v3 = bm.BuildConfig(), bm.BuildConfig(recipe="v3", min_train_steps=6000)
    sizes = (65_760, 149_440, 408_960, 709_120)
    assert [v2.steps_for(n) for n in sizes] == [3123, 3996, 5404, 6375]  # the committed v2 build_info steps
    assert [v3.steps_for(n) for n in sizes] == [6000, 6000, 6000, 6375]  # floor binds; the largest keeps its own
    assert bm.BuildConfig(min_train_steps=6000, steps_scale=0.5).steps_for(65_760) == 3000  # scaled after the floor
    assert bm.BuildConfig(min_train_steps=6000, max_steps=20).steps_for(65_760) == 20  # the hard cap (tests)
    with pytest.raises(ValueError, match="min_train_steps"):
        bm.BuildConfig(min_train_steps=-1)


def test_named_recipes_and_their_versions():
    c = bm.config_from_dict({"recipe": "v3"})
    assert c.recipe == bm.RECIPE_V3 and c.recipe_name == "v3" and c.recipe_version == V3_VERSION != bm.RECIPE_VERSION
    assert bm.config_from_dict(bm._cfg_dict(c)) == c  # build_info round trip
    with pytest.raises(ValueError, match="unknown recipe 'v9'"):
        bm.config_from_dict({"recipe": "v9"})
    with pytest.raises(ValueError, match="direct_inworld_fraction"):
        bm.BuildConfig(direct_inworld_fraction=1.5)


def test_inworld_fraction_draws_that_share_of_direct_critiques_in_the_study_world():
    def top(e):
        return max(int(x) for x in __import__("re").findall(r"\d+", e.target.split("## Conclusion")[0]))

    base = dict(n_seed_contrastive=2, n_seed_copy=0, n_seed_direct=8)
    v2 = bm.seed_examples(bm.BuildConfig(**base))["direct"]
    assert v2 == bm.seed_examples(bm.BuildConfig(**base, direct_inworld_fraction=0.0))["direct"]
    part = bm.seed_examples(bm.BuildConfig(**base, direct_inworld_fraction=0.25))["direct"]
    assert len(part) == 8 and all(e.mode == "direct" for e in part)
    world_max = bm.BuildConfig().world.max_value
    assert sum(top(e) <= world_max for e in part[-2:]) == 2  # the in-world quarter: values the base computes
    assert part[:6] == bm.seed_examples(bm.BuildConfig(**{**base, "n_seed_direct": 6}))["direct"]


def test_v3_profile_plans_three_seeds_of_the_competent_sizes_and_the_inworld_critic_variant():
    d = bcli.config_from_profile(V3_PROFILE)
    plan = bm.plan_from_dict(d)
    main = [c for n, c in plan if n == "main"]
    var = [c for n, c in plan if n == "inworld25"]
    assert [c.seed for c in main] == [0, 1, 2] and [c.seed for c in var] == [0, 1, 2]
    assert [c.out_dir for c in main] == [f"models/v3/seed{s}" for s in (0, 1, 2)]
    # toy-66k is not competent at the step floor (dev check, models/README.md): the claims use the other three
    assert all(c.sizes == ("toy-150k", "toy-409k", "toy-709k") and c.recipe_name == "v3" and c.min_train_steps == 6000
               for c in main)
    assert all(c.direct_inworld_fraction == 0.0 and c.tokenizer_from == "models/tokenizer" for c in main)
    assert all(c.sizes == ("toy-409k",) and c.direct_inworld_fraction == 0.25 and c.recipe_name == "v3" for c in var)
    assert [c.out_dir for c in var] == [f"models/v3/inworld25/seed{s}" for s in (0, 1, 2)]
    # the CLI's choices: one seed, no variants
    assert [(n, c.seed) for n, c in bm.plan_from_dict(d, seeds=[1], variants=[])] == [("main", 1)]
    # --sizes filters every build: the variant (toy-409k only) drops out for toy-150k, stays for toy-409k
    assert [(n, c.sizes) for n, c in bm.plan_from_dict(d, seeds=[0], sizes=["toy-150k"])] == [("main", ("toy-150k",))]
    assert [(n, c.sizes) for n, c in bm.plan_from_dict(d, seeds=[0], sizes=["toy-409k"])] == \
        [("main", ("toy-409k",)), ("inworld25", ("toy-409k",))]
    with pytest.raises(ValueError, match="unknown variant"):
        bm.plan_from_dict(d, variants=["nope"])
    with pytest.raises(ValueError, match=r"out_dir.*\{seed\}"):
        bm.plan_from_dict({**d, "out_dir": "models/v3"})
    clash = {**d, "variants": {"x": {"sizes": ["toy-409k"], "direct_inworld_fraction": 0.5}}}
    with pytest.raises(ValueError, match=r"variants\.x\.out_dir.*also built by 'main'"):
        bm.plan_from_dict(clash)
    with pytest.raises(ValueError, match=r"variants\.y: base_models: unknown key"):
        bm.plan_from_dict({**d, "variants": {"y": {"out_dir": "m/y{seed}", "n_layer": 3}}})
    # a v2 profile without seeds plans what it always built: one build of run.seed into out_dir
    v2 = bm.plan_from_dict(bcli.config_from_profile("configs/base_models/v2_world.yaml"))
    assert [(n, c.seed, c.out_dir, c.recipe) for n, c in v2] == [("main", 0, "models", bm.RECIPE)]


@pytest.fixture(scope="module")
def tiny_v3(tmp_path_factory):
    """The v3 profile's recipe, one size, two seeds, 20 steps (seconds), built through the plan."""
    import time

    out = tmp_path_factory.mktemp("v3")
    d = bcli.config_from_profile(V3_PROFILE)
    d.update(sizes=["toy-66k"], seeds=[0, 1], out_dir=str(out / "seed{seed}"), max_steps=20, variants={},
             n_seed_contrastive=6, n_seed_copy=4, n_seed_direct=4, log_every=1, jobs=1, solve_batch=4, seed_batch=2,
             drill_batch=2, inject_batch=2)
    plan = bm.plan_from_dict(d)
    t0 = time.time()
    bm.build_many([c for _, c in plan])
    print(f"tiny v3 build, 2 seeds x toy-66k x 20 steps: {time.time() - t0:.1f} s")
    return out, d, plan


def test_tiny_v3_build_is_a_loadable_hf_dir_with_inject_batches(tiny_v3):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out, _, plan = tiny_v3
    for seed in (0, 1):
        m_dir = out / f"seed{seed}" / "toy-66k"
        assert is_current(m_dir, V3_VERSION) and not is_current(m_dir)
        m = AutoModelForCausalLM.from_pretrained(str(m_dir))
        assert type(m).__name__ == "Qwen2ForCausalLM"
        AutoTokenizer.from_pretrained(str(m_dir))
        info = json.loads((m_dir / "build_info.json").read_text())
        assert info["recipe_name"] == "v3" and info["steps"] == 20 and info["build_config"]["seed"] == seed
        # the shared tokenizer, copied, not trained with the build seed
        assert (out / f"seed{seed}" / "tokenizer" / "tokenizer.json").read_bytes() == \
            Path("models/tokenizer/tokenizer.json").read_bytes()
        # every step's logged loss is the batch kind the phase's mix drew (inject included): the mix is data
        log = json.loads((m_dir / "train_log.json").read_text())
        assert "loss_inject" in log[0] and len(log) == 20
        assert any(r["loss_inject"] is not None for r in log)  # both seeds draw inject steps in these 20
        cfg = plan[seed][1]
        for row, (ph, (lo, hi)) in [(r, next((p, b) for p, b in zip(cfg.recipe, cfg.phase_bounds(20))
                                              if b[0] < r["step"] <= b[1])) for r in log]:
            drawn = random.Random(f"{seed}/toy-66k/step{row['step'] - 1}").choices(bm.BATCH_KINDS, weights=ph.mix)[0]
            assert [k for k in bm.BATCH_KINDS if row[f"loss_{k}"] is not None] == [drawn]
    a, b = (json.loads((out / f"seed{s}" / "toy-66k" / "train_log.json").read_text()) for s in (0, 1))
    assert a != b  # the seeds are different builds


def test_cli_skips_a_current_v3_build(tiny_v3, tmp_path, capsys):
    import yaml

    out, d, _ = tiny_v3
    before = (out / "seed0" / "toy-66k" / "model.safetensors").stat().st_mtime_ns
    prof = tmp_path / "tiny_v3.yaml"
    prof.write_text(yaml.safe_dump({"world": {"arith": d["world"]}, "base_models": {
        k: v for k, v in d.items() if k not in ("world", "seed")}}))
    assert bcli.main_build_base_models(["--profile", str(prof), "--seeds", "0", "--variants"]) == 0
    assert (out / "seed0" / "toy-66k" / "model.safetensors").stat().st_mtime_ns == before
    assert "seed0/toy-66k: " in capsys.readouterr().out


def test_v3_bases_share_one_kv_head_and_v2_keeps_one_per_query_head():
    plan = bm.plan_from_dict(bcli.config_from_profile(V3_PROFILE))
    assert {c.kv_heads for _, c in plan} == {1}  # every seed and the variant
    assert bm.BuildConfig().kv_heads is None  # v2 (the committed models): one KV head per query head
    tok = _tok()
    spec = bm.SIZES["toy-66k"]
    assert bm.make_model(spec, tok, 0).config.num_key_value_heads == spec.heads
    mqa = bm.make_model(spec, tok, 0, kv_heads=1)
    assert mqa.config.num_key_value_heads == 1 and mqa.config.num_attention_heads == spec.heads
    assert bm.n_params(mqa) < bm.n_params(bm.make_model(spec, tok, 0))
    with pytest.raises(ValueError, match="kv_heads = 3: must divide toy-66k's 4 attention heads"):
        bm.make_model(spec, tok, 0, kv_heads=3)


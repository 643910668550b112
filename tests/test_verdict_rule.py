"""The switchable decode-time verdict rule (world.arith.verdict_rule) on the committed toy models."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from scrit_utils.core import config as study_config
from scrit_utils.generation import SamplingParams
from scrit_utils.generation.decode_hook import DecodeHook
from scrit_utils.generation.transformers_backend import TransformersBackend, load_tokenizer
from scrit_utils.pipeline import common, benchmark_eval as critic_eval
from scrit_utils.worlds import arith, arith_bench
from scrit_utils.toy_models import base_eval
from scrit_utils.worlds.arith import make_verdict_rule

from .tiny_lm import build_tiny_lm

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "toy-0.2m"
BENCH = ROOT / "data" / "toy_benchmarks_v1"  # the v1 world's benchmarks, where the v1 model lives
PAIR_VERDICT = re.compile(r"=(-?\d+)\|(-?\d+) (ok|wrong)")

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer(ROOT / "models" / "tokenizer")


def test_rule_reads_the_pair_just_written(tok):
    rule = make_verdict_rule("compared_values", tok)
    assert rule.verdict("### Critique of Step 4\n376+5=381|386") == rule.wrong_id
    assert rule.verdict("### Critique of Step 1\n48-17=31|31") == rule.ok_id
    assert rule.verdict("2-5=-3|-3") == rule.ok_id and rule.verdict("2-5=-3|3") == rule.wrong_id
    assert rule.verdict("=31|31 ok\n### Critique of Step 2\n") is None  # no pair has just ended
    assert rule.verdict("Values: 1:4 2:2") is None
    assert make_verdict_rule(None, tok) is None


def test_rule_as_a_decode_hook(tok):
    """Only live rows whose chosen token is a verdict word after a pair are set; the rest pass through."""
    rule = make_verdict_rule("compared_values", tok)
    assert isinstance(rule, DecodeHook)
    ok, wrong, other = rule.ok_id, rule.wrong_id, tok(" x", add_special_tokens=False)["input_ids"][0]
    tails = ["1+2=3|4", "1+2=3|3", "1+2=3|4", None, "no pair here"]
    tokens = [ok, ok, other, ok, wrong]
    assert rule(tokens, tails, None) == [wrong, ok, other, ok, wrong]
    assert tokens == [ok, ok, other, ok, wrong]  # the backend's list is left as it was
    assert rule.stats == {"verdicts": 2, "overridden": 1}
    assert rule([ok, wrong], ["1+2=3|3", "1+2=3|4"], None) is None  # nothing to change
    assert rule.stats == {"verdicts": 4, "overridden": 1}


def test_rule_errors_are_clear(tok, tmp_path):
    with pytest.raises(ValueError, match="unknown rule 'nope'"):
        make_verdict_rule("nope", tok)
    tiny = load_tokenizer(build_tiny_lm(tmp_path / "tiny"))  # a tokenizer where " wrong" is not one token
    with pytest.raises(ValueError, match="compared_values"):
        make_verdict_rule("compared_values", tiny)


def test_profile_rejects_rule_on_other_backends():
    cfg = study_config.load(ROOT / "configs" / "smoke.yaml",
                      overrides=["generation.backend=openai", "world.arith.verdict_rule=compared_values",
                                 "generation.base_url=http://localhost:1"])
    with pytest.raises(ValueError, match="decode rule 'compared_values' is implemented only by the transformers"):
        common.make_backend(cfg, cfg.models.critic, cache=False)


def test_rule_on_makes_every_written_verdict_match_its_pair():
    """Greedy critiques of 24 toy ProcessBench items: with the rule on, each verdict word agrees with
    the pair before it; with it off, the text is the model's own (the same as a backend without it)."""
    items = base_eval._eval_items("processbench", arith_bench.critique_items(BENCH)["processbench"])[:24]
    cfg = critic_eval.CriticEvalConfig(mode="contrastive", variant="compact",
                                       params=SamplingParams(max_new_tokens=arith_bench.CRITIQUE_MAX_NEW))
    plain = TransformersBackend(MODEL, batch_size=8)
    ruled = TransformersBackend.from_objects(plain.model, plain.tokenizer, batch_size=8,
                                             decode_hook=make_verdict_rule("compared_values", plain.tokenizer))
    own = [r["text"] for r in critic_eval.run_critiques(plain, items, cfg)]
    forced = [r["text"] for r in critic_eval.run_critiques(ruled, items, cfg)]
    pairs = [m.groups() for t in forced for m in PAIR_VERDICT.finditer(t)]
    stats = ruled.decode_hook.stats
    assert pairs and stats["verdicts"] >= len(pairs)
    assert all((a == b) == (v == arith.VERDICT_OK) for a, b, v in pairs)
    # texts differ exactly when the rule changed a verdict word
    assert (own != forced) == (stats["overridden"] > 0)
    assert plain.decode_hook is None


def test_base_model_table_reports_both_ways(tmp_path):
    be = TransformersBackend(MODEL, batch_size=16)
    r = base_eval.evaluate_base_model(MODEL, BENCH, n_solve=8, backend=be, n_items=12)
    for tag in ("noref", "ref"):
        for col in (f"pb_f1_{tag}", f"cc_mix_{tag}", f"cc_wrong_{tag}"):
            assert 0 <= r[col] <= 100 and 0 <= r[col + "_vr"] <= 100
    assert 0 <= r["vr_overridden"] <= 100
    assert be.decode_hook is None  # the caller's backend is left as it was
    base_eval.write_base_model_table([{**r, "n_params": 1}], tmp_path / "t")
    header = (tmp_path / "t.md").read_text().splitlines()[0]
    assert "pb_f1_ref_vr" in header and "vr_overridden" in header


@pytest.mark.slow
def test_notebook_00_reuses_complete_models_and_writes_the_table(tmp_path):
    """Notebook 00 under papermill: complete model dirs are not retrained; the table has both ways."""
    import shutil

    import papermill as pm

    from scrit_utils.driver import NOTEBOOK_DIR, to_notebook

    models = tmp_path / "models"
    for d in ("tokenizer", "toy-0.1m"):
        shutil.copytree(ROOT / "models" / d, models / d)
    before = (models / "toy-0.1m" / "model.safetensors").read_bytes()
    pm.execute_notebook(to_notebook(NOTEBOOK_DIR / "00_base_models.py"), str(tmp_path / "00.ipynb"),
                        parameters={"profile": "configs/toy.yaml", "models_dir": str(models), "sizes": ["toy-0.1m"],
                                    "bench_dir": str(BENCH), "n_solve": 4, "n_items": 4, "build": False,
                                    "table_stem": str(tmp_path / "table"), "torch_threads": 1},
                        kernel_name="python3", cwd=str(ROOT), progress_bar=False)
    assert (models / "toy-0.1m" / "model.safetensors").read_bytes() == before
    lines = (tmp_path / "table.csv").read_text().splitlines()
    assert len(lines) == 2 and lines[1].startswith("toy-0.1m,")
    assert "pb_f1_ref_vr" in lines[0] and "train_steps" in lines[0]

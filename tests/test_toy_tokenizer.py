"""The toy tokenizer: reproducible files, Qwen-like chat template, digits and markers as single tokens."""
from __future__ import annotations

import pytest

from scrit_utils.critique import prompts
from scrit_utils.toy_models.tokenizer import IM_END, PAD_TOKEN, build_tokenizer
from scrit_utils.worlds import arith


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tok") / "a"
    build_tokenizer(d, seed=0)
    return d


def test_same_seed_gives_identical_files(tok_dir, tmp_path):
    build_tokenizer(tmp_path / "b", seed=0)
    names = sorted(p.name for p in tok_dir.iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    assert "tokenizer.json" in names
    for n in names:
        assert (tok_dir / n).read_bytes() == (tmp_path / "b" / n).read_bytes(), n


def test_autotokenizer_chat_template_like_qwen(tok_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tok_dir))
    assert tok.eos_token == IM_END and tok.pad_token == PAD_TOKEN and tok.pad_token_id != tok.eos_token_id
    msgs = [{"role": "user", "content": "Solve.\nStart with 3. Add 4."}]
    text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert text == "<|im_start|>user\nSolve.\nStart with 3. Add 4.<|im_end|>\n<|im_start|>assistant\n"
    assert prompts.render_chat(tok, msgs) == text
    ids = tok.apply_chat_template(msgs, tokenize=True, add_generation_prompt=True)
    ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
    assert tok.decode(ids) == text


def test_digits_markers_and_verdicts_are_single_tokens(tok_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tok_dir))
    assert tok.tokenize("1234567890") == list("1234567890")
    for m in prompts.ALL_MARKERS + (" ok", " wrong"):
        assert len(tok(m, add_special_tokens=False)["input_ids"]) == 1, m
    p = arith.generate_problems(0, 1, "benchmark")[0]
    crit = arith.ground_truth_critique(p, arith.reference_solution(p).steps, with_reference=True)
    ids = tok(crit, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == crit  # lossless round trip

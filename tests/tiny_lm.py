"""A tiny random-init Qwen2 causal LM with a character-level chat tokenizer, saved as a real HF checkpoint.

Used by the generation tests (owner: Generation). It is a real ``Qwen2ForCausalLM`` and a real
``PreTrainedTokenizerFast`` with a Qwen-style chat template, loaded back through ``from_pretrained``
exactly like the toy world's committed models, so no part of the backend is mocked.

Usage::

    path = build_tiny_lm(tmp_path / "tiny")      # writes config, safetensors, tokenizer
    backend = TransformersBackend(path, batch_size=8)
"""
from __future__ import annotations

import string
from pathlib import Path

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIALS = ["<|pad|>", "<|im_start|>", "<|im_end|>", "<|endoftext|>"]


def build_tokenizer():
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = sorted(set(string.printable) - set("\x0b\x0c\r"))
    vocab = {tok: i for i, tok in enumerate(SPECIALS + ["<unk>"] + chars)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens(SPECIALS)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<|pad|>",
        eos_token="<|im_end|>",
        unk_token="<unk>",
        additional_special_tokens=["<|im_start|>", "<|endoftext|>"],
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_lm(out_dir: str | Path, hidden: int = 32, layers: int = 2, seed: int = 0, init_range: float = 0.3,
                  tokenizer: str = "char") -> Path:
    """Save a random-init Qwen2ForCausalLM + tokenizer to ``out_dir`` and return the path.

    ``tokenizer``: ``"char"`` (the character-level one above) or ``"toy"`` (the toy world's BPE).

    ``init_range`` is large on purpose: a peaked next-token distribution makes greedy ties
    (which float noise could flip) vanishingly unlikely, so equality tests are meaningful.
    """
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    out_dir = Path(out_dir)
    if tokenizer == "toy":  # the toy world's byte-level BPE (markers are single tokens)
        from scrit_utils.toy_models.tokenizer import build_tokenizer as build_toy

        tok = build_toy(None, seed=0)
    else:
        tok = build_tokenizer()
    cfg = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        initializer_range=init_range,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(cfg)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(out_dir, safe_serialization=True)
    tok.save_pretrained(out_dir)
    return out_dir


def critique_examples(n: int, seed: int = 0) -> list:
    """``n`` toy SFT examples (direct prompt -> the world's exact critique), alternating a wrong solution
    (one injected error) and a correct one: both labels, and completions of different lengths."""
    import random

    from scrit_utils.core.records import SFTExample
    from scrit_utils.worlds import arith

    out = []
    for i, p in enumerate(arith.generate_problems(seed, n, "train")):
        sol = arith.reference_solution(p) if i % 2 else arith.inject_error(p, random.Random(i))
        out.append(SFTExample(id=str(i), prompt=arith.direct_messages(p, sol.text),
                              completion=arith.ground_truth_critique(p, sol.steps), label_correct=bool(i % 2)))
    return out

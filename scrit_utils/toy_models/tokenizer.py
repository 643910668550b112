"""A small byte-level BPE tokenizer for the toy world, trained by the project.

- byte-level BPE (HF ``tokenizers``) trained on a corpus rendered from the arithmetic
  world (solve prompts/solutions, direct and contrastive critiques, drill lines);
- digits are always single tokens (``Digits(individual_digits=True)`` pre-tokenizer);
- every fixed marker in :data:`scrit_utils.critique.prompts.ALL_MARKERS` is one added token, and so are the
  step verdict words `` ok`` / `` wrong``;
- specials: ``<|endoftext|>`` (pad), ``<|im_start|>``, ``<|im_end|>`` (eos) and a
  Qwen-like chat template, so ``AutoTokenizer.from_pretrained(dir)`` and
  ``apply_chat_template(msgs, add_generation_prompt=True)`` behave as for Qwen.

The same seed (and vocab size) gives byte-identical tokenizer files.

Usage::

    from scrit_utils.toy_models.tokenizer import build_tokenizer
    tok = build_tokenizer("models/tokenizer", seed=0)     # PreTrainedTokenizerFast, saved to dir
    tok.apply_chat_template([{"role": "user", "content": "Solve.\\n..."}], tokenize=False,
                            add_generation_prompt=True)
"""
from __future__ import annotations

import random
from pathlib import Path

from scrit_utils.critique import prompts
from scrit_utils.worlds import arith

PAD_TOKEN = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = (PAD_TOKEN, IM_START, IM_END)
VERDICT_WORDS = (arith.VERDICT_OK, arith.VERDICT_WRONG)

CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def _render(messages: list[dict], completion: str | None = None) -> str:
    s = "".join(f"{IM_START}{m['role']}\n{m['content']}{IM_END}\n" for m in messages) + f"{IM_START}assistant\n"
    return s + (completion + IM_END if completion is not None else "")


def training_corpus(seed: int, n: int = 600, config: arith.ArithConfig | None = None) -> list[str]:
    """Texts the BPE merges are learned from (train-split problems only)."""
    cfg = config or arith.ArithConfig()
    probs = arith.generate_problems(seed, n, "train", cfg, stream="tokenizer-corpus")
    rng = random.Random(f"{seed}/tokenizer")
    texts = []
    for i, p in enumerate(probs):
        sol = arith.inject_error(p, rng) if i % 2 else arith.reference_solution(p)
        texts.append(_render(arith.solve_messages(p), p.reference_solution))
        texts.append(_render(arith.direct_messages(p, sol.text), arith.ground_truth_critique(p, sol.steps)))
        texts.append(
            _render(arith.contrastive_messages(p, sol.text), arith.ground_truth_critique(p, sol.steps, True))
        )
    texts += ["\n".join(a + b for a, b in arith.drill_lines(rng, 20, cfg)) for _ in range(20)]
    return texts


def train_tokenizer_object(seed: int = 0, vocab_size: int = 384, config: arith.ArithConfig | None = None):
    """The raw ``tokenizers.Tokenizer`` (BPE trained on :func:`training_corpus`)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers, AddedToken

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
        min_frequency=2,
    )
    tok.train_from_iterator(training_corpus(seed, config=config), trainer=trainer)
    # fixed markers as single (non-special, so they survive decode) tokens
    tok.add_tokens([AddedToken(m, normalized=False, special=False) for m in prompts.ALL_MARKERS])
    # the step verdict words of the recompute critique body, so a verdict is one prediction
    tok.add_tokens([AddedToken(" " + w, normalized=False, special=False) for w in VERDICT_WORDS])
    return tok


def build_tokenizer(out_dir: str | Path | None = None, seed: int = 0, vocab_size: int = 384,
                    config: arith.ArithConfig | None = None):
    """Train, wrap as ``PreTrainedTokenizerFast`` with the chat template, and save to ``out_dir``."""
    from transformers import PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(
        tokenizer_object=train_tokenizer_object(seed, vocab_size, config),
        eos_token=IM_END,
        pad_token=PAD_TOKEN,
        unk_token=None,
        bos_token=None,
        model_max_length=2048,
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
    tok.chat_template = CHAT_TEMPLATE
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        tok.save_pretrained(str(out_dir))
    return tok

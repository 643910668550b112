"""Padding-free SFT on CPU: TRL's ``padding_free`` batches with a per-example SDPA attention.

The study's SFT (:func:`scrit_utils.pipeline.training.make_trainer`) pads each batch of 32
examples to its longest one. On the toy critic a third of the tokens in a batch are padding, and
the attention, whose cost grows with the square of the padded length, takes about a third of a
step (stock SDPA gets the padding mask, so it cannot skip the causal upper triangle either).

The padding-free path trains the same examples in the same order with the same loss:

- TRL's own ``padding_free=True`` collator concatenates a batch's examples into one row (no
  padding) and passes their boundaries as ``cu_seq_lens_q``; the linear layers, norms and the
  loss see only real tokens;
- TRL's padding-free mode is meant for flash-attention kernels, which CPUs lack; the attention
  registered here (:data:`VARLEN_ATTENTION`, :func:`varlen_sdpa`) runs stock SDPA once per
  example, causal and unmasked, on that example's own length (its keys never see another
  example's), and no ``[tokens x tokens]`` mask is built (:func:`_no_mask`);
- the loss is the same mean over completion tokens: each example's first token (a prompt
  token, never in the loss) is where the previous example's last token would otherwise
  predict across the boundary, and TRL sets its label to -100.

With ``training.fused_lm_head: false`` as well, the trainer is :class:`UnfusedLossSFTTrainer`: TRL's
``SFTTrainer`` scores every position through its fused LM head (a chunked log-prob kernel that also computes each
position's entropy and top-1, made to spare a GPU the ``[tokens x vocab]`` logits); on the toy critic's 399-token
vocabulary the logits are small, and the loss from them (log-softmax of the completion positions only) is the same
mean over completion tokens, to float rounding, in less time (``scripts/bench_sft.py --candidates unfused-loss``).

TRL does not truncate in padding-free mode without packing (it refuses a ``max_length``), so
:func:`usable` checks that no example is longer than ``training.max_length`` (the study's never
are: about 250 of 512 tokens); otherwise the study keeps the padded trainer.
``scripts/bench_sft.py`` compares the two paths' losses and speed.

The study takes it with ``training.padding_free: true`` in a profile (TRL's ``SFTConfig`` name):
:func:`scrit_utils.pipeline.training.make_trainer` then calls :func:`usable` and :func:`apply`.

Usage::

    trainer, tok = training.make_trainer(cfg, st, examples)       # cfg with training.padding_free: true
    trainer.train()
"""
from __future__ import annotations

from typing import Sequence

import torch

__all__ = ["VARLEN_ATTENTION", "varlen_sdpa", "register_varlen_attention", "fits_max_length", "usable", "apply",
           "trainer_class"]

VARLEN_ATTENTION = "scrit_varlen_sdpa"


SPLIT = True  # split (one cat in backward) measured faster than slices (a zero-fill each in backward)


def varlen_sdpa(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None,
                cu_seq_lens_q=None, **kwargs):
    """Causal SDPA per packed example (boundaries ``cu_seq_lens_q``); else transformers' stock SDPA.

    ``query`` ``[1, heads, tokens, dim]``, ``key``/``value`` ``[1, kv_heads, tokens, dim]``;
    returns ``[1, tokens, heads, dim]`` like the stock attention functions.
    """
    from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward

    if cu_seq_lens_q is None or query.shape[0] != 1:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    groups = query.shape[1] // key.shape[1]
    if groups > 1:
        key, value = repeat_kv(key, groups), repeat_kv(value, groups)
    bounds = cu_seq_lens_q.tolist()
    if bounds[-1] != query.shape[2]:
        raise RuntimeError(f"cu_seq_lens_q ends at {bounds[-1]}, the packed row has {query.shape[2]} tokens")
    drop = dropout if module.training else 0.0
    lengths = [b - a for a, b in zip(bounds[:-1], bounds[1:])]
    if SPLIT:
        qs, ks, vs = (t.split(lengths, dim=2) for t in (query, key, value))
    else:
        qs, ks, vs = ([t[:, :, a:b] for a, b in zip(bounds[:-1], bounds[1:])] for t in (query, key, value))
    parts = [torch.nn.functional.scaled_dot_product_attention(q, k, v, dropout_p=drop, scale=scaling, is_causal=True)
             for q, k, v, n in zip(qs, ks, vs, lengths) if n > 0]
    return torch.cat(parts, dim=2).transpose(1, 2).contiguous(), None


def _no_mask(*args, **kwargs):
    """No 4-d mask for :func:`varlen_sdpa` (it is causal per example by construction)."""
    return None


def register_varlen_attention() -> None:
    """Register :func:`varlen_sdpa` and its (absent) mask under :data:`VARLEN_ATTENTION`."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(VARLEN_ATTENTION, varlen_sdpa)
    AttentionMaskInterface.register(VARLEN_ATTENTION, _no_mask)


def fits_max_length(examples, tokenizer, max_length: int | None) -> bool:
    """Whether every example's prompt + completion, as TRL tokenizes it, has at most ``max_length`` tokens."""
    if max_length is None:
        return True
    for ex in examples:
        msgs = list(ex.prompt) + [{"role": "assistant", "content": ex.completion}]
        ids = tokenizer.apply_chat_template(msgs, tokenize=True, return_dict=False)
        if hasattr(ids, "keys"):  # a BatchEncoding
            ids = ids["input_ids"]
        if len(ids) > max_length:
            return False
    return True


def usable(cfg, examples: Sequence, tokenizer) -> bool:
    """Whether the padding-free path is exact here: full fine-tuning in float32 on CPU (LoRA, bf16 and GPU runs
    keep the padded trainer; on a GPU flash attention is the better padding-free kernel) and no example longer
    than ``training.max_length`` (TRL does not truncate padding-free batches)."""
    t = cfg.training
    return (not t.use_lora and not t.bf16 and not torch.cuda.is_available()
            and fits_max_length(examples, tokenizer, t.max_length))


def apply(model, args) -> None:
    """Switch a study trainer's model and ``SFTConfig`` to the padding-free path (after :func:`usable`)."""
    register_varlen_attention()
    model.set_attn_implementation(VARLEN_ATTENTION)
    args.padding_free = True
    args.max_length = None  # checked by fits_max_length instead


def trainer_class(cfg):
    """The SFTTrainer class for a padding-free run: :class:`UnfusedLossSFTTrainer` with ``training.fused_lm_head:
    false``, else TRL's own."""
    from trl import SFTTrainer

    return SFTTrainer if cfg.training.fused_lm_head else _unfused_class()


def _unfused_class():
    from trl import SFTTrainer

    class UnfusedLossSFTTrainer(SFTTrainer):
        """TRL's SFTTrainer with the training loss taken from the model's logits (see the module docstring); the
        metrics TRL logs (entropy, mean_token_accuracy, num_tokens) are computed on the same positions."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if not model.training:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            labels = inputs["labels"][:, 1:]  # position t predicts token t+1
            out = model(**{k: v for k, v in inputs.items() if k != "labels"}, use_cache=False)
            mask = labels != -100
            logits = out.logits[:, :-1][mask].float()
            target = labels[mask]
            logp = torch.log_softmax(logits, dim=-1)
            nll = -logp.gather(1, target[:, None]).squeeze(1)
            n = mask.sum() if num_items_in_batch is None else num_items_in_batch
            loss = nll.sum() / torch.as_tensor(n).clamp(min=1)
            with torch.no_grad():
                valid = max(int(mask.sum()), 1)
                metrics = self._metrics["train"]
                metrics["entropy"].append(float(-(logp.exp() * logp).sum()) / valid)
                metrics["mean_token_accuracy"].append(float((logits.argmax(-1) == target).sum()) / valid)
                if "position_ids" in inputs:  # padding-free: one row of every example's tokens
                    self._total_train_tokens += inputs["position_ids"].size(1)
                else:
                    self._total_train_tokens += int(inputs["attention_mask"].sum())
                metrics["num_tokens"] = [self._total_train_tokens]
            return (loss, out) if return_outputs else loss

    return UnfusedLossSFTTrainer

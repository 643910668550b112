"""Loading a checkpoint for in-process generation: device, dtype, tokenizer, model, end-of-sequence ids.

Shared by :class:`~scrit_utils.generation.transformers_backend.TransformersBackend`, the naive
baseline (:mod:`~scrit_utils.generation.naive_backend`) and the vLLM backend (which uses
:func:`load_tokenizer` only). A checkpoint is a local directory or a hub id (``from_pretrained``
either way); ``trust_remote_code`` stays off unless the caller asks for it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import torch

from scrit_utils.generation.base import GenerationRequest, SamplingParams

__all__ = ["resolve_device", "resolve_dtype", "load_tokenizer", "load_model"]

_GENERIC_TOKENIZER_CLASSES = {"TokenizersBackend", "PreTrainedTokenizerFast"}


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> cuda when available, else cpu; anything else is passed to ``torch.device``."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    return dev


def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    """``"auto"`` -> float32 on CPU, bfloat16 on a GPU that supports it (else float16)."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    names = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float16": torch.float16, "fp16": torch.float16}
    if dtype not in names:
        raise ValueError(f"unknown dtype {dtype!r}; expected auto | {' | '.join(names)}")
    return names[dtype]


def _declared_tokenizer_class(model: str | Path, revision: str | None) -> str | None:
    local = Path(model) / "tokenizer_config.json"
    if local.is_file():
        try:
            return json.loads(local.read_text(encoding="utf-8")).get("tokenizer_class")
        except json.JSONDecodeError as e:
            raise ValueError(f"{local}: malformed JSON ({e})") from None
    if Path(model).exists():
        return None
    try:  # hub id: the same file, through the hub cache
        from transformers.models.auto.tokenization_auto import get_tokenizer_config

        return get_tokenizer_config(str(model), revision=revision).get("tokenizer_class")
    except Exception:  # noqa: BLE001 - fall back to AutoTokenizer's own resolution
        return None


def load_tokenizer(model: str | Path, trust_remote_code: bool = False, revision: str | None = None):
    """Load a checkpoint's tokenizer, honouring a generic ``tokenizer_class`` in its config.

    ``AutoTokenizer`` in transformers 5 replaces the declared class with the model type's
    own class for some model types (``qwen2`` among them), which rebuilds a custom
    ``tokenizer.json`` (e.g. a character-level toy tokenizer) as Qwen's byte-level BPE and
    silently changes the encoding. A checkpoint that declares the generic fast class is
    therefore loaded with that class directly; everything else goes through AutoTokenizer.
    """
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    declared = _declared_tokenizer_class(model, revision)
    if declared in _GENERIC_TOKENIZER_CLASSES:
        tok = PreTrainedTokenizerFast.from_pretrained(str(model), revision=revision)
    else:
        tok = AutoTokenizer.from_pretrained(str(model), trust_remote_code=trust_remote_code, revision=revision)
    if getattr(tok, "chat_template", None) is None:
        raise ValueError(f"tokenizer of {model} has no chat_template; the generation backends render chats with it")
    return tok


def load_model(model: str | Path, device: torch.device, dtype: torch.dtype, trust_remote_code: bool = False,
               revision: str | None = None, attn_implementation: str | None = None):
    """``AutoModelForCausalLM.from_pretrained`` in ``dtype``, moved to ``device``, in eval mode."""
    from transformers import AutoModelForCausalLM

    kw = {"dtype": dtype, "trust_remote_code": trust_remote_code, "revision": revision}
    if attn_implementation:
        kw["attn_implementation"] = attn_implementation
    m = AutoModelForCausalLM.from_pretrained(str(model), **kw)
    return m.to(device).eval()


def _eos_ids(tokenizer, model) -> frozenset[int]:
    ids: set[int] = set()
    for src in (getattr(tokenizer, "eos_token_id", None), getattr(getattr(model, "generation_config", None),
                                                                     "eos_token_id", None)):
        if src is None:
            continue
        ids.update([src] if isinstance(src, int) else list(src))
    if not ids:
        raise ValueError("neither the tokenizer nor the model's generation_config defines an eos token id")
    return frozenset(ids)


def _validate(requests: Sequence[GenerationRequest], params: SamplingParams) -> None:
    """Reject what neither backend can generate (no messages, ``max_new_tokens < 1``, ``top_p`` outside (0, 1])."""
    if params.max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {params.max_new_tokens}")
    if not params.greedy and not (0.0 < params.top_p <= 1.0):
        raise ValueError(f"top_p must be in (0, 1], got {params.top_p}")
    for i, r in enumerate(requests):
        if not r.messages:
            raise ValueError(f"request {i} (id={r.id!r}) has no messages")

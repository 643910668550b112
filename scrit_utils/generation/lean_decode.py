"""A lean decode step for pre-norm rotary decoders (Qwen2 and alike) on the head-major KV cache.

For a one-token decode step on CPU, transformers' per-module dispatch, output capturing and
mask building cost about as much as the arithmetic. :func:`_lean_decode_step` does the same
operations, in the same order and on the same weights, as the model's own forward with
:func:`~scrit_utils.generation.kv_cache._kv_cache_attention` (the logits are bitwise equal),
without that plumbing.

Which models get it is decided by what they are made of, not by their class name
(:func:`_supports_lean_decode`): the modules and settings the step uses must be there, and
nothing the step would skip. Because an architecture can differ inside a module's
``forward`` in ways no attribute shows (Gemma scales its embeddings in code), the backend also
runs both paths once on a tiny batch and keeps the lean step only if their logits are bitwise
equal (:func:`_lean_decode_matches`).

Usage (what :class:`~scrit_utils.generation.transformers_backend.TransformersBackend` does)::

    if _supports_lean_decode(model) and _lean_decode_matches(model):
        logits = _lean_decode_step(model, tokens, positions, cache, mask)  # per decode step
"""
from __future__ import annotations

import inspect
import weakref

import torch

from scrit_utils.generation.kv_cache import KV_CACHE_ATTENTION, _attend, _attention_implementation, _make_cache, _padding_bias

__all__: list[str] = []

# the step's parts, exactly: an extra part (Qwen3's q/k norms, Gemma 2's feed-forward norms, a
# per-layer scale module) is arithmetic the lean step would leave out
_BACKBONE_PARTS = frozenset({"embed_tokens", "layers", "norm", "rotary_emb"})
_DECODER_PARTS = frozenset({"self_attn", "mlp", "input_layernorm", "post_attention_layernorm"})
_ATTENTION_PARTS = frozenset({"q_proj", "k_proj", "v_proj", "o_proj"})
# config settings that change the forward without changing its modules (soft-capping, Granite's
# multipliers, Cohere's logit scale, partial rotary); the step supports only their neutral values
_NEUTRAL_SETTINGS = {"final_logit_softcapping": (None,), "attn_logit_softcapping": (None,),
                     "embedding_multiplier": (None, 1.0), "residual_multiplier": (None, 1.0),
                     "logits_scaling": (None, 1.0), "logit_scale": (None, 1.0),
                     "partial_rotary_factor": (None, 1.0), "pretraining_tp": (None, 1),
                     "use_sliding_window": (None, False)}


def _parts(module) -> frozenset[str]:
    return frozenset(name for name, _ in module.named_children())


def _is_norm(module) -> bool:
    """An RMSNorm-style norm: a module with a per-channel ``weight`` (its own forward is called)."""
    w = getattr(module, "weight", None)
    return isinstance(w, torch.Tensor) and w.dim() == 1


def _layer_supported(layer) -> bool:
    if _parts(layer) != _DECODER_PARTS:
        return False
    if not (_is_norm(layer.input_layernorm) and _is_norm(layer.post_attention_layernorm)):
        return False
    attn = layer.self_attn
    return (_parts(attn) == _ATTENTION_PARTS
            and all(isinstance(getattr(attn, p), torch.nn.Linear) for p in _ATTENTION_PARTS)
            and isinstance(getattr(attn, "head_dim", None), int) and isinstance(getattr(attn, "scaling", None), float)
            and getattr(attn, "is_causal", True) and getattr(attn, "sliding_window", None) is None)


def _supports_lean_decode(model) -> bool:
    """Whether the model has what :func:`_lean_decode_step` runs, and nothing it would skip.

    That is a causal LM with a linear ``lm_head`` over ``model.model``, whose parts are exactly
    an ``embed_tokens`` embedding, a rotary embedding ``rotary_emb`` (called as
    ``rotary_emb(x, positions) -> (cos, sin)``), a ``layers`` list and a final ``norm``; every
    layer is exactly ``input_layernorm`` -> ``self_attn`` (linear ``q/k/v/o_proj``, ``head_dim``,
    ``scaling``, causal, no sliding window) -> residual -> ``post_attention_layernorm`` -> ``mlp``
    -> residual, with RMSNorm-style norms; every layer type is full attention and the config has
    no soft-capping, multipliers or partial rotary. The toy models, Qwen2.5 and Llama-style
    checkpoints pass; Qwen3 (q/k norms) and Gemma 2 (extra norms) do not.
    """
    inner, head = getattr(model, "model", None), getattr(model, "lm_head", None)
    if not isinstance(head, torch.nn.Linear) or not isinstance(inner, torch.nn.Module):
        return False
    if _parts(inner) != _BACKBONE_PARTS:
        return False
    if not (isinstance(inner.embed_tokens, torch.nn.Embedding) and isinstance(inner.layers, torch.nn.ModuleList)
            and len(inner.layers) > 0 and _is_norm(inner.norm) and callable(inner.rotary_emb)):
        return False
    cfg = model.config
    if any(getattr(cfg, key, None) not in ok for key, ok in _NEUTRAL_SETTINGS.items()):
        return False
    if not all(t == "full_attention" for t in (getattr(cfg, "layer_types", None) or ["full_attention"])):
        return False
    return all(_layer_supported(layer) for layer in inner.layers)


_MATCHES: "weakref.WeakKeyDictionary[torch.nn.Module, bool]" = weakref.WeakKeyDictionary()


@torch.inference_mode()
def _lean_decode_matches(model, steps: int = 2) -> bool:
    """Run the model's own forward and :func:`_lean_decode_step` on a tiny padded batch; True if bitwise equal.

    Two rows (one left-padded), a prefill and ``steps`` decode steps on two head-major caches.
    The answer is remembered per model. Needs the head-major attention registered
    (:func:`~scrit_utils.generation.kv_cache._register_kv_cache_attention`).
    """
    if model not in _MATCHES:
        dev = model.lm_head.weight.device
        vocab = model.lm_head.out_features
        ids = (torch.arange(10, device=dev).reshape(2, 5) * 7 + 1) % vocab
        mask = torch.ones_like(ids)
        mask[1, :2] = 0  # the second row is a 3-token prompt behind two pads
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        cache_kw = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        caches = [_make_cache(model, 5 + steps + 1, head_major=True) for _ in range(2)]
        with _attention_implementation(model, KV_CACHE_ATTENTION):
            own = [model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True, logits_to_keep=1,
                         **{cache_kw: c}).logits[:, -1] for c in caches]
            equal, nxt = torch.equal(own[0], own[1]), pos[:, -1:] + 1
            for _ in range(steps):
                tok = own[0].argmax(-1)
                mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
                own = [model(input_ids=tok[:, None], attention_mask=mask, position_ids=nxt, use_cache=True,
                             logits_to_keep=1, **{cache_kw: caches[0]}).logits[:, -1],
                       _lean_decode_step(model, tok, nxt, caches[1], mask)]
                equal, nxt = equal and torch.equal(own[0], own[1]), nxt + 1
        for cache in caches:
            for layer in cache.layers:
                if hasattr(layer, "release"):
                    layer.release()
        _MATCHES[model] = equal
    return _MATCHES[model]


def _lean_decode_step(model, tokens: torch.Tensor, positions: torch.Tensor, cache, mask: torch.Tensor,
                      blocks: list[tuple[int, int, int]] | None = None) -> torch.Tensor:
    """One decode step of a Qwen2-style model over :class:`_HeadMajorLayer` caches; returns ``[batch, vocab]`` logits.

    Only for a model that passes :func:`_supports_lean_decode` (and :func:`_lean_decode_matches`).

    The same operations, in the same order and on the same weights, as the model's own
    forward with :func:`_kv_cache_attention` (a test checks the logits are bitwise equal),
    without the per-module dispatch, output capturing and mask building that cost about
    as much as the arithmetic for a one-token step on CPU. ``mask`` is the 2-d padding mask
    including the new token; ``blocks`` as :func:`~scrit_utils.generation.kv_cache._attend` takes them.
    """
    from transformers.models.qwen2.modeling_qwen2 import apply_rotary_pos_emb

    inner = model.model
    b = tokens.shape[0]
    x = inner.embed_tokens(tokens[:, None])
    cos, sin = inner.rotary_emb(x, positions)
    bias = None
    for i, layer in enumerate(inner.layers):
        attn = layer.self_attn
        residual = x
        h = layer.input_layernorm(x)
        shape = (b, 1, -1, attn.head_dim)
        q = attn.q_proj(h).view(shape).transpose(1, 2)
        k = attn.k_proj(h).view(shape).transpose(1, 2)
        v = attn.v_proj(h).view(shape).transpose(1, 2)
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        keys, values = cache.layers[i].update(k, v)
        if bias is None:  # the same for every layer
            bias = _padding_bias(mask.bool(), q)
        out = _attend(q * attn.scaling, keys, values, bias, blocks).reshape(b, 1, -1)
        x = residual + attn.o_proj(out)
        x = x + layer.mlp(layer.post_attention_layernorm(x))
    x = inner.norm(x)
    return model.lm_head(x[:, -1, :])

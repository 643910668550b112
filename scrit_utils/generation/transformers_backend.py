"""In-process generation with Hugging Face transformers: batched, left-padded, KV-cached, seed-per-item.

:class:`TransformersBackend` implements the :class:`~scrit_utils.generation.base.Backend`
protocol with its own incremental decoding loop over the model's ``forward`` and a
``DynamicCache``, rather than ``model.generate``. The reason is reproducibility: every
request carries its own seed, and the random number used to sample token ``t`` of a
request is a pure function of ``(seed, t)`` (a counter-based hash, see
:func:`counter_uniform`). So the text generated for a request does not depend on which
other requests share its batch, on the batch size, or on whether the run was resumed.
Greedy decoding is plain argmax.

How a call runs:

1. each request's messages are rendered with the tokenizer's chat template
   (:func:`scrit_utils.prompts.render_chat`) and tokenized without extra special tokens;
2. requests are sorted by prompt length (longest first) and cut into batches of at most
   ``batch_size`` rows and ``max_batch_tokens`` (rows x (longest prompt + max_new_tokens));
3. a batch is left-padded; position ids come from the attention mask, so a row's
   positions start at 0 whatever its padding; one prefill ``forward`` fills the cache,
   then one ``forward`` per new token;
4. a row stops at an end-of-sequence id or when its text contains a stop string; finished
   rows are dropped from the batch (and the cache) once they are a quarter of it;
5. optional, off by default (``verdict_rule``, toy world only): when a row's next token is a step
   verdict word right after a compared pair, :func:`make_verdict_rule`'s rule picks the word
   from the pair (see :class:`scrit_utils.worlds.arith.ComparedValuesVerdictRule`);
6. texts are decoded without special tokens, cut at the first stop string, and returned
   in request order.

The KV cache is transformers' ``DynamicCache`` with its layers swapped for buffers
preallocated to ``longest prompt + max_new_tokens`` (see :func:`_make_cache`): the stock
layer concatenates every step, and on CPU those allocations (tens of MB, above glibc's
mmap threshold at batch 256) cost more system time than the model itself. On CPU the
buffers are also *block-major* (``kv_block_size``, default 32 tokens; see
:class:`_BlockedLayer`): decoding one token reads the whole cache, and a batched matmul
over contiguous blocks reads it about twice as fast as SDPA over a strided view of one
long buffer. The matching attention (:func:`_kv_block_attention`, registered with
transformers' ``AttentionInterface``) is switched on only for the duration of a call;
the prompt's prefill still runs through stock SDPA, in chunks of ``prefill_rows`` rows each
cut to its own longest prompt. For a plain Qwen2 model the decode steps then skip
transformers' module plumbing (:func:`_lean_decode_step`: the same operations on the same
weights, bitwise-equal logits), and the cache storages of one call are pooled across its
batches. Together these took the benchmark on toy-0.6m from 13.9x to 21-22x the naive loop.

:class:`NaiveTransformersBackend` is the slow reference: one prompt at a time through
``model.generate``. The benchmark (``scripts/bench_generation.py``) and the tests compare
the two.

Usage::

    from scrit_utils.generation import GenerationRequest, SamplingParams, derive_seed
    from scrit_utils.generation.transformers_backend import TransformersBackend

    backend = TransformersBackend("models/toy-0.5m", device="cpu", batch_size=256)
    reqs = [GenerationRequest(id=i, messages=m, seed=derive_seed(7, "critique", i, 0)) for i, m in items]
    texts = backend.generate(reqs, SamplingParams(max_new_tokens=300, temperature=0.7))

Loading accepts a local checkpoint directory or a hub id (``from_pretrained`` either way);
``trust_remote_code`` stays off unless the caller asks for it.
"""
from __future__ import annotations

import contextlib
import inspect
import json
from pathlib import Path
from typing import Sequence

import torch

from .. import prompts
from .base import GenerationRequest, SamplingParams, truncate_at_stop

__all__ = [
    "TransformersBackend",
    "NaiveTransformersBackend",
    "load_tokenizer",
    "load_model",
    "counter_uniform",
    "resolve_device",
    "resolve_dtype",
]

_MASK32 = 0xFFFFFFFF
_GENERIC_TOKENIZER_CLASSES = {"TokenizersBackend", "PreTrainedTokenizerFast"}


# --- loading ----------------------------------------------------------------------
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


# --- counter-based randomness --------------------------------------------------------
def _mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    """(x * c) mod 2**32 for 32-bit values held in int64, without int64 overflow."""
    lo, hi = c & 0xFFFF, c >> 16
    return (x * lo + (((x * hi) & 0xFFFF) << 16)) & _MASK32


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer finaliser (xorshift-multiply, "lowbias32" constants)."""
    x = x & _MASK32
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def counter_uniform(seeds: torch.Tensor, step: int) -> torch.Tensor:
    """One uniform [0, 1) float64 per seed, a pure function of (seed, step); 53 random bits.

    Computed on the CPU with integer ops only, so the same (seed, step) gives the same
    number on every machine and device, whatever else is in the batch.
    """
    s = seeds.to(device="cpu", dtype=torch.int64)
    key = _mix32(s + 0x9E3779B9)
    a = _mix32(key ^ _mix32(torch.full_like(s, 2 * step)))
    b = _mix32(key ^ _mix32(torch.full_like(s, 2 * step + 1)) ^ 0x68E31DA4)
    return ((a << 21) | (b >> 11)).to(torch.float64) / float(1 << 53)


def _sample(logits: torch.Tensor, seeds: torch.Tensor, step: int, params: SamplingParams) -> torch.Tensor:
    """Next token per row: argmax when greedy, else inverse-CDF sampling with a per-row uniform."""
    if params.greedy:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / params.temperature, dim=-1).double()
    if params.top_p < 1.0:
        probs, order = torch.sort(probs, dim=-1, descending=True, stable=True)
        before = probs.cumsum(dim=-1) - probs  # mass strictly above each token
        probs = probs.masked_fill(before >= params.top_p, 0.0)  # the top token always stays
    else:
        order = None
    cdf = probs.cumsum(dim=-1)
    u = counter_uniform(seeds, step).to(cdf.device) * cdf[:, -1]
    idx = torch.searchsorted(cdf, u.unsqueeze(-1), right=True).clamp_(max=cdf.shape[-1] - 1)
    # never land on a zero-probability token (u == cdf boundary at the tail)
    idx = torch.where(probs.gather(-1, idx) > 0, idx, (probs > 0).cumsum(-1).argmax(-1, keepdim=True))
    tok = idx if order is None else order.gather(-1, idx)
    return tok.squeeze(-1)


def make_verdict_rule(name: str | None, tokenizer):
    """The decode-time verdict rule named by ``generation.verdict_rule`` (None = off).

    Rules are world-specific (the toy world's :class:`~scrit_utils.worlds.arith.ComparedValuesVerdictRule`);
    an unknown name is an error that lists the known ones.
    """
    if not name:
        return None
    from ..worlds.arith import VERDICT_RULES

    if name not in VERDICT_RULES:
        raise ValueError(f"generation.verdict_rule: unknown rule {name!r}; known: {sorted(VERDICT_RULES)} or null")
    return VERDICT_RULES[name](tokenizer)


def _validate(requests: Sequence[GenerationRequest], params: SamplingParams) -> None:
    if params.max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {params.max_new_tokens}")
    if not params.greedy and not (0.0 < params.top_p <= 1.0):
        raise ValueError(f"top_p must be in (0, 1], got {params.top_p}")
    for i, r in enumerate(requests):
        if not r.messages:
            raise ValueError(f"request {i} (id={r.id!r}) has no messages")


# --- a preallocated KV cache -------------------------------------------------------------
def _make_cache(model, capacity: int, block_size: int = 0, pool: list | None = None):
    """A ``DynamicCache`` whose plain layers write into buffers preallocated for ``capacity`` tokens.

    ``DynamicCache`` grows by ``torch.cat`` every step: a fresh allocation of the whole
    cache per token and layer, which on CPU (tens of MB per batch, above glibc's mmap
    threshold) turns into page-fault storms. Writing into one buffer per layer and
    returning a view of the filled part avoids that; sliding-window or other special
    layers keep transformers' own implementation. ``block_size > 0`` gives block-major
    buffers (:class:`_BlockedLayer`), read by :func:`_kv_block_attention`.
    """
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    try:
        cache = DynamicCache(config=model.config)
    except TypeError:  # older transformers without the config argument
        cache = DynamicCache()
    layers = getattr(cache, "layers", None)
    if layers and all(type(layer) is DynamicLayer for layer in layers):
        if block_size > 0:
            cache.layers = [_BlockedLayer(capacity, block_size, pool) for _ in layers]
        else:
            cache.layers = [_PreallocatedLayer(capacity) for _ in layers]
    return cache


try:
    from transformers.cache_utils import DynamicLayer as _DynamicLayer
except ImportError:  # pragma: no cover - older transformers: plain DynamicCache is used
    _DynamicLayer = object


class _PreallocatedLayer(_DynamicLayer):
    """A cache layer over a fixed-capacity buffer; ``keys``/``values`` are views of the filled part."""

    def __init__(self, capacity: int):
        super().__init__()
        self.capacity = capacity
        self.length = 0

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        b, h, _, d = key_states.shape
        self.device = key_states.device
        self.kbuf = key_states.new_empty((b, h, self.capacity, d))
        self.vbuf = value_states.new_empty((b, h, self.capacity, value_states.shape[-1]))
        self.length = 0
        self.is_initialized = True

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        n = key_states.shape[-2]
        end = self.length + n
        if end > self.capacity:
            raise RuntimeError(f"KV cache capacity {self.capacity} exceeded ({end} tokens)")
        self.kbuf[:, :, self.length:end] = key_states
        self.vbuf[:, :, self.length:end] = value_states
        self.length = end
        self.keys, self.values = self.kbuf[:, :, :end], self.vbuf[:, :, :end]
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length if self.is_initialized else 0

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if self.is_initialized:
            self.kbuf, self.vbuf = self.kbuf[indices], self.vbuf[indices]
            self.keys, self.values = self.kbuf[:, :, :self.length], self.vbuf[:, :, :self.length]

    def crop(self, tokens_to_remove: int) -> None:  # not used by the backend
        raise NotImplementedError("the generation backend's cache is never cropped")

    def batch_repeat_interleave(self, repeats: int) -> None:  # not used by the backend
        raise NotImplementedError

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:  # not used by the backend
        raise NotImplementedError


class _BlockedLayer(_PreallocatedLayer):
    """A cache layer stored block-major: ``[n_blocks, batch, kv_heads, block_size, head_dim]``.

    Token ``t`` lives in block ``t // block_size``, so the filled part is the leading
    ``ceil(length / block_size)`` blocks: one contiguous tensor, which a batched matmul reads
    at full memory bandwidth (a ``[:length]`` view of a ``[batch, heads, capacity, dim]``
    buffer is strided, and CPU matmuls read it about half as fast). ``update`` returns the
    new states themselves on the first call (the prefill, which stock SDPA attends over)
    and the 5-d filled blocks afterwards, which only :func:`_kv_block_attention` accepts.
    Blocks are zeroed before their first write so the unwritten tail of the last block is
    finite (the attention masks it; masked garbage could still be NaN * 0).
    """

    def __init__(self, capacity: int, block_size: int, pool: list | None = None):
        super().__init__(capacity)
        self.block_size = block_size
        self.n_blocks = -(-capacity // block_size)
        self.zeroed = 0  # blocks [0, zeroed) hold written or zeroed slots only
        self.prefill_rows: tuple[int, int, int, int] | None = None  # (row0, row1, first slot, batch rows)
        # flat storages: the pool they come from and go back to, the live k/v ones, the spares for pruning
        self.pool = [] if pool is None else pool
        self._flats: dict[str, torch.Tensor | None] = {"k": None, "v": None, "k_spare": None, "v_spare": None}

    def _take(self, numel: int, like: torch.Tensor) -> torch.Tensor:
        """A flat storage of at least ``numel`` elements: from the pool (already mapped memory) or new."""
        for i, flat in enumerate(self.pool):
            if flat.numel() >= numel and flat.dtype == like.dtype and flat.device == like.device:
                return self.pool.pop(i)
        return like.new_empty(numel)

    def release(self) -> None:
        """Give the storages back to the pool (the next batch of the same call reuses them); the layer is spent."""
        self.pool.extend(f for f in self._flats.values() if f is not None)
        self._flats = dict.fromkeys(self._flats)
        self.kbuf = self.vbuf = None
        self.is_initialized = False

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor, rows: int | None = None) -> None:
        b, h, _, d = key_states.shape
        b = b if rows is None else rows
        self.device = key_states.device
        shape = (self.n_blocks, b, h, self.block_size, d)
        numel = self.n_blocks * b * h * self.block_size * d
        self._flats["k"], self._flats["v"] = self._take(numel, key_states), self._take(numel, value_states)
        self.kbuf = self._flats["k"][:numel].view(shape)
        self.vbuf = self._flats["v"][:numel].view(shape)
        self.length = self.zeroed = 0
        self.is_initialized = True

    def _write(self, key_states: torch.Tensor, value_states: torch.Tensor, start: int, rows: slice) -> None:
        end = start + key_states.shape[-2]
        if end > self.n_blocks * self.block_size:
            raise RuntimeError(f"KV cache capacity {self.capacity} exceeded ({end} tokens)")
        last = (end - 1) // self.block_size
        if last >= self.zeroed:
            self.kbuf[self.zeroed:last + 1].zero_()
            self.vbuf[self.zeroed:last + 1].zero_()
            self.zeroed = last + 1
        t = start
        while t < end:
            block, offset = divmod(t, self.block_size)
            m = min(self.block_size - offset, end - t)
            self.kbuf[block, rows, :, offset:offset + m] = key_states[:, :, t - start:t - start + m]
            self.vbuf[block, rows, :, offset:offset + m] = value_states[:, :, t - start:t - start + m]
            t += m

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if self.prefill_rows is not None:  # one chunk of a chunked prefill: rows row0:row1, right-aligned
            row0, row1, first, batch = self.prefill_rows
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states, rows=batch)
            self._write(key_states, value_states, first, slice(row0, row1))
            return key_states, value_states
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        start = self.length
        self._write(key_states, value_states, start, slice(None))
        self.length = start + key_states.shape[-2]
        if start == 0:
            return key_states, value_states
        nb = -(-self.length // self.block_size)
        return self.kbuf[:nb], self.vbuf[:nb]

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep the rows ``indices``: copy the written blocks into the spare storage and swap the two.

        Dropping rows every few steps thus reuses two storages instead of mapping fresh
        memory each time: on CPU, first-touching the pages of a tens-of-MB buffer costs
        several times the copy itself.
        """
        if not self.is_initialized:
            return
        for name in ("k", "v"):
            old = self.kbuf if name == "k" else self.vbuf
            shape = (old.shape[0], len(indices)) + tuple(old.shape[2:])
            numel = shape[0] * shape[1] * old[0, 0].numel()
            spare = self._flats[name + "_spare"]
            if spare is None or spare.numel() < numel:
                if spare is not None:
                    self.pool.append(spare)
                spare = self._take(numel, old)
            new = spare[:numel].view(shape)
            for block in range(self.zeroed):  # written blocks only; the others are zeroed on first write
                torch.index_select(old[block], 0, indices, out=new[block])
            self._flats[name + "_spare"], self._flats[name] = self._flats[name], spare
            if name == "k":
                self.kbuf = new
            else:
                self.vbuf = new


KV_BLOCK_ATTENTION = "scrit_kv_blocks"


def _kv_block_attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None, **kwargs):
    """Decode-step attention over :class:`_BlockedLayer`'s 5-d blocks; anything else goes to stock SDPA.

    ``query`` is ``[batch, heads, 1, dim]``; ``key``/``value`` are ``[n_blocks, batch, kv_heads,
    block, dim]``; ``attention_mask`` is the boolean ``[batch, 1, 1, kv_length]`` mask of
    :func:`_kv_block_mask`. Grouped-query heads share their kv head as in ``repeat_kv``.
    Returns ``[batch, 1, heads, dim]`` like the stock attention functions.
    """
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if key.dim() != 5:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    nb, b, _, blk, d = key.shape
    h, q_len = query.shape[1], query.shape[2]
    if q_len != 1 or attention_mask is None or attention_mask.dtype != torch.bool:
        raise RuntimeError("block-major KV attention handles one boolean-masked query token per row")
    scale = d ** -0.5 if scaling is None else scaling
    bias = _block_bias(attention_mask.reshape(b, -1), nb * blk, query)
    return _attend_blocks(query * scale, key, value, bias).reshape(b, 1, h, d), None


def _block_bias(mask: torch.Tensor, slots: int, like: torch.Tensor) -> torch.Tensor:
    """Additive ``[batch, 1, 1, slots]`` bias: -inf at padding (``mask`` False) and past the cache length."""
    b, kv_len = mask.shape
    bias = like.new_zeros((b, 1, 1, slots))
    bias[..., kv_len:] = float("-inf")  # the unwritten tail of the last block
    bias[..., :kv_len].masked_fill_(~mask.reshape(b, 1, 1, kv_len), float("-inf"))
    return bias


def _attend_blocks(query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Softmax attention of one already-scaled query token per row over 5-d blocks; ``[batch, kv_heads, groups, dim]``."""
    nb, b, hkv, blk, d = keys.shape
    g = query.shape[1] // hkv
    scores = torch.matmul(query.reshape(1, b, hkv, g, d), keys.transpose(-1, -2))  # [nb, b, hkv, g, blk]
    scores = scores.permute(1, 2, 3, 0, 4).reshape(b, hkv, g, nb * blk)
    probs = torch.softmax(scores + bias, dim=-1).reshape(b, hkv, g, nb, blk).permute(3, 0, 1, 2, 4)
    return torch.matmul(probs, values).sum(0)


def _kv_block_mask(*args, **kwargs):
    """SDPA's boolean mask, never skipped for a decode step (the block attention always needs kv_length)."""
    from transformers.masking_utils import sdpa_mask

    if kwargs.get("q_length") == 1:
        kwargs["allow_is_causal_skip"] = False
    return sdpa_mask(*args, **kwargs)


def _register_kv_block_attention() -> bool:
    """Register the block attention and its mask under :data:`KV_BLOCK_ATTENTION`; False if unsupported."""
    try:
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface
    except ImportError:  # pragma: no cover - transformers without the attention interfaces
        return False
    AttentionInterface.register(KV_BLOCK_ATTENTION, _kv_block_attention)
    AttentionMaskInterface.register(KV_BLOCK_ATTENTION, _kv_block_mask)
    return True


@contextlib.contextmanager
def _attention_implementation(model, name: str | None):
    """Switch ``model.config._attn_implementation`` to ``name`` for the block (None: leave it)."""
    if name is None:
        yield
        return
    old = model.config._attn_implementation
    model.config._attn_implementation = name
    try:
        yield
    finally:
        model.config._attn_implementation = old


# --- a lean decode step for Qwen2 on the block-major cache -------------------------------------
def _supports_lean_decode(model) -> bool:
    """Qwen2 causal LMs with full attention in every layer (the toy models and Qwen2.5)."""
    cfg = model.config
    return (type(model).__name__ == "Qwen2ForCausalLM"
            and all(t == "full_attention" for t in (getattr(cfg, "layer_types", None) or ["full_attention"]))
            and not getattr(cfg, "use_sliding_window", False))


def _lean_decode_step(model, tokens: torch.Tensor, positions: torch.Tensor, cache, mask: torch.Tensor) -> torch.Tensor:
    """One decode step of a Qwen2 model over :class:`_BlockedLayer` caches; returns ``[batch, vocab]`` logits.

    The same operations, in the same order and on the same weights, as the model's own
    forward with :func:`_kv_block_attention` (a test checks the logits are bitwise equal),
    without the per-module dispatch, output capturing and mask building that cost about
    as much as the arithmetic for a one-token step on CPU. ``mask`` is the 2-d padding mask
    including the new token.
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
            bias = _block_bias(mask.bool(), keys.shape[0] * keys.shape[3], q)
        out = _attend_blocks(q * attn.scaling, keys, values, bias).reshape(b, 1, -1)
        x = residual + attn.o_proj(out)
        x = x + layer.mlp(layer.post_attention_layernorm(x))
    x = inner.norm(x)
    return model.lm_head(x[:, -1, :])


# --- the batched backend ---------------------------------------------------------------
class TransformersBackend:
    """Batched, KV-cached generation with per-request seeds; see the module docstring."""

    name = "transformers"

    def __init__(
        self,
        model: str | Path,
        device: str = "cpu",
        dtype: str | torch.dtype = "auto",
        batch_size: int = 64,
        max_batch_tokens: int | None = None,
        trust_remote_code: bool = False,
        revision: str | None = None,
        attn_implementation: str | None = None,
        prune_fraction: float = 0.25,
        verdict_rule: str | None = None,
        kv_block_size: int | None = None,
        prefill_rows: int = 32,
        lean_decode: bool = True,
        _loaded: tuple | None = None,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if max_batch_tokens is not None and max_batch_tokens < 1:
            raise ValueError(f"max_batch_tokens must be >= 1, got {max_batch_tokens}")
        self.model_name = str(model)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.prune_fraction = prune_fraction
        if _loaded is not None:
            self.model, self.tokenizer = _loaded
        else:
            self.tokenizer = load_tokenizer(model, trust_remote_code, revision)
            self.model = load_model(model, self.device, self.dtype, trust_remote_code, revision, attn_implementation)
        self.eos_ids = _eos_ids(self.tokenizer, self.model)
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else min(self.eos_ids)
        # block-major KV cache: on CPU by default, and only over stock SDPA (a model loaded with
        # another attention implementation keeps it, with the contiguous cache)
        if kv_block_size is None:
            kv_block_size = 32 if self.device.type == "cpu" else 0
        if kv_block_size < 0:
            raise ValueError(f"kv_block_size must be >= 0, got {kv_block_size}")
        if kv_block_size and (self.model.config._attn_implementation != "sdpa" or not _register_kv_block_attention()):
            kv_block_size = 0
        self.kv_block_size = kv_block_size
        if prefill_rows < 0:
            raise ValueError(f"prefill_rows must be >= 0, got {prefill_rows}")
        self.prefill_rows = prefill_rows
        # decode steps skip transformers' module plumbing where the model is a plain Qwen2 (bitwise the same logits)
        self.lean_decode = bool(kv_block_size) and lean_decode and _supports_lean_decode(self.model)
        params = inspect.signature(self.model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self._pieces: dict[int, str] = {}
        self.verdict_rule = make_verdict_rule(verdict_rule, self.tokenizer)
        # how often the rule was consulted / changed the model's own verdict word (reported by callers)
        self.rule_stats = {"verdicts": 0, "overridden": 0}

    @classmethod
    def from_objects(cls, model, tokenizer, name: str = "in-memory", **kw) -> "TransformersBackend":
        """Wrap an already-loaded model + tokenizer (e.g. right after training)."""
        dev = next(model.parameters()).device
        return cls(name, device=str(dev), dtype=next(model.parameters()).dtype, _loaded=(model.eval(), tokenizer), **kw)

    # -- public API --
    def encode(self, requests: Sequence[GenerationRequest]) -> list[list[int]]:
        texts = [prompts.render_chat(self.tokenizer, r.messages) for r in requests]
        return self.tokenizer(texts, add_special_tokens=False)["input_ids"]

    def plan_batches(self, lengths: Sequence[int], max_new_tokens: int) -> list[list[int]]:
        """Indices grouped into batches, longest prompts first (sorting minimises padding)."""
        order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
        batches: list[list[int]] = []
        cur: list[int] = []
        for i in order:
            width = (lengths[cur[0]] if cur else lengths[i]) + max_new_tokens
            if cur and (len(cur) >= self.batch_size or
                        (self.max_batch_tokens is not None and (len(cur) + 1) * width > self.max_batch_tokens)):
                batches.append(cur)
                cur = []
            cur.append(i)
        if cur:
            batches.append(cur)
        return batches

    def generate(self, requests: Sequence[GenerationRequest], params: SamplingParams, progress: bool = True) -> list[str]:
        from tqdm.auto import tqdm

        requests = list(requests)
        if not requests:
            return []
        _validate(requests, params)
        ids = self.encode(requests)
        out: list[str | None] = [None] * len(requests)
        batches = self.plan_batches([len(x) for x in ids], params.max_new_tokens)
        pool: list = []  # KV storages handed from one batch to the next, freed with this call
        with tqdm(total=len(requests), disable=not progress, desc=f"generate ({Path(self.model_name).name})",
                  unit="req", dynamic_ncols=True) as bar:
            for b in batches:
                with _attention_implementation(self.model, KV_BLOCK_ATTENTION if self.kv_block_size else None):
                    texts = self._generate_batch([ids[i] for i in b], [requests[i].seed for i in b], params, pool)
                for i, t in zip(b, texts):
                    out[i] = t
                bar.update(len(b))
        return out  # type: ignore[return-value]

    # -- internals --
    def _piece(self, tok: int) -> str:
        p = self._pieces.get(tok)
        if p is None:
            p = self._pieces[tok] = self.tokenizer.decode([tok], skip_special_tokens=True)
        return p

    def _forward(self, input_ids, attention_mask, position_ids, cache, logits_to_keep=1):
        kw = {self._cache_kw: cache}
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                         use_cache=True, logits_to_keep=logits_to_keep, **kw)
        return out.logits[:, -1, :]

    def _prefill(self, input_ids, mask, position_ids, cache):
        """The prompts' forward: in chunks of ``prefill_rows`` rows on a block-major cache, else at once.

        Rows are sorted longest first, so a chunk is cut to its own longest prompt (less
        padding), and its activations stay small enough for the CPU caches; the chunk's
        states land right-aligned in its rows of the cache, as a whole-batch prefill puts them.
        """
        n, width = input_ids.shape
        layers = getattr(cache, "layers", None) or []
        chunk = self.prefill_rows
        if not chunk or n <= chunk or not all(isinstance(layer, _BlockedLayer) for layer in layers):
            return self._forward(input_ids, mask, position_ids, cache)
        lengths = mask.sum(-1).tolist()
        logits = []
        for row0 in range(0, n, chunk):
            row1 = min(row0 + chunk, n)
            first = width - max(1, max(lengths[row0:row1]))
            for layer in layers:
                layer.prefill_rows = (row0, row1, first, n)
            logits.append(self._forward(input_ids[row0:row1, first:], mask[row0:row1, first:],
                                        position_ids[row0:row1, first:], cache))
        for layer in layers:
            layer.prefill_rows, layer.length = None, width
        return torch.cat(logits)

    @torch.inference_mode()
    def _generate_batch(self, prompt_ids: list[list[int]], seeds: list[int], params: SamplingParams,
                        pool: list | None = None) -> list[str]:
        dev = self.device
        n = len(prompt_ids)
        width = max(len(p) for p in prompt_ids)
        input_ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        for r, p in enumerate(prompt_ids):
            if p:
                input_ids[r, width - len(p):] = torch.tensor(p, dtype=torch.long)
                mask[r, width - len(p):] = 1
        input_ids, mask = input_ids.to(dev), mask.to(dev)
        position_ids = (mask.cumsum(-1) - 1).clamp_(min=0)
        next_pos = position_ids[:, -1:] + 1
        seed_t = torch.tensor(seeds, dtype=torch.int64)

        cache = _make_cache(self.model, width + params.max_new_tokens, self.kv_block_size, pool)
        logits = self._prefill(input_ids, mask, position_ids, cache)
        lean = self.lean_decode and all(isinstance(layer, _BlockedLayer) for layer in getattr(cache, "layers", ()))

        stops = tuple(s for s in params.stop if s)
        rule = self.verdict_rule
        tail_len = max(2 * max((len(s) for s in stops), default=0) + 8, rule.tail_chars if rule else 0)
        gen: list[list[int]] = [[] for _ in range(n)]
        tails = [""] * n
        rows = list(range(n))  # batch position -> original row
        alive = [True] * n  # per batch position
        eos = self.eos_ids
        for step in range(params.max_new_tokens):
            tok = _sample(logits, seed_t[rows], step, params)
            tok_list = tok.tolist()
            if rule is not None:
                forced = False
                for j, (r, t) in enumerate(zip(rows, tok_list)):
                    if alive[j] and t in rule.candidates:
                        v = rule(tails[r])
                        if v is not None:
                            self.rule_stats["verdicts"] += 1
                            if v != t:
                                self.rule_stats["overridden"] += 1
                                tok_list[j], forced = v, True
                if forced:
                    tok = torch.tensor(tok_list, dtype=tok.dtype, device=tok.device)
            for j, (r, t) in enumerate(zip(rows, tok_list)):
                if not alive[j]:
                    continue
                if t in eos:
                    alive[j] = False
                    continue
                gen[r].append(t)
                if stops or rule is not None:
                    tails[r] = (tails[r] + self._piece(t))[-tail_len:]
                    if any(s in tails[r] for s in stops) and any(
                        s in self.tokenizer.decode(gen[r], skip_special_tokens=True) for s in stops
                    ):
                        alive[j] = False
            n_alive = sum(alive)
            if n_alive == 0 or step == params.max_new_tokens - 1:
                break
            if len(rows) - n_alive >= max(1, int(self.prune_fraction * len(rows))):
                keep = [j for j, a in enumerate(alive) if a]
                keep_t = torch.tensor(keep, dtype=torch.long, device=dev)
                cache.batch_select_indices(keep_t)
                mask, next_pos, tok = mask[keep_t], next_pos[keep_t], tok.to(dev)[keep_t]
                rows = [rows[j] for j in keep]
                alive = [True] * len(rows)
            else:
                tok = tok.to(dev)
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
            if lean:
                logits = _lean_decode_step(self.model, tok, next_pos, cache, mask)
            else:
                logits = self._forward(tok.unsqueeze(-1), mask, next_pos, cache)
            next_pos = next_pos + 1

        for layer in getattr(cache, "layers", ()):
            if isinstance(layer, _BlockedLayer):
                layer.release()
        texts = self.tokenizer.batch_decode(gen, skip_special_tokens=True)
        return [truncate_at_stop(t, stops) for t in texts]


# --- the naive reference -----------------------------------------------------------------
class NaiveTransformersBackend:
    """One prompt at a time through ``model.generate`` (the slow baseline for the benchmark).

    Greedy output matches :class:`TransformersBackend` token for token. Sampled output uses
    transformers' own sampler seeded per request with ``torch.manual_seed``, so it is
    reproducible but not the same draw as the batched backend's counter-based sampler.
    """

    name = "transformers-naive"

    def __init__(self, model: str | Path, device: str = "cpu", dtype: str | torch.dtype = "auto",
                 trust_remote_code: bool = False, revision: str | None = None, _loaded: tuple | None = None):
        self.model_name = str(model)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        if _loaded is not None:
            self.model, self.tokenizer = _loaded
        else:
            self.tokenizer = load_tokenizer(model, trust_remote_code, revision)
            self.model = load_model(model, self.device, self.dtype, trust_remote_code, revision)
        self.eos_ids = _eos_ids(self.tokenizer, self.model)
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else min(self.eos_ids)

    @torch.inference_mode()
    def generate(self, requests: Sequence[GenerationRequest], params: SamplingParams, progress: bool = True) -> list[str]:
        from tqdm.auto import tqdm

        requests = list(requests)
        _validate(requests, params)
        out = []
        stops = tuple(s for s in params.stop if s)
        for r in tqdm(requests, disable=not progress, desc="generate (naive)", unit="req", dynamic_ncols=True):
            text = prompts.render_chat(self.tokenizer, r.messages)
            ids = torch.tensor([self.tokenizer(text, add_special_tokens=False)["input_ids"]], device=self.device)
            kw = dict(max_new_tokens=params.max_new_tokens, eos_token_id=sorted(self.eos_ids), pad_token_id=self.pad_id,
                      attention_mask=torch.ones_like(ids))
            if params.greedy:
                kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            else:
                torch.manual_seed(r.seed)
                kw.update(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=0)
            if stops:
                kw.update(stop_strings=list(stops), tokenizer=self.tokenizer)
            seq = self.model.generate(ids, **kw)[0, ids.shape[1]:].tolist()
            while seq and seq[-1] in self.eos_ids:
                seq.pop()
            out.append(truncate_at_stop(self.tokenizer.decode(seq, skip_special_tokens=True), stops))
        return out

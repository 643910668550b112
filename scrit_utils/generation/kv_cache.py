"""The generation backend's KV cache: preallocated, and block-major on CPU, with its attention function.

transformers' ``DynamicCache`` is kept, with its layers swapped for buffers preallocated to
``longest prompt + max_new_tokens`` (:func:`_make_cache`): the stock layer concatenates every
step, and on CPU those allocations (tens of MB, above glibc's mmap threshold at batch 256)
cost more system time than the model itself. On CPU the buffers are also *block-major*
(:class:`_BlockedLayer`): decoding one token reads the whole cache, and a batched matmul over
contiguous blocks reads it about twice as fast as SDPA over a strided view of one long buffer.

The matching attention (:func:`_kv_block_attention`) is registered globally with transformers'
``AttentionInterface`` under :data:`KV_BLOCK_ATTENTION` (:func:`_register_kv_block_attention`)
and switched on for a model only for the duration of a call (:func:`_attention_implementation`).
It hands anything that is not a 5-d block cache (the prefill) to stock SDPA.

Usage (what :class:`~scrit_utils.generation.transformers_backend.TransformersBackend` does)::

    _register_kv_block_attention()
    cache = _make_cache(model, capacity=width + max_new_tokens, block_size=32, pool=pool)
    with _attention_implementation(model, KV_BLOCK_ATTENTION):
        ...  # model(..., past_key_values=cache) per step
    for layer in cache.layers:
        layer.release()  # storages back to ``pool`` for the next batch
"""
from __future__ import annotations

import contextlib

import torch

__all__ = ["KV_BLOCK_ATTENTION"]


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

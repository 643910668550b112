"""The generation backend's KV cache: preallocated, and head-major with transposed keys on CPU, with its attention.

transformers' ``DynamicCache`` is kept, with its layers swapped for buffers preallocated to
``longest prompt + max_new_tokens`` (:func:`_make_cache`): the stock layer concatenates every
step, and on CPU those allocations (tens of MB, above glibc's mmap threshold at batch 256)
cost more system time than the model itself. On CPU the keys are also stored transposed
(:class:`_HeadMajorLayer`): decoding one token multiplies each row's query by its cached keys,
and a CPU matmul over ``[head_dim, length]`` key matrices does that in about half the time of
SDPA over the plain ``[length, head_dim]`` buffer or of a batched matmul over key blocks.

The matching attention (:func:`_kv_cache_attention`) is registered globally with transformers'
``AttentionInterface`` under :data:`KV_CACHE_ATTENTION` (:func:`_register_kv_cache_attention`)
and switched on for a model only for the duration of a call (:func:`_attention_implementation`).
It hands anything that is not the layer's 5-d decode states (the prefill) to stock SDPA.

Usage (what :class:`~scrit_utils.generation.transformers_backend.TransformersBackend` does)::

    _register_kv_cache_attention()
    cache = _make_cache(model, capacity=width + max_new_tokens, head_major=True, pool=pool)
    with _attention_implementation(model, KV_CACHE_ATTENTION):
        ...  # model(..., past_key_values=cache) per step
    for layer in cache.layers:
        layer.release()  # storages back to ``pool`` for the next batch
"""
from __future__ import annotations

import contextlib

import torch

__all__ = ["KV_CACHE_ATTENTION"]


def _make_cache(model, capacity: int, head_major: bool = False, pool: list | None = None):
    """A ``DynamicCache`` whose plain layers write into buffers preallocated for ``capacity`` tokens.

    ``DynamicCache`` grows by ``torch.cat`` every step: a fresh allocation of the whole
    cache per token and layer, which on CPU (tens of MB per batch, above glibc's mmap
    threshold) turns into page-fault storms. Writing into one buffer per layer and
    returning a view of the filled part avoids that; sliding-window or other special
    layers keep transformers' own implementation. ``head_major`` gives buffers with transposed
    keys (:class:`_HeadMajorLayer`), read by :func:`_kv_cache_attention`.
    """
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    try:
        cache = DynamicCache(config=model.config)
    except TypeError:  # older transformers without the config argument
        cache = DynamicCache()
    layers = getattr(cache, "layers", None)
    if layers and all(type(layer) is DynamicLayer for layer in layers):
        if head_major:
            cache.layers = [_HeadMajorLayer(capacity, pool) for _ in layers]
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


class _HeadMajorLayer(_PreallocatedLayer):
    """A cache layer for one-token decode steps on CPU: keys stored transposed, ``[batch, kv_heads, head_dim, capacity]``.

    A decode step multiplies each row's query by its keys: ``batch x kv_heads`` tiny products.
    With the keys of a (row, head) stored as one ``[head_dim, capacity]`` matrix, the query
    times the filled part (a ``[:, :, :, :length]`` view) reads them in the layout a CPU matmul
    wants; the values stay ``[batch, kv_heads, capacity, head_dim]``. Measured on the toy models'
    shapes (batch 256, 4 heads of 32, 160-340 cached tokens), this attention takes about half the
    time of a batched matmul over 32-token blocks and of SDPA over the plain buffer.

    ``update`` returns the new states themselves on the first call (the prefill, which stock SDPA
    attends over) and afterwards the filled parts as 5-d ``[batch, kv_heads, 1, head_dim, length]``
    keys and ``[batch, kv_heads, 1, length, head_dim]`` values, which only :func:`_kv_cache_attention`
    accepts (the extra axis marks them: stock layers never return 5-d states). Slots a row never
    writes (left of a chunked prefill's shortest-cut rows) are zeroed, so the masked scores are
    finite (masked garbage could still be NaN * 0).
    """

    def __init__(self, capacity: int, pool: list | None = None):
        super().__init__(capacity)
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
        kshape, vshape = (b, h, d, self.capacity), (b, h, self.capacity, d)
        numel = b * h * d * self.capacity
        self.device = key_states.device
        self._flats["k"], self._flats["v"] = self._take(numel, key_states), self._take(numel, value_states)
        self.kbuf = self._flats["k"][:numel].view(kshape)
        self.vbuf = self._flats["v"][:numel].view(vshape)
        self.length = 0
        self.is_initialized = True

    def _write(self, key_states: torch.Tensor, value_states: torch.Tensor, start: int, rows: slice) -> None:
        end = start + key_states.shape[-2]
        if end > self.capacity:
            raise RuntimeError(f"KV cache capacity {self.capacity} exceeded ({end} tokens)")
        self.kbuf[rows, :, :, start:end] = key_states.transpose(-1, -2)
        self.vbuf[rows, :, start:end] = value_states

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if self.prefill_rows is not None:  # one chunk of a chunked prefill: rows row0:row1, right-aligned
            row0, row1, first, batch = self.prefill_rows
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states, rows=batch)
            if first:  # slots left of the chunk's cut are padding no one writes
                self.kbuf[row0:row1, :, :, :first].zero_()
                self.vbuf[row0:row1, :, :first].zero_()
            self._write(key_states, value_states, first, slice(row0, row1))
            return key_states, value_states
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        start = self.length
        self._write(key_states, value_states, start, slice(None))
        self.length = start + key_states.shape[-2]
        if start == 0:
            return key_states, value_states
        return self.kbuf[:, :, None, :, :self.length], self.vbuf[:, :, None, :self.length]

    def merge_rows(self, old: "_HeadMajorLayer | None", keep: torch.Tensor, span: int, window: int,
                   room: int) -> None:
        """Make this layer (just prefilled with new rows) the rows ``keep`` of ``old`` followed by its own rows.

        Continuous batching (:mod:`~scrit_utils.generation.continuous`): each row's filled slots end at
        ``window`` (the kept rows' last ``span`` slots of ``old``, this layer's whole prefill), everything left
        of them is zero (masked, and finite so that masked scores stay finite), and ``room`` slots more follow
        for the next decode steps. ``old``'s storages and this layer's prefill storages go back to the pool.
        """
        new_k, new_v = self.kbuf, self.vbuf  # [n, h, d, width], [n, h, width, d]
        n_keep, width = len(keep), new_k.shape[-1]
        b, h, d, capacity = n_keep + new_k.shape[0], new_k.shape[1], new_k.shape[2], window + room
        numel = b * h * d * capacity
        k_flat, v_flat = self._take(numel, new_k), self._take(numel, new_v)
        kbuf, vbuf = k_flat[:numel].view(b, h, d, capacity), v_flat[:numel].view(b, h, capacity, d)
        kbuf[..., :window].zero_()
        vbuf[:, :, :window].zero_()
        if n_keep:
            end = old.length
            torch.index_select(old.kbuf[..., end - span:end], 0, keep, out=kbuf[:n_keep, ..., window - span:window])
            torch.index_select(old.vbuf[:, :, end - span:end], 0, keep, out=vbuf[:n_keep, :, window - span:window])
        kbuf[n_keep:, ..., window - width:window] = new_k
        vbuf[n_keep:, :, window - width:window] = new_v
        self.pool.extend(f for f in self._flats.values() if f is not None)  # the prefill's storages
        if old is not None:
            old.release()
        self._flats = {"k": k_flat, "v": v_flat, "k_spare": None, "v_spare": None}
        self.kbuf, self.vbuf, self.capacity, self.length = kbuf, vbuf, capacity, window

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep the rows ``indices``: copy their filled slots into the spare storage and swap the two.

        Dropping rows every few steps thus reuses two storages instead of mapping fresh
        memory each time: on CPU, first-touching the pages of a tens-of-MB buffer costs
        several times the copy itself.
        """
        if not self.is_initialized:
            return
        for name in ("k", "v"):
            old = self.kbuf if name == "k" else self.vbuf
            shape = (len(indices),) + tuple(old.shape[1:])
            numel = shape[0] * old[0].numel()
            spare = self._flats[name + "_spare"]
            if spare is None or spare.numel() < numel:
                if spare is not None:
                    self.pool.append(spare)
                spare = self._take(numel, old)
            new = spare[:numel].view(shape)
            if name == "k":  # the filled slots only; the rest is written before it is read
                torch.index_select(old[..., :self.length], 0, indices, out=new[..., :self.length])
            else:
                torch.index_select(old[:, :, :self.length], 0, indices, out=new[:, :, :self.length])
            self._flats[name + "_spare"], self._flats[name] = self._flats[name], spare
            if name == "k":
                self.kbuf = new
            else:
                self.vbuf = new


KV_CACHE_ATTENTION = "scrit_kv_head_major"


def _kv_cache_attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None, **kwargs):
    """Decode-step attention over :class:`_HeadMajorLayer`'s 5-d states; anything else goes to stock SDPA.

    ``query`` is ``[batch, heads, 1, dim]``; ``key`` is ``[batch, kv_heads, 1, dim, length]`` and
    ``value`` ``[batch, kv_heads, 1, length, dim]``; ``attention_mask`` is the boolean
    ``[batch, 1, 1, length]`` mask of :func:`_kv_cache_mask`. Grouped-query heads share their kv
    head as in ``repeat_kv``. Returns ``[batch, 1, heads, dim]`` like the stock attention functions.
    """
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if key.dim() != 5:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    b, h, q_len, d = query.shape
    if q_len != 1 or attention_mask is None or attention_mask.dtype != torch.bool:
        raise RuntimeError("the head-major KV attention handles one boolean-masked query token per row")
    scale = d ** -0.5 if scaling is None else scaling
    bias = _padding_bias(attention_mask.reshape(b, -1), query)
    return _attend(query * scale, key, value, bias).reshape(b, 1, h, d), None


def _padding_bias(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Additive ``[batch, 1, 1, length]`` bias: -inf at padding (``mask`` False), else 0."""
    b, length = mask.shape
    bias = like.new_zeros((b, 1, 1, length))
    return bias.masked_fill_(~mask.reshape(b, 1, 1, length), float("-inf"))


def _attend(query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, bias: torch.Tensor,
            blocks: list[tuple[int, int, int]] | None = None) -> torch.Tensor:
    """Softmax attention of one already-scaled query token per row over :class:`_HeadMajorLayer` states.

    ``query`` ``[batch, heads, 1, dim]``, ``keys`` ``[batch, kv_heads, 1, dim, length]``, ``values``
    ``[batch, kv_heads, 1, length, dim]``, ``bias`` ``[batch, 1, 1, length]``; returns
    ``[batch, kv_heads, groups, dim]``. ``blocks`` (``(row0, row1, first column)``, covering the rows in
    order) attends each block of rows over its columns from ``first`` on only: columns left of every row's
    text in the block are masked for all of them, so reading them is waste (continuous batching, where
    rows of different ages share one window).
    """
    if blocks:
        return torch.cat([_attend(query[r0:r1], keys[r0:r1, ..., c0:], values[r0:r1, :, :, c0:], bias[r0:r1, ..., c0:])
                          for r0, r1, c0 in blocks])
    b, hkv = keys.shape[:2]
    g = query.shape[1] // hkv
    scores = torch.matmul(query.reshape(b, hkv, g, -1), keys[:, :, 0])  # [b, hkv, g, length]
    probs = torch.softmax(scores + bias, dim=-1)
    return torch.matmul(probs, values[:, :, 0])


def _kv_cache_mask(*args, **kwargs):
    """SDPA's boolean mask, never skipped for a decode step (the head-major attention always needs it)."""
    from transformers.masking_utils import sdpa_mask

    if kwargs.get("q_length") == 1:
        kwargs["allow_is_causal_skip"] = False
    return sdpa_mask(*args, **kwargs)


def _register_kv_cache_attention() -> bool:
    """Register the head-major attention and its mask under :data:`KV_CACHE_ATTENTION`; False if unsupported."""
    try:
        from transformers import AttentionInterface
        from transformers.masking_utils import AttentionMaskInterface
    except ImportError:  # pragma: no cover - transformers without the attention interfaces
        return False
    AttentionInterface.register(KV_CACHE_ATTENTION, _kv_cache_attention)
    AttentionMaskInterface.register(KV_CACHE_ATTENTION, _kv_cache_mask)
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

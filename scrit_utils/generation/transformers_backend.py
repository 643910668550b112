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
   (:func:`scrit_utils.critique.prompts.render_chat`) and tokenized without extra special tokens;
2. requests are sorted by prompt length (longest first) and cut into batches of at most
   ``batch_size`` rows and ``max_batch_tokens`` (rows x (longest prompt + max_new_tokens));
3. a batch is left-padded; position ids come from the attention mask, so a row's
   positions start at 0 whatever its padding; one prefill ``forward`` fills the cache,
   then one ``forward`` per new token;
4. a row stops at an end-of-sequence id or when its text contains a stop string; finished
   rows are dropped from the batch (and the cache) once they are a quarter of it;
5. optional, off by default: a world's decode hook (``decode_hook``, the protocol in
   :mod:`~scrit_utils.generation.decode_hook`) may replace the chosen tokens of a step, e.g. the
   toy world's verdict rule (:func:`scrit_utils.worlds.arith.make_verdict_rule`);
6. texts are decoded without special tokens, cut at the first stop string, and returned
   in request order.

Where the parts live: sampling and its counter-based randomness in
:mod:`~scrit_utils.generation.sampling`; the preallocated KV cache (on CPU head-major, keys transposed) and the
attention function registered for it in :mod:`~scrit_utils.generation.kv_cache`; the prompt's
prefill runs through stock SDPA, in chunks of ``prefill_rows`` rows each cut to its own longest
prompt, and the cache storages of one call are pooled across its batches. For a model built like
Qwen2 (checked on its modules, :mod:`~scrit_utils.generation.lean_decode`) the decode steps skip
transformers' module plumbing with bitwise-equal logits. Together these took the benchmark on
toy-0.6m from 13.9x to 20-21x the naive loop (README). Loading is in :mod:`~scrit_utils.generation.loading`.

:class:`~scrit_utils.generation.naive_backend.NaiveTransformersBackend` (re-exported here) is the slow
reference: one prompt at a time through ``model.generate``. The benchmark
(``scripts/bench_generation.py``) and the tests compare the two.

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

import inspect
from pathlib import Path
from typing import Sequence

import torch

from scrit_utils.critique import prompts
from scrit_utils.generation.base import GenerationRequest, SamplingParams, truncate_at_stop
from scrit_utils.generation.continuous import generate_continuous
from scrit_utils.generation.decode_hook import DecodeHook
from scrit_utils.generation.kv_cache import KV_CACHE_ATTENTION, _attention_implementation, _HeadMajorLayer, _make_cache, _register_kv_cache_attention
from scrit_utils.generation.lean_decode import _lean_decode_matches, _lean_decode_step, _supports_lean_decode
from scrit_utils.generation.loading import _eos_ids, _validate, load_model, load_tokenizer, resolve_device, resolve_dtype
from scrit_utils.generation.naive_backend import NaiveTransformersBackend
from scrit_utils.generation.sampling import _sample, counter_uniform

__all__ = [
    "TransformersBackend",
    "NaiveTransformersBackend",
    "DecodeHook",
    "load_tokenizer",
    "load_model",
    "counter_uniform",
    "resolve_device",
    "resolve_dtype",
]


_QUEUE_PER_ROW = 8  # requests per live row in one continuous call: the drain at the end is a small share of it


def chunks_per_call(batch_size: int, max_num_seqs: int | None) -> int:
    """How many fixed chunks of ``batch_size`` requests one call takes: with continuous batching enough for a queue
    of ``_QUEUE_PER_ROW`` requests per live row, else one."""
    return max(1, -(-_QUEUE_PER_ROW * max_num_seqs // batch_size)) if max_num_seqs else 1


class TransformersBackend:
    """Batched, KV-cached generation with per-request seeds; see the module docstring.

    ``decode_hook`` (also the attribute of that name, which callers may swap between calls) is an
    object following :class:`~scrit_utils.generation.decode_hook.DecodeHook`, or None.
    """

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
        decode_hook: DecodeHook | None = None,
        kv_head_major: bool | None = None,
        prefill_rows: int = 32,
        lean_decode: bool = True,
        max_num_seqs: int | None = None,
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
        # head-major KV cache: on CPU by default, and only over stock SDPA (a model loaded with
        # another attention implementation keeps it, with the plain preallocated cache)
        if kv_head_major is None:
            kv_head_major = self.device.type == "cpu"
        if kv_head_major and (self.model.config._attn_implementation != "sdpa" or not _register_kv_cache_attention()):
            kv_head_major = False
        self.kv_head_major = bool(kv_head_major)
        if prefill_rows < 0:
            raise ValueError(f"prefill_rows must be >= 0, got {prefill_rows}")
        self.prefill_rows = prefill_rows
        # decode steps skip transformers' module plumbing where the model is built as the lean step
        # assumes and a tiny probe gives bitwise the same logits both ways
        self.lean_decode = (self.kv_head_major and lean_decode and _supports_lean_decode(self.model)
                            and _lean_decode_matches(self.model))
        params = inspect.signature(self.model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self._pieces: dict[int, str] = {}
        #: a world's decode-step hook (None = off); callers may swap it between calls
        self.decode_hook = decode_hook
        # continuous batching (generation/continuous.py): up to this many live rows, refilled from the call's
        # queue (vLLM's name for the same limit); None keeps static batches of ``batch_size``
        if max_num_seqs is not None and max_num_seqs < 1:
            raise ValueError(f"max_num_seqs must be >= 1, got {max_num_seqs}")
        self.max_num_seqs = max_num_seqs
        # a caller with fixed chunks of ``batch_size`` requests (pipeline.common.generate_resumable) hands this
        # many to one call (generate_many), so the queue stays long against the live rows
        self.parallel = chunks_per_call(batch_size, max_num_seqs)

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
        if self.max_num_seqs and self.kv_head_major and self.decode_hook is None:
            with tqdm(total=len(requests), disable=not progress, desc=f"generate ({Path(self.model_name).name})",
                      unit="req", dynamic_ncols=True) as bar, \
                    _attention_implementation(self.model, KV_CACHE_ATTENTION):
                return generate_continuous(self, ids, [r.seed for r in requests], params, self.max_num_seqs, bar)
        out: list[str | None] = [None] * len(requests)
        batches = self.plan_batches([len(x) for x in ids], params.max_new_tokens)
        pool: list = []  # KV storages handed from one batch to the next, freed with this call
        with tqdm(total=len(requests), disable=not progress, desc=f"generate ({Path(self.model_name).name})",
                  unit="req", dynamic_ncols=True) as bar:
            for b in batches:
                with _attention_implementation(self.model, KV_CACHE_ATTENTION if self.kv_head_major else None):
                    texts = self._generate_batch([ids[i] for i in b], [requests[i].seed for i in b], params, pool)
                for i, t in zip(b, texts):
                    out[i] = t
                bar.update(len(b))
        return out  # type: ignore[return-value]

    def generate_many(self, groups: Sequence[Sequence[GenerationRequest]], params: SamplingParams) -> list[list[str]]:
        """The groups as one call (with continuous batching, one queue); the texts per group, in order."""
        texts = self.generate([r for g in groups for r in g], params, progress=False)
        out, start = [], 0
        for g in groups:
            out.append(texts[start:start + len(g)])
            start += len(g)
        return out

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
        """The prompts' forward: in chunks of ``prefill_rows`` rows on a head-major cache, else at once.

        Rows are sorted longest first, so a chunk is cut to its own longest prompt (less
        padding), and its activations stay small enough for the CPU caches; the chunk's
        states land right-aligned in its rows of the cache, as a whole-batch prefill puts them.
        """
        n, width = input_ids.shape
        layers = getattr(cache, "layers", None) or []
        chunk = self.prefill_rows
        if not chunk or n <= chunk or not all(isinstance(layer, _HeadMajorLayer) for layer in layers):
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

    def _left_pad(self, prompt_ids: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompts as one left-padded ``[rows, longest]`` id tensor and its 0/1 attention mask, on the device."""
        n, width = len(prompt_ids), max(len(p) for p in prompt_ids)
        input_ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        for r, p in enumerate(prompt_ids):
            if p:
                input_ids[r, width - len(p):] = torch.tensor(p, dtype=torch.long)
                mask[r, width - len(p):] = 1
        return input_ids.to(self.device), mask.to(self.device)

    def _tail_len(self, stops: tuple[str, ...]) -> int:
        """Characters of a row's text kept to spot a stop string (and what the decode hook reads)."""
        hook = self.decode_hook
        return max(2 * max((len(s) for s in stops), default=0) + 8, hook.tail_chars if hook else 0)

    def _prune_due(self, rows: int, alive: int) -> bool:
        """Finished rows leave the batch (and the cache) once they are ``prune_fraction`` of it."""
        return rows - alive >= max(1, int(self.prune_fraction * rows))

    def _apply_hook(self, tok: torch.Tensor, tok_list: list[int], rows: list[int], alive: list[bool],
                    tails: list[str], logits: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
        """The decode hook's tokens for this step (see :mod:`~scrit_utils.generation.decode_hook`)."""
        new = self.decode_hook(tok_list, [tails[r] if a else None for r, a in zip(rows, alive)], logits)
        if new is None:
            return tok, tok_list
        if len(new) != len(tok_list):
            raise ValueError(f"decode hook returned {len(new)} tokens for {len(tok_list)} rows")
        new = list(new)
        return torch.tensor(new, dtype=tok.dtype, device=tok.device), new

    def _append(self, tok_list: list[int], rows: list[int], alive: list[bool], gen: list[list[int]],
                tails: list[str], stops: tuple[str, ...], tail_len: int) -> None:
        """Append each live row's token; a row ends at an eos id or once its text contains a stop string.

        ``tails`` (the end of each row's text) is kept only when there are stops or a hook to read it.
        """
        track = bool(stops) or self.decode_hook is not None
        for j, (r, t) in enumerate(zip(rows, tok_list)):
            if not alive[j]:
                continue
            if t in self.eos_ids:
                alive[j] = False
                continue
            gen[r].append(t)
            if track:
                tails[r] = (tails[r] + self._piece(t))[-tail_len:]
                if any(s in tails[r] for s in stops) and any(
                    s in self.tokenizer.decode(gen[r], skip_special_tokens=True) for s in stops
                ):
                    alive[j] = False

    @torch.inference_mode()
    def _generate_batch(self, prompt_ids: list[list[int]], seeds: list[int], params: SamplingParams,
                        pool: list | None = None) -> list[str]:
        dev = self.device
        n = len(prompt_ids)
        input_ids, mask = self._left_pad(prompt_ids)
        position_ids = (mask.cumsum(-1) - 1).clamp_(min=0)
        next_pos = position_ids[:, -1:] + 1
        seed_t = torch.tensor(seeds, dtype=torch.int64)

        cache = _make_cache(self.model, input_ids.shape[1] + params.max_new_tokens, self.kv_head_major, pool)
        logits = self._prefill(input_ids, mask, position_ids, cache)
        lean = self.lean_decode and all(isinstance(layer, _HeadMajorLayer) for layer in getattr(cache, "layers", ()))

        stops = tuple(s for s in params.stop if s)
        hook = self.decode_hook
        tail_len = self._tail_len(stops)
        gen: list[list[int]] = [[] for _ in range(n)]
        tails = [""] * n
        rows = list(range(n))  # batch position -> original row
        alive = [True] * n  # per batch position
        for step in range(params.max_new_tokens):
            tok = _sample(logits, seed_t[rows], step, params)
            tok_list = tok.tolist()
            if hook is not None:
                tok, tok_list = self._apply_hook(tok, tok_list, rows, alive, tails, logits)
            self._append(tok_list, rows, alive, gen, tails, stops, tail_len)
            n_alive = sum(alive)
            if n_alive == 0 or step == params.max_new_tokens - 1:
                break
            if self._prune_due(len(rows), n_alive):
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
            if isinstance(layer, _HeadMajorLayer):
                layer.release()
        texts = self.tokenizer.batch_decode(gen, skip_special_tokens=True)
        return [truncate_at_stop(t, stops) for t in texts]

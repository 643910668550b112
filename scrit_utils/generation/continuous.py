"""Continuous batching for the transformers backend: a finished row's place goes to a waiting request.

A static batch shrinks as its rows finish, and on a small CPU a decode step has a large fixed cost
(about 3 ms for the v3 critic, toy-409k with one KV head, whatever the rows): the last steps of a batch,
spent on a few long critiques, cost nearly as much as the first. Here the batch is refilled instead:
whenever a quarter of ``max_num_seqs`` rows has finished, waiting requests are prefilled and join
the running batch, so a call decodes at about ``max_num_seqs`` rows until its queue is empty.

How a request joins (:meth:`_LiveBatch.admit`): its prompt is prefilled in a cache of its own, its first
token sampled from those logits (step 0, as in a static batch), and the running rows' caches and the
new ones are copied into fresh buffers, right-aligned at one shared write position. Slots left of a
row's text are zero and masked, so each row attends over exactly its own prompt and tokens, with its
own positions (from its own prompt length) and its own sampling counter (its own token index: the
counter-based draws of :mod:`~scrit_utils.generation.sampling`). A row's text is therefore the one a
static batch gives it, up to float rounding of the batched products (the same caveat as any batch
composition; the tests compare the texts with static batches and with the one-prompt loop).

The copy also drops the finished rows and the columns no live row reads, so the window stays as long as
the longest live row. It needs the head-major cache (:mod:`~scrit_utils.generation.kv_cache`) and no
decode hook (the lean decode step is used where the backend has it); :class:`~scrit_utils.generation.transformers_backend.TransformersBackend` falls back to
static batches otherwise.

Usage (what ``TransformersBackend(..., max_num_seqs=256).generate`` does)::

    texts = generate_continuous(backend, prompt_ids, seeds, params, max_num_seqs=256)
"""
from __future__ import annotations

from collections import deque
from typing import Callable, Sequence

import torch

from scrit_utils.generation.base import SamplingParams, truncate_at_stop
from scrit_utils.generation.kv_cache import _make_cache
from scrit_utils.generation.lean_decode import _lean_decode_step
from scrit_utils.generation.sampling import _sample

__all__ = ["generate_continuous"]

BLOCK_ROWS = 64  # rows per attention block (kv_cache._attend): fewer columns read, a few more calls
BLOCK_COST = 1000  # a block's extra calls, in row-columns of attention (~60 us against ~0.06 us; toy-409k, 2 cores)


class _LiveBatch:
    """The running rows: their cache, padding mask, next positions, pending tokens and token counts."""

    def __init__(self, backend, prompt_ids: Sequence[Sequence[int]], seeds: torch.Tensor, params: SamplingParams,
                 pool: list, emit: Callable[[list[int], list[int], list[bool], list[int]], None]):
        self.be, self.prompt_ids, self.seeds, self.params, self.pool, self.emit = backend, prompt_ids, seeds, params, pool, emit
        self.rows: list[int] = []  # batch position -> request index
        self.alive: list[bool] = []
        self.steps: list[int] = []  # tokens sampled so far, per row (its sampling counter)
        self.cache = None
        self.mask = self.next_pos = self.tok = None  # [rows, window] 0/1, [rows, 1], [rows]
        self.blocks: list[tuple[int, int, int]] = []  # (row0, row1, first column any of them reads)

    def _cut_blocks(self) -> None:
        """Attention blocks: runs of ``BLOCK_ROWS`` rows (rows are ordered by their text's first column), each
        reading from its rows' first column on; a block joins the one before it where the columns it would
        spare cost less than another block's calls (``BLOCK_COST`` row-columns)."""
        start = (self.mask.shape[1] - self.mask.sum(-1)).tolist()
        blocks: list[list[int]] = []
        for r0 in range(0, len(start), BLOCK_ROWS):
            r1 = min(r0 + BLOCK_ROWS, len(start))
            c0 = min(start[r0:r1])
            if blocks and (c0 - blocks[-1][2]) * (r1 - r0) < BLOCK_COST:
                blocks[-1][1] = r1
            else:
                blocks.append([r0, r1, c0])
        self.blocks = [tuple(b) for b in blocks]

    @property
    def n_alive(self) -> int:
        return sum(self.alive)

    def sample(self, logits: torch.Tensor, rows: list[int], steps: list[int], alive: list[bool]) -> torch.Tensor:
        """Each row's next token from its own (seed, step) draw; appended to its text by ``emit``."""
        tok = _sample(logits, self.seeds[rows], torch.tensor(steps, dtype=torch.int64), self.params)
        self.emit(tok.tolist(), rows, alive, steps)
        return tok

    def admit(self, new: list[int]) -> None:
        """Prefill requests ``new``, sample their first tokens, and merge them with the live rows (finished rows drop out)."""
        be, dev = self.be, self.be.device
        input_ids, mask = be._left_pad([self.prompt_ids[i] for i in new])
        pos = (mask.cumsum(-1) - 1).clamp_(min=0)
        width = input_ids.shape[1]
        fresh = _make_cache(be.model, width, True, self.pool)
        logits = be._prefill(input_ids, mask, pos, fresh)
        alive, steps = [True] * len(new), [0] * len(new)
        tok = self.sample(logits, new, steps, alive)

        old_len = self.mask.shape[1] if self.mask is not None else 0
        lengths = self.mask.sum(-1).tolist() if self.mask is not None else []  # each row's text, in the window
        # the live rows, ordered by their text's first column (the attention blocks read from there)
        keep = sorted((j for j, a in enumerate(self.alive) if a), key=lambda j: (-lengths[j], j))
        span = max((lengths[j] for j in keep), default=0)  # the longest kept row's text
        window = max(span, width)
        keep_t = torch.tensor(keep, dtype=torch.long, device=dev)
        layers = self.cache.layers if self.cache is not None else [None] * len(fresh.layers)
        for old, add in zip(layers, fresh.layers):
            add.merge_rows(old, keep_t, span, window, self.params.max_new_tokens)
        merged = mask.new_zeros((len(keep) + len(new), window))
        if keep:
            merged[:len(keep), window - span:] = self.mask[keep_t, old_len - span:]
        merged[len(keep):, window - width:] = mask
        self.cache, self.mask = fresh, merged
        self.next_pos = torch.cat([self.next_pos[keep_t], pos[:, -1:] + 1]) if keep else pos[:, -1:] + 1
        self.tok = torch.cat([self.tok.to(dev)[keep_t], tok.to(dev)]) if keep else tok.to(dev)
        self.rows = [self.rows[j] for j in keep] + list(new)
        self.alive = [True] * len(keep) + alive
        self.steps = [self.steps[j] for j in keep] + steps
        self._cut_blocks()
        # storages of every size a merge has used come back to the pool; keep the largest few
        self.pool.sort(key=lambda f: f.numel(), reverse=True)
        del self.pool[4 * len(fresh.layers):]

    def prune(self) -> None:
        """Drop the finished rows (cache rows copied into the layers' spare storages)."""
        keep = [j for j, a in enumerate(self.alive) if a]
        keep_t = torch.tensor(keep, dtype=torch.long, device=self.be.device)
        self.cache.batch_select_indices(keep_t)
        self.mask, self.next_pos, self.tok = self.mask[keep_t], self.next_pos[keep_t], self.tok.to(self.be.device)[keep_t]
        self.rows, self.steps = [self.rows[j] for j in keep], [self.steps[j] for j in keep]
        self.alive = [True] * len(keep)
        self._cut_blocks()

    def step(self) -> None:
        """One decode step of every row, then each row's next token."""
        self.mask = torch.cat([self.mask, self.mask.new_ones((self.mask.shape[0], 1))], dim=1)
        tok = self.tok.to(self.be.device)
        if self.be.lean_decode:
            logits = _lean_decode_step(self.be.model, tok, self.next_pos, self.cache, self.mask, self.blocks)
        else:
            logits = self.be._forward(tok.unsqueeze(-1), self.mask, self.next_pos, self.cache)
        self.next_pos = self.next_pos + 1
        self.tok = self.sample(logits, self.rows, self.steps, self.alive)

    def release(self) -> None:
        for layer in getattr(self.cache, "layers", ()):
            layer.release()


@torch.inference_mode()
def generate_continuous(backend, prompt_ids: Sequence[Sequence[int]], seeds: Sequence[int], params: SamplingParams,
                        max_num_seqs: int, bar=None) -> list[str]:
    """Texts for ``prompt_ids`` (in their order), decoded at up to ``max_num_seqs`` live rows; see the module docstring.

    ``backend`` is a :class:`~scrit_utils.generation.transformers_backend.TransformersBackend` with the
    head-major cache, the lean decode step and no decode hook; ``bar`` (a tqdm bar or None) counts finished requests.
    """
    if max_num_seqs < 1:
        raise ValueError(f"max_num_seqs must be >= 1, got {max_num_seqs}")
    n = len(prompt_ids)
    queue = deque(sorted(range(n), key=lambda i: (-len(prompt_ids[i]), i)))  # longest prompts first
    refill = max(1, int(backend.prune_fraction * max_num_seqs))
    stops = tuple(s for s in params.stop if s)
    tail_len = backend._tail_len(stops)
    gen: list[list[int]] = [[] for _ in range(n)]
    tails = [""] * n

    def emit(tok_list: list[int], rows: list[int], alive: list[bool], steps: list[int]) -> None:
        was = sum(alive)
        backend._append(tok_list, rows, alive, gen, tails, stops, tail_len)
        for j in range(len(rows)):
            steps[j] += 1
            if steps[j] >= params.max_new_tokens:
                alive[j] = False
        if bar is not None:
            bar.update(was - sum(alive))

    live = _LiveBatch(backend, prompt_ids, torch.tensor(list(seeds), dtype=torch.int64), params, [], emit)
    try:
        while True:
            n_alive = live.n_alive
            if queue and n_alive <= max_num_seqs - refill:
                live.admit([queue.popleft() for _ in range(min(max_num_seqs - n_alive, len(queue)))])
                continue
            if n_alive == 0:
                break
            if backend._prune_due(len(live.rows), n_alive):
                live.prune()
            live.step()
    finally:
        live.release()
    texts = backend.tokenizer.batch_decode(gen, skip_special_tokens=True)
    return [truncate_at_stop(t, stops) for t in texts]

"""Generation on several single-threaded worker processes, with exactly the texts of one process.

On a small CPU a decode step of the toy critic is short, and much of it is Python dispatch that a second torch
thread does not share: on 2 cores, two processes with one thread each generate 1.19x the critiques per second of
one process with two threads through the study's resumable path (``scripts/bench_workers.py --n 1024``, toy-409k,
batches of 128, sampled contrastive and greedy direct critiques alike; identical texts), where one process with
batches of 256 gives 1.12x. Starting the workers costs a model load each, so it pays on long stages (02, 03), less
on a sweep point's evaluation. A profile asks for it with ``run.generation_workers: 2``
(:func:`scrit_utils.pipeline.common.make_backend`); no profile does yet.

The texts cannot change: every worker holds the same backend (same model, batch size, dtype), and the unit of
work is one whole ``generate`` call's request list, which a worker runs exactly as the single process would.
:func:`scrit_utils.pipeline.common.generate_resumable` hands :meth:`ProcessPoolBackend.generate_many` the next
``parallel`` chunks of its fixed chunking at once, one chunk per call; every request carries its own seed, so
which worker runs a chunk does not matter. A plain :meth:`~ProcessPoolBackend.generate` runs its whole list on
one worker.

Usage::

    be = ProcessPoolBackend("transformers", {"model": "models/toy-409k", "batch_size": 128}, workers=2)
    texts_a, texts_b = be.generate_many([requests_a, requests_b], params)   # in parallel
    be.shutdown()
"""
from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from typing import Sequence

from scrit_utils.generation.base import GenerationRequest, SamplingParams

__all__ = ["ProcessPoolBackend"]

_BACKEND = None  # the worker process's own backend (built once, by the pool's initializer)


def _init(kind: str, kwargs: dict, threads: int) -> None:
    global _BACKEND
    import torch

    from scrit_utils.generation import get_backend

    torch.set_num_threads(threads)
    _BACKEND = get_backend(kind, **kwargs)


def _generate(requests: list[GenerationRequest], params: SamplingParams) -> list[str]:
    return _BACKEND.generate(requests, params, progress=False)


class ProcessPoolBackend:
    """``workers`` processes, each with ``get_backend(kind, **kwargs)`` on ``threads`` torch threads."""

    def __init__(self, kind: str, kwargs: dict, workers: int = 2, threads: int = 1):
        if workers < 2:
            raise ValueError(f"a process pool needs at least 2 workers, got {workers}")
        self.parallel = workers  # chunks generate_resumable hands over at once
        self.name = f"{kind} x{workers} processes"
        self.model_name = kwargs.get("model")
        self._pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init,
                                         initargs=(kind, dict(kwargs), max(1, threads)))

    def generate(self, requests: Sequence[GenerationRequest], params: SamplingParams, progress: bool = True) -> list[str]:
        return self._pool.submit(_generate, list(requests), params).result()

    def generate_many(self, groups: Sequence[Sequence[GenerationRequest]], params: SamplingParams) -> list[list[str]]:
        """One ``generate`` call per group, the groups in parallel; the texts per group, in order."""
        futures = [self._pool.submit(_generate, list(g), params) if g else None for g in groups]
        return [f.result() if f is not None else [] for f in futures]

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

"""Generation on several single-threaded worker processes, with the texts of one process up to float rounding.

On a small CPU a decode step of the toy critic is short, and much of it is Python dispatch that a second torch
thread does not share: on 2 cores, two processes with one thread each generate 1.19x the critiques per second of
one process with two threads through the study's resumable path with static batches (``scripts/bench_workers.py
--n 1024``, toy-409k, batches of 128; identical texts), and 1.41x with continuous batching at 512 rows
(``generation.max_num_seqs``; the v3 critic, 2026-12-08). A profile asks for it with ``run.generation_workers: 2``
(:func:`scrit_utils.pipeline.common.make_backend`).

The texts are one process's: every worker builds the same backend (same model, batch size, dtype), and the unit of
work is one whole ``generate`` (or, with continuous batching, ``generate_many``) call's request list, which a
worker runs as the single process would, on one thread instead of two (the products round differently, so a rare
sampled token can differ: the key is part of the generating stages' keys when set). :func:`scrit_utils.pipeline.common.generate_resumable` hands
:meth:`ProcessPoolBackend.generate_many` the next ``parallel`` chunks of its fixed chunking at once; every request
carries its own seed, so which worker runs a chunk does not matter. A plain :meth:`~ProcessPoolBackend.generate`
runs its whole list on one worker.

Starting the processes costs about 5 s, so one pool serves every ProcessPoolBackend of a process (a study makes one
per model: generators, the critic, every trained point), and each worker keeps its last few models loaded, keyed
by their files' sizes and times so that a folder written again is read again.

Usage::

    be = ProcessPoolBackend("transformers", {"model": "models/toy-409k", "batch_size": 128}, workers=2)
    texts_a, texts_b = be.generate_many([requests_a, requests_b], params)   # in parallel
    shutdown_pools()  # (at exit they stop by themselves)
"""
from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Sequence

from scrit_utils.generation.base import GenerationRequest, SamplingParams

__all__ = ["ProcessPoolBackend", "shared_pool", "shutdown_pools"]

# in a worker process: its backends by (kind, settings, the model files' sizes and times), the most recent last
_WORKER_BACKENDS: dict[tuple, object] = {}
_WORKER_KEEP = 2  # a study alternates between a few models (a generator, the critic, a trained point)


def _init(threads: int) -> None:
    import signal

    import torch

    # the parent owns interrupts: a notebook kernel's shutdown interrupts its process group, and workers idle
    # in their queue would print a KeyboardInterrupt traceback each; they end when the parent's pool does
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)


def _stamp(model) -> tuple:
    """The model folder's files with their sizes and modification times (a hub id: nothing), so a folder
    written again is loaded again."""
    path = Path(str(model))
    if not path.is_dir():
        return ()
    return tuple(sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in path.iterdir() if f.is_file()))


def _backend(kind: str, kwargs: dict):
    from scrit_utils.generation import get_backend

    key = (kind, tuple(sorted(kwargs.items())), _stamp(kwargs.get("model")))
    backend = _WORKER_BACKENDS.pop(key, None) or get_backend(kind, **kwargs)
    _WORKER_BACKENDS[key] = backend
    while len(_WORKER_BACKENDS) > _WORKER_KEEP:
        _WORKER_BACKENDS.pop(next(iter(_WORKER_BACKENDS)))
    return backend


def _generate(kind: str, kwargs: dict, requests: list[GenerationRequest], params: SamplingParams) -> list[str]:
    return _backend(kind, kwargs).generate(requests, params, progress=False)


def _generate_many(kind: str, kwargs: dict, groups: list[list[GenerationRequest]],
                   params: SamplingParams) -> list[list[str]]:
    return _backend(kind, kwargs).generate_many(groups, params)


# worker pools by (workers, threads), shared by every ProcessPoolBackend of this process: starting the
# processes (spawn, importing torch and transformers) costs ~5 s, more than a sweep point's evaluation saves
_EXECUTORS: dict[tuple[int, int], ProcessPoolExecutor] = {}


def shared_pool(workers: int, threads: int) -> ProcessPoolExecutor:
    """This process's pool of ``workers`` spawned processes on ``threads`` torch threads each, started on first use
    (the generation backends' and the sweeps' training workers', :mod:`scrit_utils.study.train_workers`)."""
    ex = _EXECUTORS.get((workers, threads))
    if ex is None or getattr(ex, "_broken", False):
        ex = _EXECUTORS[workers, threads] = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"),
                                                                initializer=_init, initargs=(threads,))
    return ex


def shutdown_pools() -> None:
    """Stop every worker pool of this process now; the next ProcessPoolBackend starts a fresh one. At exit
    concurrent.futures stops them itself, but a notebook kernel's exit leaks their semaphores (a resource_tracker
    warning on the terminal): ``scrit run`` calls this in a last injected cell (``driver.TEARDOWN_SOURCE``)."""
    for ex in _EXECUTORS.values():
        ex.shutdown(wait=True, cancel_futures=True)
    _EXECUTORS.clear()


class ProcessPoolBackend:
    """``get_backend(kind, **kwargs)`` in each of ``workers`` processes on ``threads`` torch threads (a pool shared
    with every other such backend of this process, each worker keeping its last few models loaded)."""

    def __init__(self, kind: str, kwargs: dict, workers: int = 2, threads: int = 1):
        if workers < 2:
            raise ValueError(f"a process pool needs at least 2 workers, got {workers}")
        # a worker's backend may take several chunks per call itself (continuous batching: max_num_seqs)
        self.workers, self.per_worker = workers, 1
        if kind == "transformers":
            from scrit_utils.generation.transformers_backend import chunks_per_call

            self.per_worker = chunks_per_call(kwargs.get("batch_size", 64), kwargs.get("max_num_seqs"))
        self.parallel = workers * self.per_worker  # chunks generate_resumable hands over at once
        self.name = f"{kind} x{workers} processes"
        self.model_name = kwargs.get("model")
        self._kind, self._kwargs = kind, dict(kwargs)
        self._pool = shared_pool(workers, max(1, threads))

    def generate(self, requests: Sequence[GenerationRequest], params: SamplingParams, progress: bool = True) -> list[str]:
        return self._pool.submit(_generate, self._kind, self._kwargs, list(requests), params).result()

    def generate_many(self, groups: Sequence[Sequence[GenerationRequest]], params: SamplingParams) -> list[list[str]]:
        """The groups in parallel: one ``generate`` call per group, or with continuous batching the groups split
        evenly between the workers, consecutive groups in one call (one queue); the texts per group, in order."""
        if self.per_worker == 1:
            futures = [self._pool.submit(_generate, self._kind, self._kwargs, list(g), params) if g else None
                       for g in groups]
            return [f.result() if f is not None else [] for f in futures]
        share = -(-len(groups) // self.workers)
        slices = [[list(g) for g in groups[i:i + share]] for i in range(0, len(groups), share)]
        futures = [self._pool.submit(_generate_many, self._kind, self._kwargs, sl, params) for sl in slices]
        return [texts for f in futures for texts in f.result()]

    def shutdown(self) -> None:
        """Nothing to free here: the pool is shared and its workers keep only their last few models
        (:func:`shutdown_pools` stops the processes)."""

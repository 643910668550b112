"""The sweeps' SFT on several single-threaded worker processes: study points train side by side.

A toy critic's SFT step is small: its matrix products run near the CPU's peak, but the per-example
attention, the element-wise ops and Python's dispatch do not share well between two torch threads. On 2 cores
two processes with one thread each, training two study points at once, do each step about as fast as one of
them alone (``scripts/bench_sft.py --workers 2``), against one process with two threads training one point.

A profile asks for it with ``run.training_workers: 2``. Before the points of a sweep are evaluated
(:func:`scrit_utils.study.sweeps.run_jobs`), :func:`pretrain` trains every point whose ``sweep_train`` stage is
not finished, on the worker pool of :mod:`scrit_utils.generation.process_pool` (one pool per process, shared
with generation). Each worker runs :func:`scrit_utils.study.sweeps.run_train` exactly as the notebook would,
on one thread (:func:`threads_for`: a point the notebook trains itself under this key, as the rounds' parents, is
trained on one thread too): the stage's files and manifest are written there; a point killed half-way has no manifest and
trains again on the next run. The evaluations then find their trained stages finished.

The key is part of ``sweep_train``'s stage key when set (one thread rounds differently from two: the same
losses to about 1e-7, not the same bits). A stage's ``wall_time_s`` is its own worker's time, so with two
workers the sum of the stage times is about twice the notebook's wall time for the SFT share.

Usage::

    from scrit_utils.study import train_workers
    train_workers.pretrain(jobs, sweeps.train_stage, sweeps.run_train)   # a no-op where run.training_workers is 1
"""
from __future__ import annotations

import contextlib
import io
from concurrent.futures import as_completed
from typing import Callable, Sequence

from tqdm.auto import tqdm

__all__ = ["workers_of", "threads_for", "pretrain"]


def workers_of(cfg) -> int:
    """``run.training_workers`` of a point's training config, checked."""
    n = cfg.run.training_workers
    if n < 1:
        raise ValueError(f"{cfg.source}: run.training_workers = {n}: give 1 (train in this process) or more")
    return n


@contextlib.contextmanager
def threads_for(cfg):
    """One torch thread inside, where ``run.training_workers`` > 1: a point trains on one thread wherever it runs (in
    a worker, or here when a sweep trains it itself, as the rounds' parents), so its stage key fixes its rounding."""
    import torch

    before = torch.get_num_threads()
    if workers_of(cfg) > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _train(run_train: Callable, cfg, st03, examples: tuple) -> str:
    """In a worker: one point's ``sweep_train`` stage (``run_train``, sweeps'); returns its directory."""
    # the parent shows one bar over the points; the trainers' bars and log lines of two workers would interleave
    # on its terminal (an error still reaches the parent, raised from the future)
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        return str(run_train(cfg, st03, examples).dir)


def pretrain(jobs: Sequence, train_stage: Callable, run_train: Callable) -> int:
    """Train the unfinished stages of ``jobs`` (``train_stage(cfg, st03, examples)`` describes one,
    ``run_train(cfg, st03, examples)`` computes it: sweeps') on ``run.training_workers`` processes (the largest any job
    asks for); returns how many were trained. Jobs without training (the base) or examples are skipped."""
    from scrit_utils.generation.process_pool import shared_pool

    todo, seen = [], set()
    for job in jobs:
        if job.cfg_train is None or not job.examples or workers_of(job.cfg_train) < 2:
            continue
        st = train_stage(job.cfg_train, job.st03, job.examples)
        if st.done or st.dir in seen:  # two jobs with the same training set train it once
            continue
        seen.add(st.dir)
        todo.append(job)
    if not todo:
        return 0
    workers = max(workers_of(j.cfg_train) for j in todo)
    pool = shared_pool(workers, 1)
    futures = {pool.submit(_train, run_train, j.cfg_train, j.st03, j.examples): j for j in todo}
    bar = tqdm(total=len(futures), desc=f"SFT on {workers} workers", unit="point")
    try:
        for f in as_completed(futures):
            job = futures[f]
            try:
                f.result()
            except Exception as e:
                raise RuntimeError(f"SFT of point {job.study}/{job.arm} x={job.x} seed {job.seed} failed in a "
                                   f"training worker: {e}") from e
            bar.update()
    finally:
        bar.close()
    return len(todo)

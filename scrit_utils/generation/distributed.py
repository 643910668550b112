"""Generation stages sharded over Ray workers (``pip install -e '.[distributed]'``).

:class:`RayGenerator` is itself a :class:`~scrit_utils.generation.base.Backend`: it starts
``num_workers`` Ray actors, each holding one generation backend built by
:func:`scrit_utils.generation.get_backend` from a :class:`WorkerSpec`, cuts the requests into
chunks and hands chunks to whichever actor is free (dynamic load balancing, so one slow
chunk does not stall the rest). Results are put back in request order.

Sharding does not change the text: every request carries its own seed (derived from the
profile seed and the item's identity), and the backends sample with per-request randomness
(the transformers backend draws token ``t`` of a request from a pure function of
``(seed, t)``; vLLM gets one seeded ``SamplingParams`` per request), so a request's completion
does not depend on which worker or which chunk it lands in. Greedy decoding is argmax.

On a GPU cluster each actor reserves ``num_gpus_per_worker`` GPUs (Ray sets
``CUDA_VISIBLE_DEVICES`` for it), e.g. one vLLM engine per GPU::

    ray start --head                     # on the head node; `ray start --address=...` on the others
    spec = WorkerSpec("vllm", {"model": "Qwen/Qwen2.5-7B-Instruct"}, num_workers=8, num_gpus_per_worker=1)
    gen = RayGenerator(spec, address="auto")
    texts = gen.generate(requests, SamplingParams(max_new_tokens=2048))
    gen.shutdown()

On CPU (tests): ``RayGenerator(WorkerSpec("transformers", {"model": path}, num_workers=2), num_cpus=2)``.

Why actors and not Ray Data ``map_batches``: a stage's requests already fit in the driver's
memory, chat messages are nested lists that Ray Data would push through Arrow, and actors make
the reassembly in request order explicit. ``map_batches`` with an actor pool is the better
tool when inputs come from files too large for one machine.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from scrit_utils.generation.base import GenerationRequest, SamplingParams
from scrit_utils.generation import get_backend


@dataclass(frozen=True)
class WorkerSpec:
    """How each Ray worker builds its backend, and what it reserves."""

    kind: str  # transformers | vllm | openai (any get_backend kind)
    kwargs: dict = field(default_factory=dict)  # get_backend(kind, **kwargs) inside the worker
    num_workers: int = 2
    num_gpus_per_worker: float = 0.0  # vLLM: = tensor_parallel_size of each engine
    num_cpus_per_worker: float = 1.0
    chunk_size: int = 64  # requests per task handed to a worker
    torch_threads: int = 1  # torch CPU threads inside each worker (0 = torch default)

    def __post_init__(self):
        if self.num_workers < 1:
            raise ValueError(f"num_workers must be >= 1, got {self.num_workers}")
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {self.chunk_size}")
        if self.num_gpus_per_worker < 0 or self.num_cpus_per_worker < 0:
            raise ValueError("num_gpus_per_worker and num_cpus_per_worker must be >= 0")


def chunk_indices(n: int, chunk_size: int) -> list[range]:
    """Contiguous index ranges of at most ``chunk_size`` covering ``range(n)``."""
    return [range(i, min(i + chunk_size, n)) for i in range(0, n, chunk_size)]


class _Worker:
    """Body of the Ray actor: one backend, built once, used for many chunks."""

    def __init__(self, kind: str, kwargs: dict, torch_threads: int):
        if torch_threads > 0:
            os.environ["OMP_NUM_THREADS"] = str(torch_threads)
            try:
                import torch

                torch.set_num_threads(torch_threads)
            except ImportError:  # pragma: no cover - openai workers need no torch
                pass

        self.backend = get_backend(kind, **kwargs)
        self.pid = os.getpid()

    def generate(self, chunk_id: int, requests: list, params: SamplingParams) -> tuple[int, list[str], int, float]:
        t0 = time.perf_counter()
        texts = self.backend.generate(requests, params, progress=False)
        return chunk_id, texts, self.pid, time.perf_counter() - t0


def init_ray(address: str | None = None, **init_kwargs: Any):
    """``ray.init`` unless already connected; no dashboard, no usage stats by default."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError as e:
        raise ImportError(f"scrit_utils.generation.distributed needs Ray: pip install -e '.[distributed]' ({e})") from None
    if not ray.is_initialized():
        init_kwargs.setdefault("include_dashboard", False)
        init_kwargs.setdefault("log_to_driver", False)
        ray.init(address=address, **init_kwargs)
    return ray


class RayGenerator:
    """A Backend that fans requests out to Ray actors; see the module docstring."""

    def __init__(self, spec: WorkerSpec, address: str | None = None, **ray_init_kwargs: Any):
        self.spec = spec
        self.name = f"ray[{spec.kind}x{spec.num_workers}]"
        ray = init_ray(address, **ray_init_kwargs)
        self._ray = ray
        actor_cls = ray.remote(num_cpus=spec.num_cpus_per_worker, num_gpus=spec.num_gpus_per_worker)(_Worker)
        self.actors = [actor_cls.remote(spec.kind, dict(spec.kwargs), spec.torch_threads) for _ in range(spec.num_workers)]
        self.last_run: dict[str, Any] = {}

    def generate(
        self, requests: Sequence[GenerationRequest], params: SamplingParams, progress: bool = True
    ) -> list[str]:
        from tqdm.auto import tqdm

        requests = list(requests)
        if not requests:
            return []
        ray = self._ray
        chunks = chunk_indices(len(requests), self.spec.chunk_size)
        params_ref = ray.put(params)
        pending = list(range(len(chunks)))[::-1]  # pop() takes chunk 0 first
        in_flight: dict[Any, int] = {}
        idle = list(self.actors)
        out: list[str | None] = [None] * len(requests)
        pids: dict[int, int] = {}
        busy_s = 0.0
        t0 = time.perf_counter()
        with tqdm(total=len(requests), disable=not progress, desc=self.name, unit="req", dynamic_ncols=True) as bar:
            while pending or in_flight:
                while pending and idle:
                    c = pending.pop()
                    actor = idle.pop()
                    ref = actor.generate.remote(c, [requests[i] for i in chunks[c]], params_ref)
                    in_flight[ref] = actor
                done, _ = ray.wait(list(in_flight), num_returns=1)
                for ref in done:
                    actor = in_flight.pop(ref)
                    c, texts, pid, secs = ray.get(ref)  # re-raises a worker's exception here
                    if len(texts) != len(chunks[c]):
                        raise RuntimeError(f"worker {pid} returned {len(texts)} texts for chunk {c} of {len(chunks[c])}")
                    for i, t in zip(chunks[c], texts):
                        out[i] = t
                    pids[pid] = pids.get(pid, 0) + len(texts)
                    busy_s += secs
                    idle.append(actor)
                    bar.update(len(texts))
        self.last_run = {"chunks": len(chunks), "requests_per_worker_pid": pids,
                         "wall_s": time.perf_counter() - t0, "worker_busy_s": busy_s}
        return out  # type: ignore[return-value]

    def shutdown(self) -> None:
        for a in self.actors:
            self._ray.kill(a)
        self.actors = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()

"""Helpers shared by the loop stages (01-04): backends, resumable generation, figures, tables.

Usage::

    from scrit_utils.pipeline import common
    backend = common.make_backend(cfg, cfg.models.critic)
    recs = common.generate_resumable(backend, out, items, item_id=lambda it: it.id,
                                     request=lambda it: GenerationRequest(...),
                                     record=lambda it, text: CritiqueRecord(...),
                                     params=common.sampling(cfg.generation.critique), chunk_size=32)
    common.save_figure(cfg, fig, "01_solutions")     # results/figures/<profile>/01_solutions.{png,pdf}
    common.save_table(cfg, df, "01_per_generator")   # results/tables/<profile>/01_per_generator.{csv,md}
"""
from __future__ import annotations

import inspect
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

from tqdm.auto import tqdm

from scrit_utils.core import config as _config, inputs
from scrit_utils import worlds
from scrit_utils.generation import GenerationRequest, SamplingParams, get_backend
from scrit_utils.generation.process_pool import ProcessPoolBackend
from scrit_utils.core.records import ResumableJsonl, atomic_write_text

T = TypeVar("T")

_BACKENDS: dict[tuple, Any] = {}
# what make_backend reads: every stage that generates declares these (beside run.seed and its sampling)
BACKEND_KEYS = (
    "generation.backend",
    "generation.batch_size",  # chunking and batch composition (padding) of every generate call
    "generation.dtype",  # a bf16 GPU run and a float32 CPU run differ
    "generation.device",
    "generation.base_url",
    "generation.tensor_parallel_size",
    # continuous batching and worker processes: the texts of static batches in one process up to float rounding,
    # which at T=1.5 flipped 2 of 32,000 sampled solutions in the v3 core (CHANGELOG 2026-12-08); at their
    # defaults they are left out of the key (hashed when set), so the keys of profiles without them stay
    "generation.max_num_seqs",
    "run.generation_workers",
    # the world chooses its decode-time rule (toy: world.arith.verdict_rule); the whole section costs no
    # cache sharing, since every stage downstream of 01 already depends on it through 01's hash
    "world",
)


def setup_torch(cfg: _config.StudyConfig) -> None:
    """Apply ``run.torch_threads`` (0 keeps torch's default)."""
    if cfg.run.torch_threads > 0:
        os.environ.setdefault("OMP_NUM_THREADS", str(cfg.run.torch_threads))
        import torch

        torch.set_num_threads(cfg.run.torch_threads)


def sampling(s: _config.StageSampling, stop: Sequence[str] = ()) -> SamplingParams:
    return SamplingParams(max_new_tokens=s.max_new_tokens, temperature=s.temperature, top_p=s.top_p, stop=tuple(stop))


def make_backend(cfg: _config.StudyConfig, model: str, cache: bool = True):
    """A generation backend for ``model`` (local dir or hub id) from ``cfg.generation``.

    Only the keyword arguments the backend's constructor accepts are passed, so one profile
    section serves transformers, vLLM and OpenAI-compatible backends. Backends are cached per
    (kind, model) inside one process (a notebook reuses the loaded model across cells).
    """
    g = cfg.generation
    world = worlds.get(cfg)
    ref = _config.model_ref(model)
    workers = cfg.run.generation_workers
    if workers > 1 and (g.backend != "transformers" or world.decode_rule):
        raise ValueError(f"run.generation_workers = {workers}: worker processes serve the transformers backend "
                         f"without a decode rule (generation.backend is {g.backend!r}, the world's decode rule "
                         f"{world.decode_rule!r})")
    key = (g.backend, ref, g.batch_size, g.dtype, g.device, world.decode_rule, workers, g.max_num_seqs)
    inputs.record_model(ref)  # also when the backend comes from the cache: the running stage uses it
    if cache and key in _BACKENDS and getattr(_BACKENDS[key], "alive", True):
        return _BACKENDS[key]  # (a vLLM backend whose engine another one replaced is rebuilt below)
    if g.backend == "transformers":
        from scrit_utils.generation.transformers_backend import TransformersBackend as cls
    elif g.backend == "vllm":
        from scrit_utils.generation.vllm_backend import VLLMBackend as cls
    else:
        from scrit_utils.generation.openai_backend import OpenAIBackend as cls
    wanted = {
        "model": ref,
        "batch_size": g.batch_size,
        "dtype": g.dtype,
        "device": g.device,
        "base_url": g.base_url,
        "tensor_parallel_size": g.tensor_parallel_size,
        "max_num_seqs": g.max_num_seqs,
        "seed": cfg.run.seed,
    }
    params = inspect.signature(cls).parameters
    if world.decode_rule and "decode_hook" not in params:
        raise ValueError(f"the world's decode rule {world.decode_rule!r} is implemented only by the "
                         f"transformers backend (generation.backend is {g.backend!r}); switch it off")
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())
    kw = {k: v for k, v in wanted.items() if (k in params or (takes_kwargs and k == "model")) and v is not None}
    if workers > 1:  # the cores split between the workers (generation/process_pool.py)
        threads = max(1, (cfg.run.torch_threads or os.cpu_count() or workers) // workers)
        backend = ProcessPoolBackend(g.backend, kw, workers=workers, threads=threads)
    else:
        backend = get_backend(g.backend, **kw)
    if world.decode_rule:  # e.g. the toy world's verdict rule, a hook on the backend's decode loop
        backend.decode_hook = world.decode_hook(backend.tokenizer)
    if cache:
        _BACKENDS[key] = backend
    return backend


def release_backends() -> None:
    """Free every model this process holds, between generators and before training: vLLM engines are shut
    down through vLLM's API (:meth:`~scrit_utils.generation.vllm_backend.VLLMBackend.shutdown`, also one
    built outside this cache); then the cache is emptied and collected (transformers models go with it)."""
    import gc
    import sys

    for backend in list(_BACKENDS.values()):
        if callable(getattr(backend, "shutdown", None)):
            backend.shutdown()
    _BACKENDS.clear()
    vb = sys.modules.get("scrit_utils.generation.vllm_backend")  # imported only where a vLLM backend was built
    if vb is not None:
        vb.shutdown_live_engine()
    gc.collect()


def chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    size = max(1, size)
    return [items[i : i + size] for i in range(0, len(items), size)]


def generate_resumable(
    backend,
    out: ResumableJsonl,
    items: Sequence[T],
    item_id: Callable[[T], str],
    request: Callable[[T], GenerationRequest],
    record: Callable[[T, str], Any],
    params: SamplingParams,
    chunk_size: int,
    desc: str = "generate",
) -> int:
    """Generate one record per item into ``out``, chunk by chunk, skipping finished items.

    Chunks are cut from the *full* item list at fixed positions, and a chunk with any
    missing id is regenerated whole (duplicates are skipped on append). So a resumed run
    feeds the backend exactly the batches an uninterrupted run would: same seeds, same
    batch composition, same text. Returns the number of new records.
    """
    return generate_files_resumable(backend, [ResumableSet(out, items, item_id, request, record, chunk_size)],
                                    params, desc)


@dataclass(frozen=True)
class ResumableSet:
    """One output file of :func:`generate_files_resumable` and the items it holds a record of."""

    out: ResumableJsonl
    items: Sequence[Any]
    item_id: Callable[[Any], str]
    request: Callable[[Any], GenerationRequest]
    record: Callable[[Any, str], Any]
    chunk_size: int


def generate_files_resumable(backend, sets: Sequence[ResumableSet], params: SamplingParams,
                             desc: str = "generate") -> int:
    """:func:`generate_resumable` of several files with one sampling, their chunks handed to the backend together.

    Each file's chunks are cut from its own item list at fixed positions, as alone; a backend with worker
    processes or continuous batching (``parallel`` > 1) then takes ``parallel`` chunks at once whichever file
    they belong to, so small sets (an evaluation's scenarios) share one queue instead of each ending on a
    half-empty batch. With ``parallel`` 1 the calls are the files' own, one after another."""
    if all(st.out.finalized for st in sets):
        return 0
    todo = []  # (set, chunk) in file order
    total = done = 0
    for st in sets:
        if st.out.finalized:
            continue
        ids = [st.item_id(it) for it in st.items]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{st.out.path}: duplicate item ids in the generation list")
        mine = [c for c in chunks(list(zip(ids, st.items)), st.chunk_size) if any(i not in st.out.done_ids for i, _ in c)]
        todo += [(st, c) for c in mine]
        total += len(st.items)
        done += len(st.items) - sum(len(c) for c in mine)
    # a backend with worker processes (``parallel`` > 1) takes that many chunks at once, one generate call each,
    # so every chunk is generated exactly as alone (generation/process_pool.py)
    par = max(1, int(getattr(backend, "parallel", 1)))
    n_new = 0
    with tqdm(total=total, initial=done, desc=desc, unit="item") as bar:
        for g in range(0, len(todo), par):
            group = todo[g:g + par]
            reqs = [[st.request(it) for _, it in c] for st, c in group]
            texts = backend.generate_many(reqs, params) if par > 1 else [backend.generate(reqs[0], params, progress=False)]
            for (st, c), ts in zip(group, texts):
                if len(ts) != len(c):
                    raise RuntimeError(f"backend returned {len(ts)} texts for {len(c)} requests")
                n_new += st.out.append(st.record(it, t) for (_, it), t in zip(c, ts))
                bar.update(len(c))
    return n_new


class ResumableBackend:
    """A :class:`~scrit_utils.generation.Backend` that writes what it generates to a stage file.

    Code written against the plain backend interface (:mod:`scrit_utils.pipeline.benchmark_eval`)
    becomes resumable inside a stage: ``generate`` runs :func:`generate_resumable` over the
    requests (same chunks, so the same batches as an uninterrupted run), finalizes ``out`` and
    returns the texts in request order, read back from the file. ``record(request, text)`` makes
    the stored record; it must keep the request id under ``id`` and the text under ``text``. One
    instance serves one ``generate`` call (one file).
    """

    def __init__(self, backend, out: ResumableJsonl, record: Callable[[GenerationRequest, str], Any],
                 chunk_size: int, desc: str = "generate"):
        self.backend, self.out, self.record, self.chunk_size, self.desc = backend, out, record, chunk_size, desc
        self.name = getattr(backend, "name", type(backend).__name__)
        self.model_name = getattr(backend, "model_name", None)

    def generate(self, requests: Sequence[GenerationRequest], params: SamplingParams, progress: bool = True) -> list[str]:
        generate_resumable(self.backend, self.out, list(requests), item_id=lambda r: r.id, request=lambda r: r,
                           record=self.record, params=params, chunk_size=self.chunk_size, desc=self.desc)
        self.out.finalize()
        texts = {}
        for rec in self.out.records():
            texts[rec["id"] if isinstance(rec, dict) else rec.id] = rec["text"] if isinstance(rec, dict) else rec.text
        missing = [r.id for r in requests if r.id not in texts]
        if missing:  # a finalized file from another item list: regenerating silently would hide it
            raise RuntimeError(f"{self.out.path}: no generated text for {len(missing)} requests (first {missing[0]!r})")
        return [texts[r.id] for r in requests]


class GreedyMemoBackend:
    """A backend that generates each distinct greedy prompt once.

    Greedy decoding is a function of the prompt, so within one evaluation a prompt asked again (in
    the toy world about half of the "own" scenario: the critic's own greedy solution is often the
    benchmark's correct solution, word for word) gets the text generated the first time. Sampled
    requests pass straight through: their seeds make each one a separate draw."""

    def __init__(self, backend):
        self.backend = backend
        self.name = getattr(backend, "name", type(backend).__name__)
        self.model_name = getattr(backend, "model_name", None)
        self.memo: dict = {}
        self.reused = 0  # requests answered from the memo
        self.parallel = getattr(backend, "parallel", 1)

    @staticmethod
    def _keys(requests: Sequence[GenerationRequest], params: SamplingParams) -> list:
        return [(json.dumps(r.messages, sort_keys=True), params) for r in requests]

    @staticmethod
    def _new(keys: Sequence, requests: Sequence[GenerationRequest], known) -> dict:
        """``{key: request}`` of the distinct prompts not in ``known``, first occurrence each, in order."""
        todo: dict = {}
        for k, r in zip(keys, requests):
            if k not in known and k not in todo:
                todo[k] = r
        return todo

    def generate(self, requests: Sequence[GenerationRequest], params: SamplingParams, progress: bool = True) -> list[str]:
        if not params.greedy:
            return self.backend.generate(requests, params, progress=progress)
        keys = self._keys(requests, params)
        todo = self._new(keys, requests, self.memo)
        if todo:
            texts = self.backend.generate(list(todo.values()), params, progress=progress)
            self.memo.update(zip(todo, texts))
        self.reused += len(requests) - len(todo)
        return [self.memo[k] for k in keys]

    def generate_many(self, groups: Sequence[Sequence[GenerationRequest]], params: SamplingParams) -> list[list[str]]:
        """:meth:`generate` of each group in turn, with the inner backend's calls run in parallel: a group's new
        prompts exclude those of the groups before it, as if those had already been generated."""
        if not params.greedy:
            return self.backend.generate_many(groups, params)
        keys = [self._keys(g, params) for g in groups]
        seen, todos = set(self.memo), []
        for ks, g in zip(keys, groups):
            todos.append(self._new(ks, g, seen))
            seen.update(todos[-1])
        for todo, texts in zip(todos, self.backend.generate_many([list(t.values()) for t in todos], params)):
            self.memo.update(zip(todo, texts))
        self.reused += sum(len(g) for g in groups) - sum(len(t) for t in todos)
        return [[self.memo[k] for k in ks] for ks in keys]


# --- results: figures and tables -----------------------------------------------------
@dataclass
class StageReport:
    """What a stage's ``run`` hands its notebook: the notebook only displays these.

    ``tables`` and ``figures`` are saved under ``results/{tables,figures}/<profile>/<name>`` as
    they are added (:meth:`table`, :meth:`figure`); ``examples`` (sample rows, worked examples,
    one-line summaries) are shown but not saved. Figures are closed after saving, so a notebook
    shows each one where it calls ``display`` on it, once.
    """

    stage: Any  # the finished artifacts.Stage
    counts: dict
    tables: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    examples: dict[str, Any] = field(default_factory=dict)

    def table(self, cfg: _config.StudyConfig, name: str, df) -> None:
        save_table(cfg, df, name)
        self.tables[name] = df

    def figure(self, cfg: _config.StudyConfig, name: str, fig) -> None:
        import matplotlib.pyplot as plt

        save_figure(cfg, fig, name)
        plt.close(fig)
        self.figures[name] = fig


def results_dir(cfg: _config.StudyConfig, kind: str) -> Path:
    d = _config.resolve_path(cfg.run.results_dir) / kind / cfg.run.name
    d.mkdir(parents=True, exist_ok=True)
    return d


def save_figure(cfg: _config.StudyConfig, fig, name: str) -> list[Path]:
    """Save ``fig`` as PNG and PDF under ``results/figures/<profile>/``."""
    d = results_dir(cfg, "figures")
    paths = []
    for ext in ("png", "pdf"):
        p = d / f"{name}.{ext}"
        tmp = d / f".{name}.tmp.{ext}"
        fig.savefig(tmp, dpi=150, bbox_inches="tight")
        os.replace(tmp, p)
        paths.append(p)
    return paths


def save_table(cfg: _config.StudyConfig, df, name: str, floatfmt: str = ".3f") -> list[Path]:
    """Save a DataFrame as CSV and Markdown under ``results/tables/<profile>/``."""
    d = results_dir(cfg, "tables")
    csv, md = d / f"{name}.csv", d / f"{name}.md"
    atomic_write_text(csv, df.to_csv(index=False))
    atomic_write_text(md, _markdown(df, floatfmt) + "\n")
    return [csv, md]


def _markdown(df, floatfmt: str) -> str:
    """Markdown table without the optional ``tabulate`` dependency."""
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return format(v, floatfmt)
        return str(v).replace("|", "\\|").replace("\n", " ")

    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines)


def close_figure(fig) -> None:
    """Free a saved figure outside notebooks; inside one, leave it to be shown inline."""
    if not _in_notebook():
        import matplotlib.pyplot as plt

        plt.close(fig)


def plot_style() -> None:
    import matplotlib

    matplotlib.use("Agg") if not _in_notebook() else None
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython

        return get_ipython() is not None and "IPKernelApp" in get_ipython().config
    except Exception:
        return False

"""Evaluate one critic on named benchmarks, as stage 04 does, outside the stage cache (``scrit eval critic``).

A benchmark is a row of :data:`BENCHES` (name -> loader), never a code branch: the loader turns the
data on disk into the uniform item dicts of :mod:`scrit_utils.pipeline.benchmark_eval` (the sets
``wrong`` / ``mix`` for CC-Acc, ``processbench`` for EI-F1) and lists the files it read.
:func:`run` then scores the critic exactly as stage 04's :func:`scrit_utils.pipeline.training.evaluate`
does, so the numbers equal stage 04's for the same model, items and decoding:

- items: at most ``n_items`` per task, the same seeded sample as stage 04 (``training._cap`` with the seed);
- the prompt is the direct (no-reference) critic prompt, per-item request seeds from
  :func:`~scrit_utils.generation.derive_seed` on ``seed`` (as ``run.seed`` in a profile);
- the sets are generated in stage 04's order (own solutions, then ``wrong``, ``mix``, ``own``,
  ``processbench``), in chunks of ``batch_size`` through one memo of greedy prompts (stage 04's
  ``GreedyMemoBackend``): a chunk feeds the backend the same batch, so the same padding, as in stage 04;
- "own" is the critic's own greedy solutions to the ``mix`` questions (for a trained critic stage 04
  uses the *base* critic's solutions: pass them as ``own_items``, its ``own_items.json``).

Specs: ``realcritic[:TASK+TASK]``, ``processbench[:SUBSET+SUBSET]``, ``toy[:DIR|PROFILE.yaml]``; several joined
by ``,``. Real data is read from the data folder (``Context.data_dir``, else the project's setting,
:mod:`scrit_utils.core.data_dir`): ``<data>/realcritic``, ``<data>/processbench``, and the answer sources of
:func:`scrit_utils.worlds.real.default_answer_sources` for strict EI-F1.
``toy:DIR`` reads toy benchmarks in RealCritic / ProcessBench layout (e.g. the ``bench/`` of a
``04_benchmark`` stage, the one the study's evaluations read); ``toy:PROFILE.yaml`` builds them as that profile's stage 04 does (plain ``toy``:
``configs/toy.yaml``), and takes the profile's prompt variant and ``generation.evaluation.max_new_tokens``.

Usage::

    from scrit_utils.pipeline import critic_bench as cb
    benches = cb.load_benches("realcritic:gsm8k,processbench:gsm8k", cb.Context(data_dir=Path("../shared/data")))
    res = cb.run(backend, benches, cb.Settings(n_boot=200))      # JSON-ready: metrics, rows, data files
"""
from __future__ import annotations

import dataclasses
import hashlib
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from scrit_utils.core import artifacts, config as _config
from scrit_utils.core import data_dir as _data
from scrit_utils.critique import prompts
from scrit_utils.generation import SamplingParams
from scrit_utils.pipeline import benchmark_eval as critic_eval
from scrit_utils.pipeline import common, training
from scrit_utils import worlds
from scrit_utils.worlds import real
from scrit_utils.worlds.arith_world import ArithWorld
from scrit_utils.worlds.base import SCENARIO_FILES

BENCH_SEP, TASK_SEP = ",", "+"


class BenchError(ValueError):
    """Bad benchmark spec or missing data; the message names the spec / folder and what to do."""


@dataclass(frozen=True)
class Context:
    """What loaders need besides their own argument."""

    data_dir: Path | None = None  # holds realcritic/, processbench/, gsm8k/, math_eval/ (None: the project's setting)
    seed: int = 0  # item sample (n_items) and toy build, as run.seed in a profile
    n_items: int | None = None  # at most this many items per task (stage 04's evaluation.n_items)
    scratch: Path | None = None  # where plain ``toy`` builds its benchmark files (default: a temp dir)


@dataclass
class Bench:
    """A loaded benchmark: its sets of item dicts, the files read, and its decoding defaults."""

    name: str
    arg: str | None
    sets: dict[str, list[dict]]
    files: dict[str, str]  # sha256 of every file read, by path (below the data folder where it lies there)
    variant: str  # default prompt variant (compact for the toy models, full for real LLMs)
    max_new_tokens: int
    info: dict = field(default_factory=dict)


# --- loaders --------------------------------------------------------------------------------------
def data_root(ctx: Context) -> Path:
    """The data folder: ``ctx.data_dir``, else :func:`scrit_utils.core.data_dir.data_dir` (SCRIT_DATA_DIR,
    ../shared/data, data/real)."""
    return _data.data_dir(ctx.data_dir)


def fetch_hint(ctx: Context) -> str:
    return f"fetch it with `{_data.fetch_command(data_root(ctx))}` (or pass --data-dir DIR)"


def _data_root(ctx: Context, sub: str, what: str) -> Path:
    root = data_root(ctx) / sub
    if not root.is_dir():
        raise BenchError(f"{what} data not found: {root} does not exist; {fetch_hint(ctx)}")
    return root


def _names(arg: str | None) -> list[str] | None:
    return [t for t in arg.split(TASK_SEP) if t] if arg else None


def load_realcritic(arg: str | None, ctx: Context) -> Bench:
    """RealCritic's ``wrong_data`` / ``mix_data`` for the tasks in ``arg`` (default: all present)."""
    root = _data_root(ctx, "realcritic", "RealCritic")
    sets, files = {}, []
    for scen, folder in SCENARIO_FILES.items():
        items = real.load_realcritic(root, folder, tasks=_names(arg))
        # the fields RealWorld.benchmark_items gives stage 04
        sets[scen] = [{"id": it.id, "task": it.task, "question": it.question, "gt": it.gt, "solution": it.solution,
                       "original_correct": bool(it.label_correct)} for it in items]
        files += [root / folder / t / "test.jsonl" for t in dict.fromkeys(it.task for it in items)]
    return Bench("realcritic", arg, sets, checksums(files, data_root(ctx)), "full", 2048)


def load_processbench(arg: str | None, ctx: Context) -> Bench:
    """ProcessBench subsets in ``arg`` (default: all present), with the reference answers found in the
    data folder attached (strict EI-F1 is scored when every item has one)."""
    root = _data_root(ctx, "processbench", "ProcessBench")
    items = real.load_processbench(root, subsets=_names(arg))
    subsets = list(dict.fromkeys(it.subset for it in items))
    sources = {s: p for s, p in real.default_answer_sources(data_root(ctx)).items() if s in subsets}
    items, coverage = real.attach_processbench_answers(items, sources)
    rows = [{"id": f"{it.subset}/{it.id}", "task": it.subset, "question": it.problem,
             "solution": prompts.format_solution(it.steps), "label": it.label, "gt": it.answer} for it in items]
    files = [root / f"{s}.json" for s in subsets]
    for p in sources.values():
        files += sorted(f for f in Path(p).rglob("*") if f.is_file()) if Path(p).is_dir() else [Path(p)]
    info = {"answer_coverage": {s: dataclasses.asdict(c) for s, c in coverage.items()}}
    return Bench("processbench", arg, {"processbench": rows}, checksums(files, data_root(ctx)), "full", 2048, info)


def _toy_files(d: Path) -> list[Path]:
    return [d / "realcritic" / f / "arith" / "test.jsonl" for f in SCENARIO_FILES.values()] + \
        [d / "processbench" / "arith.json"]


def load_toy(arg: str | None, ctx: Context) -> Bench:
    """Toy benchmarks: ``toy:DIR`` reads a folder in RealCritic / ProcessBench layout (e.g. a ``04_benchmark``
    stage's ``bench/``); ``toy:PROFILE.yaml`` (plain ``toy``: ``configs/toy.yaml``) builds them as that
    profile's stage 04 does, with ``seed`` and, when given, ``n_items`` in place of the profile's."""
    if not arg or arg.endswith((".yaml", ".yml")):
        return _build_toy(arg or "configs/toy.yaml", ctx)
    d = Path(arg)
    missing = [str(f) for f in _toy_files(d) if not f.is_file()]
    if missing:
        raise BenchError(f"toy:{d}: not a toy benchmark folder (missing {missing[0]}); pass the bench/ "
                         "folder of a 04_benchmark stage, a profile (toy:configs/smoke.yaml) or plain `toy`")
    try:  # the world's own reader: the toy items stage 04 scores (it reads no profile key)
        sets = ArithWorld(cfg=None).benchmark_items(d)
    except (ValueError, KeyError) as e:
        raise BenchError(f"toy:{d}: {e}") from None
    return Bench("toy", arg, sets, checksums(_toy_files(d), None), "compact", 288, {})


def _build_toy(profile: str, ctx: Context) -> Bench:
    over: dict[str, Any] = {"run.seed": ctx.seed}
    if ctx.n_items is not None:
        over["evaluation.n_items"] = ctx.n_items
    try:
        cfg = _config.load(profile, overrides=over)
    except (OSError, ValueError) as e:
        raise BenchError(f"toy:{profile}: {e}") from None
    world = worlds.get(cfg)
    if not world.builds_benchmarks:
        raise BenchError(f"toy:{profile}: its world ({type(world).__name__}) builds no toy benchmarks")
    with tempfile.TemporaryDirectory(prefix="scrit-toy-bench-") as tmp:
        d = Path(tmp) / "bench"
        built = world.build_benchmarks(d)  # the profile's own recipe: generators, split, sizes
        b = load_toy(str(d), ctx)
        # the folder is gone after this: name the files by their place in the benchmark layout
        b.files = {Path(k).relative_to(d.resolve()).as_posix(): v for k, v in b.files.items()}
    b.arg, b.info = profile, {"profile": profile, "built": built}
    b.variant, b.max_new_tokens = cfg.generation.prompt_variant, cfg.generation.evaluation.max_new_tokens
    return b


#: benchmark name -> loader(arg, context); a new benchmark is a row here
BENCHES: dict[str, Callable[[str | None, Context], Bench]] = {
    "realcritic": load_realcritic,
    "processbench": load_processbench,
    "toy": load_toy,
}


def parse_specs(specs: str | Sequence[str]) -> list[tuple[str, str | None]]:
    """``"realcritic:gsm8k+math,processbench"`` -> ``[("realcritic", "gsm8k+math"), ("processbench", None)]``."""
    parts = [p.strip() for s in ([specs] if isinstance(specs, str) else specs) for p in s.split(BENCH_SEP)]
    out = []
    for p in filter(None, parts):
        name, sep, arg = p.partition(":")
        if name not in BENCHES:
            raise BenchError(f"unknown benchmark {name!r} in --bench; known: {', '.join(BENCHES)} "
                             f"(form NAME[:ARG], several joined by {BENCH_SEP!r}; tasks joined by {TASK_SEP!r})")
        if any(n == name for n, _ in out):
            raise BenchError(f"benchmark {name!r} named twice in --bench; list its tasks once, joined by {TASK_SEP!r}")
        out.append((name, arg if sep and arg else None))
    if not out:
        raise BenchError(f"--bench names no benchmark; known: {', '.join(BENCHES)}")
    return out


def load_benches(specs: str | Sequence[str], ctx: Context) -> list[Bench]:
    """Every benchmark of ``specs``, each set capped at ``ctx.n_items`` per task like stage 04."""
    out = []
    for name, arg in parse_specs(specs):
        try:
            b = BENCHES[name](arg, ctx)
        except real.RealDataError as e:
            raise BenchError(f"{name}{':' + arg if arg else ''}: {e}; {fetch_hint(ctx)}") from None
        # the same seeded per-task sample as stage 04's benchmark_items
        b.sets = {k: training._cap(v, ctx.n_items, ctx.seed, k) for k, v in b.sets.items()}
        out.append(b)
    return out


# --- provenance --------------------------------------------------------------------------------------
def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def checksums(paths: Sequence[Path], data_dir: Path | None) -> dict[str, str]:
    """sha256 of every file read, keyed by its path below ``data_dir`` where it lies there."""
    out = {}
    root = Path(data_dir).resolve() if data_dir is not None else None
    for f in sorted({Path(p).resolve() for p in paths}):
        key = f.relative_to(root).as_posix() if root is not None and f.is_relative_to(root) else str(f)
        out[key] = file_sha256(f)
    return out


def model_provenance(model: str, revision: str | None = None) -> dict:
    """A local model dir: sha256 over its safetensors files (name and content, sorted) and each file's
    sha256, beside the project's whole-dir digest; a hub id: the commit its revision resolves to."""
    ref = _config.model_ref(model)
    d = Path(ref)
    if d.is_dir():
        weights = sorted(d.glob("*.safetensors"))
        per_file = {f.name: file_sha256(f) for f in weights}
        h = hashlib.sha256()
        for name, digest in per_file.items():
            h.update(f"{name}\0{digest}\0".encode())
        return {"ref": model, "source": "local", "path": str(d), "safetensors_sha256": h.hexdigest() if per_file else None,
                "safetensors_files": per_file, "dir_digest": artifacts.model_digest(d)}
    out = {"ref": model, "source": "hub", "revision": revision or "main", "commit": None}
    try:  # the commit answers "which weights" where the hub can be reached; offline runs say why not
        from huggingface_hub import HfApi

        out["commit"] = HfApi().model_info(model, revision=revision).sha
    except Exception as e:  # noqa: BLE001 - any failure leaves the revision unresolved, recorded as such
        out["unresolved"] = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
    return out


# --- running ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Settings:
    """Decoding and scoring; None takes the benchmark's default (variant, max_new_tokens)."""

    variant: str | None = None
    max_new_tokens: int | None = None
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    batch_size: int = 64
    scenarios: tuple[str, ...] = ("wrong", "mix", "own")
    n_boot: int = 1000
    boot_seed: int = 0
    grade_jobs: int | None = 1
    progress: bool = False

    def __post_init__(self) -> None:
        unknown = [s for s in self.scenarios if s not in critic_eval.CC_SCENARIOS]
        if unknown:
            raise BenchError(f"unknown CC scenario(s) {unknown}; known: {list(critic_eval.CC_SCENARIOS)}")

    def eval_config(self, bench: Bench) -> critic_eval.CriticEvalConfig:
        """Stage 04's :func:`training.eval_config` with these values: same mode, seeds and solve params."""
        params = SamplingParams(max_new_tokens=self.max_new_tokens or bench.max_new_tokens,
                                temperature=self.temperature, top_p=self.top_p)
        return critic_eval.CriticEvalConfig(mode="direct", variant=self.variant or bench.variant, params=params,
                                            solve_params=params, seed=self.seed, n_boot=self.n_boot,
                                            boot_seed=self.boot_seed, grade_jobs=self.grade_jobs,
                                            progress=self.progress)


class ChunkedBackend:
    """Feeds ``backend`` requests in chunks of ``size`` cut from the whole list, as stage 04's
    :class:`~scrit_utils.pipeline.common.ResumableBackend` does (without its file)."""

    def __init__(self, backend, size: int, desc: str = "generate"):
        self.backend, self.size, self.desc = backend, size, desc
        self.name = getattr(backend, "name", type(backend).__name__)
        self.model_name = getattr(backend, "model_name", None)

    def generate(self, requests, params: SamplingParams, progress: bool = True) -> list[str]:
        from tqdm.auto import tqdm

        out: list[str] = []
        with tqdm(total=len(requests), desc=self.desc, unit="item", disable=not progress) as bar:
            for c in common.chunks(list(requests), self.size):
                out += self.backend.generate(list(c), params, progress=False)
                bar.update(len(c))
        return out


def evaluate_bench(backend, bench: Bench, cfg: critic_eval.CriticEvalConfig, batch_size: int,
                   scenarios: Sequence[str], own_items: list[dict] | None = None
                   ) -> tuple[dict[str, list[dict]], dict, list[dict]]:
    """One benchmark, in the order and chunks of :func:`training.evaluate`; ``(rows_by_set, metrics,
    own items)``. ``own_items``: solutions to score in scenario "own" instead of the critic's own (stage
    04's ``own_items.json``, or ``--save-own-items`` of a base run); those of this benchmark's ``mix`` items."""
    def backend_for(name: str) -> ChunkedBackend:
        return ChunkedBackend(backend, batch_size, f"{bench.name} [{name}]")

    sets: dict[str, list] = {}
    solve_rows = None
    if "mix" in bench.sets:  # a CC benchmark: the scenarios asked for
        for scen in scenarios:
            if scen != "own":
                sets[scen] = bench.sets[scen]
            elif own_items is not None:
                mix_ids = {str(it["id"]) for it in bench.sets["mix"]}
                sets[scen] = [it for it in own_items if str(it["id"]) in mix_ids]
                if len(sets[scen]) != len(mix_ids):
                    raise BenchError(f"--own-items: solutions for {len(sets[scen])} of the {len(mix_ids)} {bench.name} "
                                     "mix items; use the file of a run with the same --bench, --n-items and --seed")
            else:
                own, solve_rows = critic_eval.own_solutions(backend_for("own_solve"), bench.sets["mix"], cfg)
                sets[scen] = [training.own_item_dict(it) for it in own]
    if bench.sets.get("processbench"):
        sets["processbench"] = bench.sets["processbench"]
    rows, metrics = critic_eval.evaluate(backend, sets, cfg, own_from=None, backend_for=backend_for)
    if solve_rows is not None:
        rows["own_solve"] = solve_rows
    return rows, metrics, list(sets.get("own", []))


def run(backend, benches: Sequence[Bench], settings: Settings, own_items: list[dict] | None = None,
        data_dir: Path | None = None) -> tuple[dict, dict[str, dict[str, list[dict]]], list[dict]]:
    """Score ``backend``'s critic on every benchmark; ``(result, rows, own items)``: the JSON-ready result
    (metric rows as in stage 04's ``metrics.json``, full metrics, decoding, data checksums), the per-item
    rows (bench -> set -> rows) for ``--log-samples``, and the "own" items of every benchmark (stage 04's
    ``own_items.json`` form). One greedy-prompt memo serves all benchmarks."""
    memo = common.GreedyMemoBackend(backend)
    result: dict[str, Any] = {"benches": {}, "rows": []}
    samples, own_all = {}, []
    for b in benches:
        cfg = settings.eval_config(b)
        t0 = time.time()
        rows, m, own = evaluate_bench(memo, b, cfg, settings.batch_size, settings.scenarios, own_items)
        samples[b.name] = rows
        own_all += own
        result["rows"] += [{"bench": b.name, **r} for r in critic_eval.metric_rows(m)]
        result["benches"][b.name] = {
            "spec": b.name + (f":{b.arg}" if b.arg else ""), "n_items": {k: len(v) for k, v in rows.items()},
            "prompt": {"mode": cfg.mode, "variant": cfg.variant, "prompt_version": prompts.PROMPT_VERSION},
            "decoding": dataclasses.asdict(cfg.params), "metrics": m, "info": b.info, "wall_s": round(time.time() - t0, 2),
        }
    result["greedy_prompts_reused"] = memo.reused
    result["data"] = {"dir": None if data_dir is None else str(data_dir),
                      "files": {b.name: b.files for b in benches}}
    return result, samples, own_all


# --- backends ------------------------------------------------------------------------------------------
def check_server(base_url: str, timeout_s: float = 5.0) -> None:
    """Fail at once, in one line, when nothing answers at ``base_url`` (any HTTP answer counts as up)."""
    import httpx

    try:
        httpx.get(base_url.rstrip("/") + "/models", timeout=timeout_s)
    except httpx.HTTPError as e:
        raise BenchError(f"--base-url {base_url}: no server answers ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else 'no detail'})") from None


def make_backend(kind: str, model: str, *, base_url: str | None = None, served_model: str | None = None,
                 revision: str | None = None, batch_size: int = 64, dtype: str = "auto", device: str = "auto",
                 tensor_parallel_size: int = 1, seed: int = 0, concurrency: int = 8):
    """A generation backend for the critic, with the arguments stage 04's ``common.make_backend`` passes."""
    from scrit_utils.generation import get_backend

    ref = _config.model_ref(model)
    if kind == "openai":
        if not base_url:
            raise BenchError("--backend openai needs --base-url (e.g. http://127.0.0.1:8000/v1)")
        check_server(base_url)
        # the server knows the model by the name it was started with: send --model as given
        return get_backend("openai", base_url=base_url, model=served_model or model, max_concurrency=concurrency)
    if kind == "transformers":
        return get_backend("transformers", model=ref, batch_size=batch_size, dtype=dtype, device=device,
                           revision=revision)
    if kind == "vllm":
        kw = {"revision": revision} if revision else {}
        return get_backend("vllm", model=ref, dtype=dtype, tensor_parallel_size=tensor_parallel_size, seed=seed, **kw)
    raise BenchError(f"unknown --backend {kind!r}; expected transformers | vllm | openai")

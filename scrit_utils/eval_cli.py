"""``scrit eval``: score critiques written for a benchmark (parse -> grade -> metrics -> table/JSON).

Scoring is the harness's own chain (:func:`scrit_utils.pipeline.benchmark_eval.score_critiques`, then
:func:`~scrit_utils.pipeline.benchmark_eval.cc_metrics` / ``processbench_metrics``), the one stage 04
and the sweeps score with; this module reads the files, matches critiques to items and prints.

Two subcommands:

- ``scrit eval cc --benchmark <realcritic root> --scenario mix_data|wrong_data [--tasks ...]
  --critiques <jsonl> [--out result.json]``: critique-correction accuracy (CC-Acc) per task, the
  unweighted mean over tasks, 95% bootstrap CIs and the transition counts.
- ``scrit eval ei --benchmark <processbench root> --critiques <jsonl> [--subsets ...] [--strict]
  [--answers-root DIR] [--answers-from SUBSET=SOURCE ...] [--answers <jsonl>] [--min-coverage F]
  [--out result.json]``: ProcessBench EI-F1 ("original", or SCRIT's "strict" with ``--strict``).
  Strict needs each problem's reference answer, which ProcessBench does not ship: an ``answer``
  field in the benchmark rows (toy world), ``--answers`` rows ``{"id": ..., "answer": ...}``, or the
  source set of a subset joined on the problem text (:func:`real.attach_processbench_answers`):
  ``--answers-root ../shared/data`` finds GSM8K and OlympiadBench there, ``--answers-from
  math=<dir, file or hub id>`` names one. The coverage per subset is printed; subsets with answers
  for fewer than ``--min-coverage`` (default all) of their items are not scored, and the result says
  which subsets were (``scored_subsets``, ``answer_coverage``).

- ``scrit eval critic --model PATH_OR_HUB_ID --bench realcritic[:TASK+...],processbench[:SUBSET+...],toy[:DIR]
  --backend transformers|vllm|openai [--base-url URL] [--prompt-variant full|compact] [--max-new-tokens N]
  [--n-items N] [--out results.json] [--log-samples items.jsonl]``: generates the critiques too, scores
  them as stage 04 does (:mod:`scrit_utils.pipeline.critic_bench`: same items for the same ``--seed`` and
  ``--n-items``, same prompt, seeds and chunks) and writes the metric rows of stage 04's
  ``metrics.json`` with provenance: the model's digest (sha256 over its safetensors files) or hub
  revision, prompt variant, decoding, sha256 of every data file read, package versions, git sha.

A path that starts with ``../shared/data`` means the data folder wherever it is (``--data-dir``-style:
``$SCRIT_DATA_DIR``, else ``../shared/data`` when present, else ``data/real``; ``scrit data fetch`` fills it), as
in the profiles (:func:`scrit_utils.core.data_dir.resolve_ref`), so the examples below work on any machine.

Critiques file: JSON lines, one per benchmark item, each with the raw critique text under
``"critique"`` and the item named either by ``"task"`` + ``"idx"`` (RealCritic) / ``"id"``
(ProcessBench id, e.g. ``"gsm8k-3"``), or by ``"id": "<task>/<idx>"`` for RealCritic. Extra keys
are ignored. Every benchmark item needs exactly one critique (``--allow-missing`` scores absent
ones as wrong); a critique for an unknown item or a duplicate is an error naming file and line.

Critiques number steps from 1; ProcessBench labels are 0-based: EI uses ``pred_offset=1,
label_offset=0``.

Example::

    scrit eval cc --benchmark ../shared/data/realcritic --scenario mix_data --critiques crit.jsonl --out cc.json
    scrit eval ei --benchmark ../shared/data/processbench --critiques pb.jsonl --strict --answers-root ../shared/data
    scrit eval critic --model models/toy-0.3m --bench toy --n-items 100 --out toy.json
    scrit eval critic --model Qwen/Qwen2.5-7B-Instruct --bench realcritic,processbench --backend vllm --out qwen7b.json
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

from scrit_utils.core import data_dir
from scrit_utils.critique import prompts
from scrit_utils.generation.openai_backend import OpenAIBackendError
from scrit_utils.pipeline import benchmark_eval as critic_eval
from scrit_utils.pipeline import critic_bench
from scrit_utils.core.records import write_json
from scrit_utils.worlds import real


class EvalError(ValueError):
    """Bad CLI input (critiques file, missing answers); the message names file and line."""


def read_critiques(path: str | Path, kind: str) -> dict[str, tuple[str, int]]:
    """Map item id -> (critique text, line). ``kind`` is ``cc`` (RealCritic) or ``ei`` (ProcessBench)."""
    path = Path(path)
    if not path.is_file():
        raise EvalError(f"critiques file not found: {path}")
    out: dict[str, tuple[str, int]] = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise EvalError(f"{path}:{n}: invalid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise EvalError(f"{path}:{n}: expected a JSON object")
            text = row.get("critique")
            if not isinstance(text, str):
                raise EvalError(f"{path}:{n}: missing key 'critique' (a string)")
            if kind == "cc" and "task" in row and "idx" in row:
                key = f"{row['task']}/{row['idx']}"
            elif "id" in row:
                key = str(row["id"])
            else:
                need = "'task' and 'idx', or 'id'" if kind == "cc" else "'id'"
                raise EvalError(f"{path}:{n}: missing key(s) {need}")
            if key in out:
                raise EvalError(f"{path}:{n}: duplicate critique for {key!r} (first at line {out[key][1]})")
            out[key] = (text, n)
    return out


def _match(ids: list[str], crits: dict[str, tuple[str, int]], path: str, allow_missing: bool) -> list[str | None]:
    known = set(ids)
    for key, (_, n) in crits.items():
        if key not in known:
            raise EvalError(f"{path}:{n}: critique for {key!r}, which is not an item of the selected benchmark")
    missing = [i for i in ids if i not in crits]
    if missing and not allow_missing:
        raise EvalError(f"{path}: no critique for {len(missing)} of {len(ids)} items (first: {missing[0]!r}); "
                        "pass --allow-missing to score them as wrong")
    return [crits[i][0] if i in crits else None for i in ids]


def _fmt_ci(v: float, ci: list[float]) -> str:
    return f"{v:6.1f}  [{ci[0]:5.1f}, {ci[1]:5.1f}]"


def _scored_rows(items: list, texts: list[str | None], args: argparse.Namespace, scenario: str) -> list[dict]:
    """The harness's parse -> grade rows (:func:`critic_eval.score_critiques`); a missing critique is
    scored as an empty text (no verdict, no answer: wrong)."""
    cfg = _eval_config(args)
    return critic_eval.score_critiques(items, ["" if t is None else t for t in texts], cfg, scenario=scenario)


def _eval_config(args: argparse.Namespace) -> critic_eval.CriticEvalConfig:
    return critic_eval.CriticEvalConfig(n_boot=args.n_boot, boot_seed=args.seed, grade_jobs=args.jobs,
                                        grade_timeout_s=args.timeout, progress=not args.quiet)


def run_cc(args: argparse.Namespace) -> dict[str, Any]:
    items = real.load_realcritic(data_dir.resolve_ref(args.benchmark), args.scenario, tasks=args.tasks)
    texts = _match([it.id for it in items], read_critiques(args.critiques, "cc"), args.critiques, args.allow_missing)
    rows = _scored_rows(items, texts, args, args.scenario)
    res = critic_eval.cc_metrics(rows, args.n_boot, args.seed)
    res.pop("modes")  # the prompt mode is not known to the CLI
    res.update(scenario=args.scenario, benchmark=str(args.benchmark), critiques=str(args.critiques),
               n_missing=sum(t is None for t in texts), n_unparsed=sum(r["final_answer"] is None for r in rows))
    lines = [f"CC-Acc ({args.scenario}), % with 95% bootstrap CI", f"{'task':16s} {'n':>5s}  acc     CI"]
    for task, r in res["per_task"].items():
        lines.append(f"{task:16s} {r['n']:5d} {_fmt_ci(r['acc'], r['ci'])}")
    lines.append(f"{'mean (unweighted)':16s} {res['n']:5d} {_fmt_ci(res['mean']['acc'], res['mean']['ci'])}")
    lines.append("transitions (solution -> corrected): "
                 + ", ".join(f"{k} {v}" for k, v in res["transitions"].items()))
    lines.append(f"critiques without a boxed answer: {res['n_unparsed']}")
    print("\n".join(lines))
    return res


def _read_answers(path: str) -> dict[str, str]:
    out = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if line.strip():
                try:
                    row = json.loads(line)
                    out[str(row["id"])] = str(row["answer"])
                except (json.JSONDecodeError, KeyError, TypeError) as e:
                    raise EvalError(f"{path}:{n}: expected {{'id': ..., 'answer': ...}} ({e})") from None
    return out


def _answer_sources(args: argparse.Namespace) -> dict[str, str]:
    sources: dict[str, str] = {}
    if args.answers_root:
        root = data_dir.resolve_ref(args.answers_root)
        sources.update({k: str(v) for k, v in real.default_answer_sources(root).items()})
    for spec in args.answers_from or ():
        subset, sep, src = spec.partition("=")
        if not sep or not src or subset not in real.PROCESSBENCH_SUBSETS:
            raise EvalError(f"--answers-from {spec!r}: expected SUBSET=PATH_OR_HUB_ID with SUBSET one of "
                            f"{list(real.PROCESSBENCH_SUBSETS)}")
        sources[subset] = src
    return sources


def _strict_items(args: argparse.Namespace, items: list) -> tuple[list, dict[str, real.AnswerCoverage], list[str]]:
    """Items with reference answers attached, coverage per subset, and the subsets strict EI-F1 scores
    (those with answers for at least ``--min-coverage`` of their items)."""
    if not 0.0 < args.min_coverage <= 1.0:
        raise EvalError(f"--min-coverage must be in (0, 1], got {args.min_coverage}")
    if args.answers:
        by_id = _read_answers(args.answers)
        items = [dataclasses.replace(it, answer=by_id[it.id]) if it.id in by_id else it for it in items]
    items, coverage = real.attach_processbench_answers(items, _answer_sources(args))
    scored = [s for s, c in coverage.items() if c.n_answered and c.fraction >= args.min_coverage]
    lines = [f"reference answers for strict EI-F1 (scored: subsets with >= {100 * args.min_coverage:g}% answered)"]
    for s, c in coverage.items():
        lines.append(f"  {s:14s} {c.n_answered:5d}/{c.n_items:<5d} ({100 * c.fraction:5.1f}%)  "
                     f"{'scored' if s in scored else 'skipped'}  source: {c.source or '-'}"
                     + (f"  ({c.n_ambiguous} ambiguous)" if c.n_ambiguous else ""))
    print("\n".join(lines))
    if not scored:
        raise EvalError("--strict needs a reference answer per problem; no subset has enough "
                        f"({', '.join(f'{s} {c.n_answered}/{c.n_items}' for s, c in coverage.items())}). "
                        "Pass --answers-root ../shared/data (GSM8K, OlympiadBench), --answers-from "
                        "SUBSET=PATH_OR_HUB_ID, or --answers JSONL {id, answer}; see "
                        "real.PROCESSBENCH_ANSWER_SOURCES")
    return items, coverage, scored


def run_ei(args: argparse.Namespace) -> dict[str, Any]:
    items = real.load_processbench(data_dir.resolve_ref(args.benchmark), subsets=args.subsets)
    texts = _match([it.id for it in items], read_critiques(args.critiques, "ei"), args.critiques, args.allow_missing)
    extra: dict[str, Any] = {}
    if args.strict:
        items, coverage, scored = _strict_items(args, items)
        keep = [i for i, it in enumerate(items) if it.subset in scored and it.answer]
        items, texts = [items[i] for i in keep], [texts[i] for i in keep]
        extra = {"answer_coverage": {s: dataclasses.asdict(c) for s, c in coverage.items()}, "scored_subsets": scored,
                 "skipped_subsets": [s for s in coverage if s not in scored]}
    else:  # original EI-F1 grades no answers: no reference is attached, so none is graded
        items = [dataclasses.replace(it, answer=None) for it in items]
    rows = _scored_rows(items, texts, args, "processbench")
    pm = critic_eval.processbench_metrics(rows, args.n_boot, args.seed)
    res = dict(pm["strict" if args.strict else "original"])
    res.update(benchmark=str(args.benchmark), critiques=str(args.critiques), parse_rate=pm["parse_rate"],
               n_missing=sum(t is None for t in texts), n_unparsed=sum(r["predicted_step"] is None for r in rows),
               **extra)
    name = "strict (±1 step, corrected answer right)" if args.strict else "original (ProcessBench)"
    lines = [f"EI-F1 {name}, % with 95% bootstrap CI on F1",
             f"{'subset':16s} {'n':>5s} {'err_acc':>8s} {'cor_acc':>8s}  f1      CI"]
    for sub, r in res["per_task"].items():
        lines.append(f"{sub:16s} {r['n']:5d} {r['error_acc']:8.1f} {r['correct_acc']:8.1f} {_fmt_ci(r['f1'], r['ci'])}")
    lines.append(f"{'mean (unweighted)':16s} {res['n']:5d} {'':8s} {'':8s} {_fmt_ci(res['mean']['f1'], res['mean']['ci'])}")
    if extra.get("skipped_subsets"):
        lines.append(f"not scored (too few reference answers): {', '.join(extra['skipped_subsets'])}")
    lines.append(f"critiques without a usable first-error prediction: {res['n_unparsed']}")
    print("\n".join(lines))
    return res


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--critiques", required=True, help="JSONL of critiques (see `scrit_utils.eval_cli` docs)")
    p.add_argument("--allow-missing", action="store_true", help="score items without a critique as wrong")
    p.add_argument("--out", help="write the full result as JSON here")
    p.add_argument("--jobs", type=int, default=None, help="grading worker processes (default: all cores)")
    p.add_argument("--timeout", type=float, default=5.0, help="hard per-item grading timeout, seconds")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the CIs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("eval", help="score critiques (cc, ei) or evaluate a critic model (critic)")
    sub = p.add_subparsers(dest="eval_command", required=True)
    cc = sub.add_parser("cc", help="critique-correction accuracy on a RealCritic-format benchmark")
    cc.add_argument("--benchmark", required=True, help="RealCritic root (…/realcritic) or hub id")
    cc.add_argument("--scenario", choices=real.REALCRITIC_SCENARIOS, default="mix_data")
    cc.add_argument("--tasks", nargs="+", default=None, help=f"subset of {list(real.REALCRITIC_TASKS)}")
    _common(cc)
    cc.set_defaults(func=lambda a: _handle(run_cc, a))
    ei = sub.add_parser("ei", help="error-identification F1 on a ProcessBench-format benchmark")
    ei.add_argument("--benchmark", required=True, help="ProcessBench root (dir of <subset>.json) or hub id")
    ei.add_argument("--subsets", nargs="+", default=None, help=f"subset of {list(real.PROCESSBENCH_SUBSETS)}")
    ei.add_argument("--strict", action="store_true", help="SCRIT's strict variant (needs reference answers)")
    ei.add_argument("--answers", help="JSONL {id, answer} with reference answers for --strict")
    ei.add_argument("--answers-root", help="data root laid out like ../shared/data: reference answers from its "
                    "gsm8k/ and math_eval/olympiadbench/ (math/, omnimath/ when present) for --strict")
    ei.add_argument("--answers-from", action="append", metavar="SUBSET=SOURCE",
                    help="reference answers for one subset from a local file/dir or a hub dataset id (repeatable)")
    ei.add_argument("--min-coverage", type=float, default=1.0,
                    help="--strict scores a subset when this share of its items has an answer (default 1.0)")
    _common(ei)
    ei.set_defaults(func=lambda a: _handle(run_ei, a))
    _add_critic(sub)
    return p


# --- scrit eval critic -------------------------------------------------------------------------------
#: default --batch-size per backend: the transformers batch; vLLM schedules its own batches, so it gets large
#: chunks (configs/qwen2.5-7b.yaml: 2048); a server gets enough to keep --concurrency requests in flight
BATCH_SIZE = {"transformers": 64, "vllm": 2048, "openai": 256}


def run_critic(args: argparse.Namespace) -> dict[str, Any]:
    """Generate critiques with the model, score them as stage 04 does, and return the result with provenance."""
    from scrit_utils.core import artifacts

    args.batch_size = args.batch_size or BATCH_SIZE[args.backend]
    if args.batch_size < 1 or (args.n_items is not None and args.n_items < 1):
        raise EvalError(f"--batch-size and --n-items must be >= 1, got {args.batch_size} and {args.n_items}")
    t0 = time.time()
    ctx = critic_bench.Context(data_dir=args.data_dir and Path(args.data_dir), seed=args.seed, n_items=args.n_items)
    data_root = critic_bench.data_root(ctx)
    # cheap checks first (names, numbers, files), then a dead server, then the data; the model loads last
    critic_bench.parse_specs(args.bench)
    settings = critic_bench.Settings(
        variant=args.prompt_variant, max_new_tokens=args.max_new_tokens, temperature=args.temperature,
        top_p=args.top_p, seed=args.seed, batch_size=args.batch_size, scenarios=tuple(args.scenarios),
        n_boot=args.n_boot, boot_seed=args.boot_seed, grade_jobs=args.jobs, progress=not args.quiet)
    own_items = _read_own_items(args.own_items) if args.own_items else None
    if args.backend == "openai":
        if not args.base_url:
            raise EvalError("--backend openai needs --base-url (e.g. http://127.0.0.1:8000/v1)")
        critic_bench.check_server(args.base_url)
    benches = critic_bench.load_benches(args.bench, ctx)
    model = critic_bench.model_provenance(args.model, args.revision)
    backend = critic_bench.make_backend(
        args.backend, args.model, base_url=args.base_url, served_model=args.served_model, revision=args.revision,
        batch_size=args.batch_size, dtype=args.dtype, device=args.device,
        tensor_parallel_size=args.tensor_parallel_size, seed=args.seed, concurrency=args.concurrency)
    try:
        res, samples, own = critic_bench.run(backend, benches, settings, own_items=own_items, data_dir=data_root)
    finally:
        close = getattr(backend, "close", None) or getattr(backend, "shutdown", None)
        if callable(close):
            close()
    out = {"model": model, "backend": {"kind": args.backend, "base_url": args.base_url, "batch_size": args.batch_size,
                                       "dtype": args.dtype, "device": args.device, "served_model": args.served_model},
           "seed": args.seed, "n_items": args.n_items, "scenarios": list(args.scenarios),
           "bootstrap": {"n_resamples": args.n_boot, "seed": args.boot_seed}, **res,
           "arguments": {k: v for k, v in vars(args).items() if k != "func"},
           "provenance": artifacts.provenance(), "wall_s": round(time.time() - t0, 1)}
    if args.save_own_items:
        write_json(args.save_own_items, own)
    if args.log_samples:
        write_jsonl_rows(args.log_samples, [{"bench": b, "set": s, **r} for b, sets in samples.items()
                                            for s, rows in sets.items() for r in rows])
    lines = [f"{'bench':13s} {'task':16s} {'metric':16s} {'n':>5s}  value   95% CI"]
    for r in out["rows"]:
        ci = "" if r["ci_low"] is None else f"[{r['ci_low']:5.1f}, {r['ci_high']:5.1f}]"
        lines.append(f"{r['bench']:13s} {r['benchmark']:16s} {r['metric']:16s} {r['n']:5d} {r['value']:6.1f}  {ci}")
    print("\n".join(lines))
    return out


def _read_own_items(path: str) -> list[dict]:
    try:
        items = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise EvalError(f"--own-items {path}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise EvalError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None
    if not isinstance(items, list) or not all(isinstance(it, dict) and "id" in it for it in items):
        raise EvalError(f"{path}: expected a JSON list of items with 'id' (a --save-own-items file)")
    return items


def write_jsonl_rows(path: str | Path, rows: list[dict]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def _add_critic(sub) -> None:
    c = sub.add_parser("critic", help="generate critiques with a model and score them (RealCritic, ProcessBench, toy)",
                       description="Evaluate a critic in one command, as stage 04 does: generate, score, write JSON.")
    c.add_argument("--model", required=True, help="local model dir or hub id (the served model name with openai)")
    c.add_argument("--bench", required=True, action="append",
                   help=f"benchmarks: {', '.join(critic_bench.BENCHES)}; NAME[:ARG] joined by ','; tasks/subsets "
                   "joined by '+' (realcritic:gsm8k+math, processbench:gsm8k, toy:DIR); repeatable")
    c.add_argument("--backend", choices=("transformers", "vllm", "openai"), default="transformers")
    c.add_argument("--base-url", help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 (--backend openai)")
    c.add_argument("--served-model", help="model name sent to the server (default: --model)")
    c.add_argument("--revision", help="hub revision of --model (recorded; resolved to a commit when online)")
    c.add_argument("--prompt-variant", choices=prompts.VARIANTS, default=None,
                   help="default per benchmark: compact for toy, full for real data")
    c.add_argument("--max-new-tokens", type=int, default=None, help="default per benchmark: toy 288, real 2048")
    c.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (stage 04, RealCritic)")
    c.add_argument("--top-p", type=float, default=1.0)
    c.add_argument("--seed", type=int, default=0, help="run.seed: per-item seeds, the n-items sample, the toy build")
    c.add_argument("--n-items", type=int, default=None, help="at most N items per task (stage 04's evaluation.n_items)")
    c.add_argument("--scenarios", nargs="+", default=["wrong", "mix", "own"], help="CC scenarios (own: its own solutions)")
    c.add_argument("--own-items", help="score 'own' on these solutions (a base run's --save-own-items file, or "
                   "stage 04's own_items.json) instead of the model's own, as stage 04 scores a trained critic")
    c.add_argument("--save-own-items", help="write the 'own' scenario's items (the model's own solutions) here")
    c.add_argument("--batch-size", type=int, default=None, help="requests per generate call, and the transformers "
                   "batch (generation.batch_size); default " + ", ".join(f"{k} {v}" for k, v in BATCH_SIZE.items()))
    c.add_argument("--dtype", default="auto")
    c.add_argument("--device", default="auto", help="transformers: auto | cpu | cuda")
    c.add_argument("--tensor-parallel-size", type=int, default=1, help="vllm")
    c.add_argument("--concurrency", type=int, default=8, help="openai: parallel requests")
    c.add_argument("--data-dir", help="folder with realcritic/, processbench/ (default: SCRIT_DATA_DIR, ../shared/data, data/real)")
    c.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the CIs")
    c.add_argument("--boot-seed", type=int, default=0)
    c.add_argument("--jobs", type=int, default=1, help="grading worker processes")
    c.add_argument("--out", help="write the results JSON (metrics, rows, provenance) here")
    c.add_argument("--log-samples", help="write every item's critique, parse and grade here (JSONL)")
    c.add_argument("--quiet", action="store_true", help="no progress bars")
    c.set_defaults(func=lambda a: _handle(run_critic, a))


def _handle(fn, args: argparse.Namespace) -> int:
    try:
        res = fn(args)
    except (EvalError, real.RealDataError, critic_bench.BenchError, OpenAIBackendError) as e:
        print(f"scrit eval: error: {e}", file=sys.stderr)
        return 2
    if args.out:
        write_json(args.out, res)
        print(f"wrote {args.out}")
    return 0

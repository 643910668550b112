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
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from scrit_utils.pipeline import benchmark_eval as critic_eval
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
    items = real.load_realcritic(args.benchmark, args.scenario, tasks=args.tasks)
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
        sources.update({k: str(v) for k, v in real.default_answer_sources(args.answers_root).items()})
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
    items = real.load_processbench(args.benchmark, subsets=args.subsets)
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
    p = subparsers.add_parser("eval", help="score critiques on RealCritic (cc) or ProcessBench (ei)")
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
    return p


def _handle(fn, args: argparse.Namespace) -> int:
    try:
        res = fn(args)
    except (EvalError, real.RealDataError) as e:
        print(f"scrit eval: error: {e}", file=sys.stderr)
        return 2
    if args.out:
        write_json(args.out, res)
        print(f"wrote {args.out}")
    return 0

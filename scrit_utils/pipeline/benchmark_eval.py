"""Run a critic over a benchmark and score it: CC-Acc (three scenarios), transitions, EI-F1 with CIs.

One function per question a notebook asks:

- :func:`evaluate_cc`: RealCritic-style items (question, gt, solution, label_correct). The critic
  reads each solution and must end with the right final answer (the LAST ``\\boxed{}`` of its whole
  output, graded with :func:`scrit_utils.critique.grading.is_equivalent` against ``gt``). Metrics per task and
  the unweighted mean over tasks, 95% bootstrap CIs (resampled within task), and transitions
  (solution correct? -> critic's answer correct?).
- :func:`evaluate_processbench`: ProcessBench-style items (problem, steps, 0-based label). Steps are
  shown as ``Step k:`` (1-based, :func:`scrit_utils.critique.prompts.format_solution`); the critique's
  first-error step is compared with ``pred_offset=1, label_offset=0``. Both ProcessBench's original
  F1 and SCRIT's strict F1 (step within +-1 AND corrected answer right; needs a ``gt`` on every
  item) are reported, always under their own names.
- :func:`own_solutions`: the "own solutions" scenario. The critic first solves the questions
  (greedy by default, solve prompt), the solutions are graded against ``gt``, and the resulting
  items go to :func:`evaluate_cc` like any other scenario.
- :func:`evaluate`: all of the above for a dict of benchmarks -- the one path stage 04, the sweeps
  (through :func:`scrit_utils.pipeline.training.evaluate`) and the tests score with;
  :func:`metric_rows` flattens its metrics into the rows of stage 04's ``metrics.json``.
- :func:`score_critiques`: parse and grade critiques generated elsewhere (``scrit eval``, the
  per-item re-scoring of :mod:`scrit_utils.study.item_scores`, the toy world's base-model table) into
  the same rows, for :func:`cc_metrics` / :func:`processbench_metrics`.

Prompt ``mode``: ``"direct"`` (no reference: the evaluation format) or ``"contrastive"`` (the
reference solution is shown; items without one fall back to direct, and each row records the mode
it actually used). ``variant``: ``"full"`` (real LLMs) or ``"compact"`` (toy world). Decoding is
greedy unless the params say otherwise; sampled runs use per-item seeds from
:func:`scrit_utils.generation.derive_seed`, so the critique of an item does not depend on the rest.

Every function returns ``(rows, metrics)``: ``rows`` are JSON-ready dicts, one per item (prompt
mode, raw critique text, parsed verdict / step / answer, grades), ready for
:func:`scrit_utils.core.records.write_jsonl`; ``metrics`` is a JSON-ready dict.

Usage::

    from scrit_utils.core import data_dir
    from scrit_utils.generation.transformers_backend import TransformersBackend
    from scrit_utils.pipeline import benchmark_eval as ce
    from scrit_utils.worlds import real

    backend = TransformersBackend("Qwen/Qwen2.5-1.5B-Instruct", device="auto")
    cfg = ce.CriticEvalConfig(mode="direct", variant="full")
    mix = ce.items_from(real.load_realcritic(data_dir.data_dir() / "realcritic", "mix_data", tasks=["gsm8k"]))
    rows, metrics = ce.evaluate_cc(backend, mix, cfg, scenario="mix")
    print(metrics["mean"]["acc"], metrics["mean"]["ci"])
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from scrit_utils.critique import prompts
from scrit_utils.generation import Backend, GenerationRequest, SamplingParams, derive_seed
from scrit_utils.critique import metrics as ev
from scrit_utils.critique.grading import grade_batch
from scrit_utils.critique.parsing import extract_last_boxed
from scrit_utils.critique.parsing import parse_critique
from scrit_utils.worlds.arith import split_steps

__all__ = [
    "EvalItem",
    "CriticEvalConfig",
    "items_from",
    "as_item",
    "critique_messages",
    "critique_requests",
    "score_critiques",
    "run_critiques",
    "cc_metrics",
    "processbench_metrics",
    "evaluate_cc",
    "evaluate_processbench",
    "own_solutions",
    "evaluate",
    "metric_rows",
    "MODES",
]

MODES = ("direct", "contrastive")
CC_SCENARIOS = ("wrong", "mix", "own")


@dataclass(frozen=True)
class EvalItem:
    """One benchmark item in the form the critic sees.

    ``solution`` is the text shown as the student solution (``Step k:`` lines for ProcessBench).
    ``original_correct``: whether that solution is right (CC scenarios). ``label``: ProcessBench's
    0-based first wrong paragraph, -1 when none (None for CC items). ``reference``: a correct
    reference solution for the contrastive prompt, when the benchmark has one.
    """

    id: str
    task: str
    question: str
    solution: str
    gt: str | None = None
    original_correct: bool | None = None
    label: int | None = None
    reference: str | None = None
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class CriticEvalConfig:
    mode: str = "direct"  # direct | contrastive
    variant: str = "full"  # full | compact
    params: SamplingParams = SamplingParams(max_new_tokens=2048)  # greedy, as in RealCritic
    solve_params: SamplingParams = SamplingParams(max_new_tokens=2048)  # own-solutions scenario
    seed: int = 0  # per-item seeds for sampled runs
    n_boot: int = 1000
    boot_seed: int = 0
    grade_timeout_s: float = 5.0
    grade_jobs: int | None = 1  # grading worker processes (None: all cores)
    progress: bool = True

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown critic mode {self.mode!r}; expected one of {MODES}")
        if self.variant not in prompts.VARIANTS:
            raise ValueError(f"unknown prompt variant {self.variant!r}; expected one of {prompts.VARIANTS}")


# --- items ------------------------------------------------------------------------------------------
def as_item(x: Any) -> EvalItem:
    """An :class:`EvalItem` from a loader record (worlds.real) or a plain dict.

    Accepted: ``EvalItem``; ``RealCriticItem`` / ``ProcessBenchItem`` (duck-typed by their fields);
    dicts with ``id, task, question, solution`` (+ ``gt, original_correct | label_correct, label,
    reference``) or ProcessBench-style ``problem, steps, label``.
    """
    if isinstance(x, EvalItem):
        return x
    d = dataclasses.asdict(x) if dataclasses.is_dataclass(x) else dict(x)
    where = f"benchmark item {d.get('id', d.get('idx', '?'))!r}"
    if "steps" in d and "label" in d:  # ProcessBench row
        steps = d["steps"]
        if isinstance(steps, str) or not all(isinstance(s, str) for s in steps):
            raise ValueError(f"{where}: 'steps' must be a list of strings")
        task = d.get("subset") or d.get("task") or "processbench"
        iid = str(d["id"]) if "/" in str(d["id"]) or "subset" not in d else f"{task}/{d['id']}"
        return EvalItem(id=iid, task=str(task), question=_req(d, ("problem", "question"), where),
                        solution=prompts.format_solution(steps), gt=_opt(d.get("answer", d.get("gt"))),
                        label=int(d["label"]), reference=_opt(d.get("reference_solution", d.get("reference"))),
                        meta={"generator": d["generator"]} if d.get("generator") else {})
    if "idx" in d and "id" not in d:  # RealCriticItem
        d["id"] = f"{d['task']}/{d['idx']}"
    oc = d.get("original_correct", d.get("label_correct"))
    return EvalItem(id=str(_req(d, ("id",), where)), task=str(d.get("task", "all")),
                    question=_req(d, ("question", "problem"), where), solution=_req(d, ("solution",), where),
                    gt=_opt(d.get("gt")), original_correct=None if oc is None else bool(oc),
                    label=None if d.get("label") is None else int(d["label"]),
                    reference=_opt(d.get("reference", d.get("reference_solution"))),
                    meta=dict(d.get("meta") or {}))


def items_from(xs: Iterable[Any]) -> list[EvalItem]:
    items = [as_item(x) for x in xs]
    seen: set[str] = set()
    for it in items:
        if it.id in seen:
            raise ValueError(f"duplicate benchmark item id {it.id!r}")
        seen.add(it.id)
    return items


def _req(d: Mapping, keys: Sequence[str], where: str) -> Any:
    for k in keys:
        if d.get(k) is not None:
            return d[k]
    raise ValueError(f"{where}: missing field {' / '.join(repr(k) for k in keys)}")


def _opt(v: Any) -> str | None:
    return None if v is None or (isinstance(v, str) and not v.strip()) else str(v)


# --- generation ------------------------------------------------------------------------------------
def critique_messages(item: EvalItem, mode: str, variant: str) -> tuple[list[dict], str]:
    """Chat messages for one item and the mode actually used (contrastive needs a reference)."""
    if mode == "contrastive" and item.reference:
        return prompts.contrastive_critic_messages(item.question, item.reference, item.solution, variant), "contrastive"
    return prompts.direct_critic_messages(item.question, item.solution, variant), "direct"


def critique_requests(items: Sequence[EvalItem], cfg: CriticEvalConfig, stage: str = "critic_eval"):
    reqs, modes = [], []
    for it in items:
        msgs, used = critique_messages(it, cfg.mode, cfg.variant)
        reqs.append(GenerationRequest(id=it.id, messages=msgs, seed=derive_seed(cfg.seed, stage, used, it.id, 0)))
        modes.append(used)
    return reqs, modes


def scenario_stage(scenario: str = "") -> str:
    """The stage name a scenario's critique seeds are derived under (:func:`run_critiques`; stage 04 queues every
    set's requests ahead with the same seeds, ``training.prefetch_critiques``)."""
    return f"critic_eval/{scenario}" if scenario else "critic_eval"


def _grade(preds: Sequence[str | None], gts: Sequence[str | None], cfg: CriticEvalConfig) -> list[bool]:
    todo = [i for i, (p, g) in enumerate(zip(preds, gts)) if p is not None and g is not None]
    out = [False] * len(preds)
    if todo:
        res = grade_batch([(preds[i], gts[i]) for i in todo], n_jobs=cfg.grade_jobs, timeout_s=cfg.grade_timeout_s,
                          progress=cfg.progress)
        for i, r in zip(todo, res):
            out[i] = bool(r)
    return out


def score_critiques(items: Sequence[Any], texts: Sequence[str], cfg: CriticEvalConfig, scenario: str = "",
                    modes: Sequence[str] | None = None, seeds: Sequence[int | None] | None = None) -> list[dict]:
    """Parse and grade critiques that were already written; one JSON-ready row per item.

    ``texts[i]`` is the critique of ``items[i]``. ``modes`` / ``seeds``: the prompt mode actually
    used and the request seed per item, when known (default: ``cfg.mode`` and None). The rows are
    what :func:`cc_metrics` and :func:`processbench_metrics` read, so callers that generate their
    own critiques (resumably, with their own prompts) score them exactly as :func:`run_critiques` does.
    """
    items = [as_item(x) for x in items]
    if len(texts) != len(items):
        raise ValueError(f"score_critiques: {len(texts)} critique texts for {len(items)} items")
    modes = [cfg.mode] * len(items) if modes is None else list(modes)
    seeds = [None] * len(items) if seeds is None else list(seeds)
    if not (len(modes) == len(seeds) == len(items)):
        raise ValueError(f"score_critiques: {len(modes)} modes / {len(seeds)} seeds for {len(items)} items")
    parsed = [parse_critique(t) for t in texts]
    fixed = _grade([c.final_answer for c in parsed], [it.gt for it in items], cfg)
    rows = []
    for it, seed, used, text, c, ok in zip(items, seeds, modes, texts, parsed, fixed):
        rows.append({
            "id": it.id, "task": it.task, "scenario": scenario, "mode": used, "variant": cfg.variant,
            "seed": seed, "text": text, "verdict": c.verdict, "first_error_step": c.first_error_step,
            "predicted_step": c.predicted_error_step(), "final_answer": c.final_answer, "gt": it.gt,
            "corrected_correct": ok, "original_correct": it.original_correct, "label": it.label,
            "parsed": c.verdict is not None,
        })
    return rows


def run_critiques(backend: Backend, items: Sequence[Any], cfg: CriticEvalConfig, scenario: str = "") -> list[dict]:
    """Generate, parse and grade one critique per item; returns one JSON-ready row per item."""
    items = items_from(items)
    reqs, modes = critique_requests(items, cfg, stage=scenario_stage(scenario))
    texts = backend.generate(reqs, cfg.params, progress=cfg.progress)
    if len(texts) != len(items):
        raise RuntimeError(f"backend {getattr(backend, 'name', backend)!r} returned {len(texts)} texts "
                           f"for {len(items)} requests")
    return score_critiques(items, texts, cfg, scenario=scenario, modes=modes, seeds=[r.seed for r in reqs])


# --- metrics -------------------------------------------------------------------------------------------
def _mode_counts(rows: Sequence[dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        out[r["mode"]] = out.get(r["mode"], 0) + 1
    return out


def cc_metrics(rows: Sequence[dict], n_boot: int = 1000, seed: int = 0) -> dict:
    """CC-Acc per task + unweighted mean (percent, 95% CIs) and transitions, from per-item rows."""
    if not rows:
        raise ValueError("cc_metrics: no rows")
    tasks = [r["task"] for r in rows]
    fixed = [bool(r["corrected_correct"]) for r in rows]
    orig = [r["original_correct"] for r in rows]
    known = all(o is not None for o in orig)
    out = ev.summarize_cc(tasks, fixed, [bool(o) for o in orig] if known else None, n_boot=n_boot, seed=seed)
    out["parse_rate"] = 100.0 * sum(r["parsed"] for r in rows) / len(rows)
    out["modes"] = _mode_counts(rows)
    if known:  # accuracy split by whether the student solution was right
        for name, want in (("acc_on_correct", True), ("acc_on_incorrect", False)):
            sel = [f for f, o in zip(fixed, orig) if bool(o) is want]
            out[name] = 100.0 * sum(sel) / len(sel) if sel else float("nan")
    return out


def processbench_metrics(rows: Sequence[dict], n_boot: int = 1000, seed: int = 0) -> dict:
    """EI-F1 per subset + unweighted mean: ``original`` always, ``strict`` when every item has a gt."""
    if not rows:
        raise ValueError("processbench_metrics: no rows")
    if any(r["label"] is None for r in rows):
        raise ValueError("processbench_metrics: every row needs a ProcessBench 'label'")
    groups = [r["task"] for r in rows]
    labels = [int(r["label"]) for r in rows]
    preds = [r["predicted_step"] for r in rows]
    fixed = [bool(r["corrected_correct"]) for r in rows]
    out: dict[str, Any] = {
        "original": ev.summarize_ei(groups, labels, preds, None, strict=False, pred_offset=1, label_offset=0,
                                    n_boot=n_boot, seed=seed),
        "parse_rate": 100.0 * sum(r["parsed"] for r in rows) / len(rows),
        "modes": _mode_counts(rows),
    }
    if all(r["gt"] is not None for r in rows):
        out["strict"] = ev.summarize_ei(groups, labels, preds, fixed, strict=True, pred_offset=1, label_offset=0,
                                        n_boot=n_boot, seed=seed)
    else:
        out["strict"] = None
        out["strict_skipped"] = "some items have no reference answer (gt); strict EI-F1 needs one"
    return out


def evaluate_cc(backend: Backend, items: Sequence[Any], cfg: CriticEvalConfig, scenario: str = "mix"):
    """Critique every item and score CC-Acc; ``(rows, metrics)``."""
    items = items_from(items)
    missing = [it.id for it in items if it.gt is None]
    if missing:
        raise ValueError(f"CC-Acc needs a ground-truth answer (gt); missing for {missing[:5]}")
    rows = run_critiques(backend, items, cfg, scenario=scenario)
    m = cc_metrics(rows, cfg.n_boot, cfg.boot_seed)
    return rows, {"scenario": scenario, "mode": cfg.mode, "variant": cfg.variant, **m}


def evaluate_processbench(backend: Backend, items: Sequence[Any], cfg: CriticEvalConfig):
    """Critique every ProcessBench item and score EI-F1 (original + strict); ``(rows, metrics)``."""
    rows = run_critiques(backend, items, cfg, scenario="processbench")
    m = processbench_metrics(rows, cfg.n_boot, cfg.boot_seed)
    return rows, {"scenario": "processbench", "mode": cfg.mode, "variant": cfg.variant, **m}


def own_solutions(backend: Backend, items: Sequence[Any], cfg: CriticEvalConfig) -> tuple[list[EvalItem], list[dict]]:
    """The critic solves each question (solve prompt; greedy unless ``cfg.solve_params`` samples).

    Returns the items rebuilt around the critic's own solutions (``Step k:`` text, graded
    ``original_correct``; the reference solution is kept for the contrastive mode) and one row per
    solution (text, steps, final answer, correct).
    """
    items = items_from(items)
    reqs = [GenerationRequest(id=it.id, messages=prompts.solve_messages(it.question, cfg.variant),
                              seed=derive_seed(cfg.seed, "critic_eval/solve", it.id, 0)) for it in items]
    texts = backend.generate(reqs, cfg.solve_params, progress=cfg.progress)
    answers = [extract_last_boxed(t) for t in texts]
    ok = _grade(answers, [it.gt for it in items], cfg)
    new_items, rows = [], []
    for it, text, ans, good in zip(items, texts, answers, ok):
        steps = split_steps(text)
        shown = prompts.format_solution(steps) if steps else text
        new_items.append(dataclasses.replace(it, solution=shown, original_correct=good, label=None,
                                             meta={**it.meta, "own_solution": True}))
        rows.append({"id": it.id, "task": it.task, "text": text, "steps": steps, "final_answer": ans, "gt": it.gt,
                     "correct": good})
    return new_items, rows


def evaluate(backend: Backend, benchmarks: Mapping[str, Sequence[Any]], cfg: CriticEvalConfig,
             own_from: str | None = "mix",
             backend_for: Callable[[str], Backend] | None = None) -> tuple[dict[str, list[dict]], dict]:
    """Score one critic on several benchmarks at once.

    ``benchmarks`` maps a name to its items: ``"processbench"`` is scored with EI-F1, every other
    name (``"wrong"``, ``"mix"``, ``"own"``, ...) with CC-Acc, in the mapping's order. Without an
    ``"own"`` entry and with ``own_from`` present, the "own" scenario is added: the critic solves
    that benchmark's questions (:func:`own_solutions`), then critiques its own solutions; stage 04
    instead passes ``"own"`` items built from the *base* critic's solutions, so base and trained
    critic are scored on the same items. ``backend_for(name)`` gives the backend that generates set
    ``name`` (``"own_solve"`` for the solutions; default ``backend`` for all): stage 04 passes
    backends that record each set in its own resumable file. Returns ``(rows_by_name, metrics)``;
    ``rows_by_name["own_solve"]`` holds the solutions when this call wrote them.
    """
    gen = backend_for or (lambda name: backend)
    rows: dict[str, list[dict]] = {}
    metrics: dict[str, Any] = {"mode": cfg.mode, "variant": cfg.variant, "params": dataclasses.asdict(cfg.params),
                               "prompt_version": prompts.PROMPT_VERSION, "model": getattr(backend, "model_name", None),
                               "cc": {}, "processbench": None}
    sets = dict(benchmarks)
    solve_acc = None
    if own_from and own_from in sets and "own" not in sets:
        sets["own"], rows["own_solve"] = own_solutions(gen("own_solve"), sets[own_from], cfg)
        solve_acc = 100.0 * sum(r["correct"] for r in rows["own_solve"]) / max(len(rows["own_solve"]), 1)
    for name, items in sets.items():
        if name == "processbench":
            rows[name], metrics["processbench"] = evaluate_processbench(gen(name), items, cfg)
        else:
            rows[name], metrics["cc"][name] = evaluate_cc(gen(name), items, cfg, scenario=name)
    if solve_acc is not None:
        metrics["cc"]["own"]["solve_acc"] = solve_acc
    return rows, metrics


def _metric_row(bench: str, metric: str, value: float, ci, n: int) -> dict:
    return {"benchmark": bench, "metric": metric, "value": float(value),
            "ci_low": None if ci is None else float(ci[0]), "ci_high": None if ci is None else float(ci[1]), "n": int(n)}


def metric_rows(metrics: Mapping[str, Any]) -> list[dict]:
    """The flat table of :func:`evaluate`'s metrics that ``metrics.json`` of stage 04 stores.

    One row per (benchmark task, metric) -- ``cc_acc_<scenario>``, ``ei_f1_original``,
    ``ei_f1_strict`` (absent when strict is not defined) -- plus a ``mean`` row (the unweighted
    mean over tasks) when a metric has more than one task; CC sets first, in their order.
    """
    rows = []
    for name, m in metrics["cc"].items():
        for task, r in m["per_task"].items():
            rows.append(_metric_row(task, f"cc_acc_{name}", r["acc"], r["ci"], r["n"]))
        if len(m["per_task"]) > 1:
            rows.append(_metric_row("mean", f"cc_acc_{name}", m["mean"]["acc"], m["mean"]["ci"], m["n"]))
    pm = metrics.get("processbench")
    for key in ("original", "strict") if pm else ():
        summ = pm[key]
        if summ is None:  # no reference answers: strict EI-F1 is not defined
            continue
        for task, r in summ["per_task"].items():
            rows.append(_metric_row(task, f"ei_f1_{key}", r["f1"], r["ci"], r["n"]))
        if len(summ["per_task"]) > 1:
            rows.append(_metric_row("mean", f"ei_f1_{key}", summ["mean"]["f1"], summ["mean"]["ci"], summ["n"]))
    return rows

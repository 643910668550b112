"""Loaders for the real evaluation data: RealCritic, ProcessBench, GSM8K and the math_eval sets.

Each loader takes either a local path (a directory laid out like the public release) or a Hugging
Face Hub id, and returns frozen, typed rows. The toy world writes its benchmarks in exactly these
file formats, so the same loaders read them.

Local layouts (``root`` is what you pass):

- RealCritic: ``root/<scenario>/<task>/test.jsonl`` (scenario ``mix_data`` / ``wrong_data``), rows with
  ``question``, ``gt``, ``reasoning``, ``pred`` and (mix_data) ``previous_score`` = ``[bool]``.
- ProcessBench: ``root/<subset>.json``, a JSON list of ``{id, generator, problem, steps, label,
  final_answer_correct}`` with ``label`` the 0-based first wrong paragraph, or -1.
- GSM8K: ``root/<split>.jsonl`` with ``question`` and ``answer`` (ending ``#### <final answer>``).
- math_eval: ``root/<task>/test.jsonl``; the field names differ per task (see :func:`load_math_eval`).

ProcessBench has no reference answers; :func:`attach_processbench_answers` joins each item to its
source problem's answer (GSM8K, OlympiadBench, MATH, Omni-MATH: a local copy or a hub id each).

Hub ids: ProcessBench and GSM8K go through ``datasets.load_dataset`` (``Qwen/ProcessBench``,
``openai/gsm8k``); RealCritic and math_eval are file trees, fetched with
``huggingface_hub.snapshot_download`` and then read like a local directory. Tests only use local copies.

Usage::

    from scrit_utils.worlds import real
    root = scrit_utils.core.data_dir.data_dir()   # SCRIT_DATA_DIR, else ../shared/data, else data/real
    items = real.load_realcritic(root / "realcritic", "mix_data", tasks=["gsm8k", "math"])
    pb = real.load_processbench(root / "processbench", subsets=["gsm8k"])
    problems = [it.to_problem() for it in items]        # records.Problem
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from scrit_utils.critique.parsing import extract_last_boxed
from scrit_utils.core.records import Problem, stable_id

__all__ = [
    "RealDataError", "RealCriticItem", "ProcessBenchItem", "GSM8KItem", "MathEvalItem",
    "REALCRITIC_TASKS", "REALCRITIC_SCENARIOS", "PROCESSBENCH_SUBSETS", "MATH_EVAL_TASKS",
    "load_realcritic", "load_processbench", "load_gsm8k", "load_math_eval",
    "PROCESSBENCH_ANSWER_SOURCES", "AnswerCoverage", "problem_key", "load_problem_answers",
    "attach_processbench_answers", "default_answer_sources",
]

REALCRITIC_TASKS = ("gsm8k", "math", "college_math", "minerva_math", "olympiadbench",
                    "arc-challenge", "gpqa", "mmlu_stem")
REALCRITIC_MC_TASKS = ("arc-challenge", "gpqa", "mmlu_stem")
REALCRITIC_SCENARIOS = ("mix_data", "wrong_data")
PROCESSBENCH_SUBSETS = ("gsm8k", "math", "olympiadbench", "omnimath")
MATH_EVAL_TASKS = ("aime24", "amc23", "college_math", "gsm8k", "minerva_math", "olympiadbench")


class RealDataError(ValueError):
    """Missing or malformed benchmark data; the message names the file and line / key."""


# --- rows -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RealCriticItem:
    task: str
    idx: str
    question: str
    gt: str  # ground-truth final answer (a letter for multiple-choice tasks)
    solution: str  # the model-written solution to critique (``reasoning``)
    pred: str  # the solution's extracted final answer
    label_correct: bool | None  # previous_score; False for wrong_data (incorrect by construction)
    reference_solution: str | None = None  # gt_cot when present
    scenario: str = "mix_data"

    @property
    def id(self) -> str:
        return f"{self.task}/{self.idx}"

    def to_problem(self) -> Problem:
        return Problem(id=stable_id("realcritic", self.task, self.idx, self.question), question=self.question,
                       answer=self.gt, reference_solution=self.reference_solution, source=f"realcritic/{self.task}",
                       meta={"idx": self.idx, "scenario": self.scenario})


@dataclass(frozen=True)
class ProcessBenchItem:
    subset: str
    id: str
    problem: str
    steps: tuple[str, ...]
    label: int  # 0-based index of the first wrong paragraph, -1 when all are right
    final_answer_correct: bool
    generator: str = ""
    answer: str | None = None  # reference final answer when the file has one (toy world); needed by strict EI-F1

    def to_problem(self) -> Problem:
        return Problem(id=stable_id("processbench", self.id, self.problem), question=self.problem,
                       answer=self.answer or "",
                       source=f"processbench/{self.subset}", meta={"pb_id": self.id})


@dataclass(frozen=True)
class GSM8KItem:
    split: str
    idx: int
    question: str
    answer: str  # text after '####', stripped, thousands commas removed
    solution: str  # reasoning before '####'

    def to_problem(self) -> Problem:
        return Problem(id=stable_id("gsm8k", self.split, self.idx, self.question), question=self.question,
                       answer=self.answer, reference_solution=self.solution, source="gsm8k",
                       meta={"split": self.split, "idx": self.idx})


@dataclass(frozen=True)
class MathEvalItem:
    task: str
    idx: str
    question: str
    answer: str
    solution: str | None = None

    def to_problem(self) -> Problem:
        return Problem(id=stable_id("math_eval", self.task, self.idx, self.question), question=self.question,
                       answer=self.answer, reference_solution=self.solution, source=f"math_eval/{self.task}",
                       meta={"idx": self.idx})


# --- helpers -----------------------------------------------------------------------------------------
def _is_local(source: str | os.PathLike) -> bool:
    return Path(source).exists()


def _looks_like_hub_id(source: str | os.PathLike) -> bool:
    s = str(source)
    return (not os.path.isabs(s) and s.count("/") == 1 and not s.startswith(".")
            and all(part and " " not in part for part in s.split("/")))


def _resolve_tree(source: str | os.PathLike, what: str) -> Path:
    """Local directory as is; a hub id is downloaded with ``huggingface_hub.snapshot_download``."""
    if _is_local(source):
        return Path(source)
    if _looks_like_hub_id(source):
        from huggingface_hub import snapshot_download  # only on this path: needs network

        return Path(snapshot_download(repo_id=str(source), repo_type="dataset"))
    raise RealDataError(f"{what}: {source} is neither an existing path nor a hub id (owner/name)")


def _read_jsonl_rows(path: Path) -> list[tuple[int, dict]]:
    if not path.is_file():
        raise RealDataError(f"missing file: {path}")
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise RealDataError(f"{path}:{n}: invalid JSON ({e.msg})") from None
            if not isinstance(obj, dict):
                raise RealDataError(f"{path}:{n}: expected a JSON object, got {type(obj).__name__}")
            rows.append((n, obj))
    return rows


def _get(row: dict, key: str, where: str, types: type | tuple = str) -> Any:
    if key not in row:
        raise RealDataError(f"{where}: missing key {key!r}")
    v = row[key]
    if not isinstance(v, types):
        raise RealDataError(f"{where}: key {key!r} has type {type(v).__name__}, expected "
                            f"{getattr(types, '__name__', types)}")
    return v


def _opt_text(v: Any) -> str | None:
    if v is None:
        return None
    s = str(v)
    return None if s.strip() in ("", "None") else s


def _select(requested: Iterable[str] | None, known: Sequence[str], what: str) -> list[str]:
    if requested is None:
        return list(known)
    out = list(requested)
    unknown = [t for t in out if t not in known]
    if unknown:
        raise RealDataError(f"unknown {what} {unknown}; known: {list(known)}")
    return out


# --- RealCritic ------------------------------------------------------------------------------------
def load_realcritic(source: str | os.PathLike, scenario: str = "mix_data", tasks: Iterable[str] | None = None,
                    *, allow_missing: bool = False) -> list[RealCriticItem]:
    """RealCritic rows of ``scenario`` for ``tasks`` (default: every task present under the root).

    A requested task without a file is an error naming the path (``allow_missing`` skips it instead).
    ``label_correct`` is ``previous_score[0]``; in ``wrong_data`` (no such field) it is ``False``.
    """
    if scenario not in REALCRITIC_SCENARIOS:
        raise RealDataError(f"unknown RealCritic scenario {scenario!r}; expected one of {REALCRITIC_SCENARIOS}")
    root = _resolve_tree(source, "RealCritic")
    base = root / scenario if (root / scenario).is_dir() else root / "data" / scenario
    if tasks is None:
        names = [t for t in REALCRITIC_TASKS if (base / t / "test.jsonl").is_file()]
        if not names:
            raise RealDataError(f"no RealCritic tasks found under {base} (expected {base}/<task>/test.jsonl)")
    else:
        names = _select(tasks, REALCRITIC_TASKS, "RealCritic task(s)")
    items: list[RealCriticItem] = []
    for task in names:
        path = base / task / "test.jsonl"
        if not path.is_file():
            if allow_missing:
                continue
            raise RealDataError(f"RealCritic task {task!r} ({scenario}) not found: {path} does not exist")
        for n, row in _read_jsonl_rows(path):
            where = f"{path}:{n}"
            label: bool | None
            if "previous_score" in row:
                ps = row["previous_score"]
                if isinstance(ps, list) and ps and isinstance(ps[0], bool):
                    label = ps[0]
                elif isinstance(ps, bool):
                    label = ps
                else:
                    raise RealDataError(f"{where}: key 'previous_score' must be [bool], got {ps!r}")
            else:
                label = False if scenario == "wrong_data" else None
            items.append(RealCriticItem(
                task=task,
                idx=str(_get(row, "idx", where, (int, str))),
                question=_get(row, "question", where),
                gt=str(_get(row, "gt", where, (str, int, float))),
                solution=_get(row, "reasoning", where),
                pred=str(_get(row, "pred", where, (str, int, float))),
                label_correct=label,
                reference_solution=_opt_text(row.get("gt_cot")),
                scenario=scenario,
            ))
    return items


# --- ProcessBench ------------------------------------------------------------------------------------
def _processbench_row(subset: str, row: Any, where: str) -> ProcessBenchItem:
    if not isinstance(row, dict):
        raise RealDataError(f"{where}: expected an object, got {type(row).__name__}")
    steps = _get(row, "steps", where, (list, tuple))
    if not all(isinstance(s, str) for s in steps):
        raise RealDataError(f"{where}: key 'steps' must be a list of strings")
    label = _get(row, "label", where, int)
    if isinstance(label, bool) or not (-1 <= label < len(steps)):
        raise RealDataError(f"{where}: key 'label' = {label!r} is not -1 or a step index < {len(steps)}")
    fac = _get(row, "final_answer_correct", where, bool)
    return ProcessBenchItem(subset=subset, id=str(_get(row, "id", where, (str, int))),
                            problem=_get(row, "problem", where), steps=tuple(steps), label=label,
                            final_answer_correct=fac, generator=str(row.get("generator", "")),
                            answer=_opt_text(row.get("answer")))


def load_processbench(source: str | os.PathLike, subsets: Iterable[str] | None = None) -> list[ProcessBenchItem]:
    """ProcessBench rows (default: every subset present locally; all four from the hub)."""
    if _is_local(source):
        root = Path(source)
        names = ([s for s in PROCESSBENCH_SUBSETS if (root / f"{s}.json").is_file()] if subsets is None
                 else _select(subsets, PROCESSBENCH_SUBSETS, "ProcessBench subset(s)"))
        if not names:
            raise RealDataError(f"no ProcessBench subsets found under {root} (expected {root}/<subset>.json)")
        items = []
        for subset in names:
            path = root / f"{subset}.json"
            if not path.is_file():
                raise RealDataError(f"ProcessBench subset {subset!r} not found: {path} does not exist")
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as e:
                raise RealDataError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None
            if not isinstance(data, list):
                raise RealDataError(f"{path}: expected a JSON list of rows")
            items += [_processbench_row(subset, row, f"{path}[{i}] (id={row.get('id') if isinstance(row, dict) else '?'})")
                      for i, row in enumerate(data)]
        return items
    if not _looks_like_hub_id(source):
        raise RealDataError(f"ProcessBench: {source} is neither an existing path nor a hub id")
    from datasets import load_dataset  # hub path (network)

    items = []
    for subset in _select(subsets, PROCESSBENCH_SUBSETS, "ProcessBench subset(s)"):
        ds = load_dataset(str(source), split=subset)
        items += [_processbench_row(subset, dict(row), f"{source}:{subset}[{i}]") for i, row in enumerate(ds)]
    return items


# --- GSM8K ---------------------------------------------------------------------------------------------
def _gsm8k_row(split: str, i: int, row: dict, where: str) -> GSM8KItem:
    text = _get(row, "answer", where)
    if "####" not in text:
        raise RealDataError(f"{where}: key 'answer' has no '#### <final answer>'")
    solution, final = text.rsplit("####", 1)
    return GSM8KItem(split=split, idx=i, question=_get(row, "question", where),
                     answer=final.strip().replace(",", ""), solution=solution.strip())


def load_gsm8k(source: str | os.PathLike, split: str = "test") -> list[GSM8KItem]:
    """GSM8K ``train`` / ``test``: local ``<root>/<split>.jsonl`` or a hub id (``openai/gsm8k``)."""
    if split not in ("train", "test"):
        raise RealDataError(f"unknown GSM8K split {split!r}; expected 'train' or 'test'")
    if _is_local(source):
        p = Path(source)
        path = p if p.is_file() else p / f"{split}.jsonl"
        return [_gsm8k_row(split, i, row, f"{path}:{n}") for i, (n, row) in enumerate(_read_jsonl_rows(path))]
    if not _looks_like_hub_id(source):
        raise RealDataError(f"GSM8K: {source} is neither an existing path nor a hub id")
    from datasets import load_dataset  # hub path (network)

    ds = load_dataset(str(source), "main", split=split)
    return [_gsm8k_row(split, i, dict(row), f"{source}:{split}[{i}]") for i, row in enumerate(ds)]


# --- math_eval -------------------------------------------------------------------------------------------
def _strip_dollars(s: str) -> str:
    s = s.strip()
    if len(s) >= 2 and s.startswith("$") and s.endswith("$"):
        s = s.strip("$").strip()
    return s


def _math_eval_answer(task: str, row: dict, where: str) -> str:
    if task == "minerva_math" or ("answer" not in row and "final_answer" not in row and "solution" in row):
        sol = _get(row, "solution", where)
        box = extract_last_boxed(sol)
        if box is None:
            raise RealDataError(f"{where}: key 'solution' has no \\boxed{{}} answer")
        return box
    if "final_answer" in row:  # olympiadbench: a list of answers
        fa = row["final_answer"]
        if isinstance(fa, list) and fa:
            return ", ".join(_strip_dollars(str(a)) for a in fa)
        if isinstance(fa, str) and fa.strip():
            return _strip_dollars(fa)
        raise RealDataError(f"{where}: key 'final_answer' is empty")
    ans = _get(row, "answer", where, (str, int, float))
    if isinstance(ans, float) and ans.is_integer():  # amc23 stores 27.0
        return str(int(ans))
    ans = str(ans)
    if task == "gsm8k" and "####" in ans:
        return ans.rsplit("####", 1)[1].strip().replace(",", "")
    return _strip_dollars(ans)


def load_math_eval(source: str | os.PathLike, tasks: Iterable[str] | None = None) -> list[MathEvalItem]:
    """Qwen2.5-Math evaluation sets. Per task: question in ``question`` (or ``problem``); answer in
    ``answer`` (college_math: ``$...$`` stripped; amc23: float; gsm8k: after ``####``),
    ``final_answer`` (olympiadbench: a list, joined with ", ") or the last ``\\boxed{}`` of
    ``solution`` (minerva_math); id in ``idx`` / ``id`` / ``question_number``, else the line number."""
    root = _resolve_tree(source, "math_eval")
    names = ([t for t in MATH_EVAL_TASKS if (root / t / "test.jsonl").is_file()] if tasks is None
             else list(tasks))
    if not names:
        raise RealDataError(f"no math_eval tasks found under {root} (expected {root}/<task>/test.jsonl)")
    items: list[MathEvalItem] = []
    for task in names:
        path = root / task / "test.jsonl"
        if not path.is_file():
            raise RealDataError(f"math_eval task {task!r} not found: {path} does not exist")
        for n, row in _read_jsonl_rows(path):
            where = f"{path}:{n}"
            q = row.get("question", row.get("problem"))
            if not isinstance(q, str) or not q.strip():
                raise RealDataError(f"{where}: missing key 'question' (or 'problem')")
            ctx = _opt_text(row.get("context"))
            if ctx:
                q = ctx + "\n" + q
            idx = next((row[k] for k in ("idx", "id", "question_number") if row.get(k) is not None), n - 1)
            sol = row.get("solution")
            if isinstance(sol, list):
                sol = "\n\n".join(str(s) for s in sol)
            items.append(MathEvalItem(task=task, idx=str(idx), question=q, answer=_math_eval_answer(task, row, where),
                                      solution=_opt_text(sol)))
    return items


# --- reference answers for ProcessBench (strict EI-F1) ---------------------------------------------------
# ProcessBench ships no reference answers; each subset's problems come from a public set that has them.
PROCESSBENCH_ANSWER_SOURCES = {
    "gsm8k": ("gsm8k", "GSM8K train + test: a dir of <split>.jsonl, or openai/gsm8k"),
    "olympiadbench": ("math_eval/olympiadbench", "OlympiadBench: math_eval/olympiadbench (dir or test.jsonl)"),
    "math": ("math", "MATH test problems: a dir/.jsonl/.json or a hub dataset with problem + answer or solution"),
    "omnimath": ("omnimath", "Omni-MATH: a dir/.jsonl/.json or a hub dataset (e.g. KbsdJames/Omni-MATH)"),
}
_QUAD_RE = re.compile(r"\$\\q?quad\$")  # a spacing-only "$\quad$" that some copies put before the text
_SPACE_RE = re.compile(r"\s+")


def problem_key(text: str) -> str:
    """Problem text as a join key: whitespace and ``$\\quad$`` spacers removed (copies differ in both)."""
    return _SPACE_RE.sub("", _QUAD_RE.sub("", text))


@dataclass(frozen=True)
class AnswerCoverage:
    """How many items of a ProcessBench subset got a reference answer, and from where."""

    subset: str
    n_items: int
    n_answered: int
    source: str | None = None
    n_ambiguous: int = 0  # the source holds the problem twice with different answers: left unanswered

    @property
    def fraction(self) -> float:
        return self.n_answered / self.n_items if self.n_items else 0.0


def _source_rows(source: str | os.PathLike) -> list[tuple[str, dict]]:
    """``(where, row)`` from a .jsonl / .json file, a dir with test.jsonl, or a hub id (``owner/name[:config]``)."""
    p = Path(source)
    if p.is_dir():
        p = p / "test.jsonl"
    if p.suffix == ".json" and p.is_file():
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise RealDataError(f"{p}:{e.lineno}: invalid JSON ({e.msg})") from None
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise RealDataError(f"{p}: expected a JSON list of objects")
        return [(f"{p}[{i}]", r) for i, r in enumerate(data)]
    if p.exists() or _is_local(source) or not _looks_like_hub_id(source):
        return [(f"{p}:{n}", r) for n, r in _read_jsonl_rows(p)]
    from datasets import load_dataset  # hub path (network)

    name, _, config = str(source).partition(":")
    ds = load_dataset(name, config or None, split="test")
    return [(f"{source}:test[{i}]", dict(r)) for i, r in enumerate(ds)]


def load_problem_answers(source: str | os.PathLike, subset: str) -> dict[str, str | None]:
    """:func:`problem_key` -> reference answer for the source set of ProcessBench ``subset``.

    GSM8K reads both splits (ProcessBench's GSM8K problems are test problems; train costs nothing).
    Other sets: rows with ``question`` or ``problem`` (``context`` is put in front, as in
    :func:`load_math_eval`) and the answer as in :func:`load_math_eval` (``answer``, ``final_answer``,
    or the last ``\\boxed{}`` of ``solution``). A problem listed twice with different answers maps to None.
    """
    if subset == "gsm8k":
        pairs = [(it.question, it.answer) for split in ("test", "train") for it in load_gsm8k(source, split)]
    else:
        pairs = []
        for where, row in _source_rows(source):
            q = row.get("question", row.get("problem"))
            if not isinstance(q, str) or not q.strip():
                raise RealDataError(f"{where}: missing key 'question' (or 'problem')")
            ctx = _opt_text(row.get("context"))
            pairs.append(((ctx + "\n" + q) if ctx else q, _math_eval_answer(subset, row, where)))
    out: dict[str, str | None] = {}
    for q, a in pairs:
        k = problem_key(q)
        out[k] = a if out.get(k, a) == a else None
    return out


def attach_processbench_answers(items: Sequence[ProcessBenchItem], sources: dict[str, str | os.PathLike]
                                ) -> tuple[list[ProcessBenchItem], dict[str, AnswerCoverage]]:
    """Items with ``answer`` filled from each subset's source set (joined on :func:`problem_key`), and the
    coverage per subset. An item that already has an answer (the toy world's files) keeps it."""
    unknown = sorted(set(sources) - set(PROCESSBENCH_SUBSETS))
    if unknown:
        raise RealDataError(f"answer sources for unknown ProcessBench subset(s) {unknown}; "
                            f"known: {list(PROCESSBENCH_SUBSETS)}")
    tables = {sub: load_problem_answers(src, sub) for sub, src in sources.items()
              if any(it.subset == sub for it in items)}
    out, counts = [], {}
    for it in items:
        n = counts.setdefault(it.subset, [0, 0, 0])
        ans = it.answer
        if ans is None and it.subset in tables:
            ans = tables[it.subset].get(problem_key(it.problem))
            n[2] += problem_key(it.problem) in tables[it.subset] and ans is None
        n[0] += 1
        n[1] += ans is not None
        out.append(dataclasses.replace(it, answer=ans) if ans != it.answer else it)
    coverage = {sub: AnswerCoverage(sub, a, b, str(sources[sub]) if sub in sources else None, c)
                for sub, (a, b, c) in counts.items()}
    return out, coverage


def default_answer_sources(data_root: str | os.PathLike) -> dict[str, Path]:
    """The source sets found under a data root laid out like the data folder (``scrit data fetch``; see
    :data:`PROCESSBENCH_ANSWER_SOURCES` for the sub-paths)."""
    root = Path(data_root)
    if not root.is_dir():
        raise RealDataError(f"answers root {root} is not a directory")
    return {sub: root / rel for sub, (rel, _) in PROCESSBENCH_ANSWER_SOURCES.items() if (root / rel).exists()}

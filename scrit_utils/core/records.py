"""Typed records that flow between stages, and JSONL I/O that is atomic and resumable.

Every record has a stable string ``id``. Two ways to write:

- :func:`write_jsonl` writes a whole file atomically (temp file + ``os.replace``).
- :class:`ResumableJsonl` appends to ``<path>.partial`` while a stage runs, skips ids
  already there on a re-run (a SIGKILL leaves at most one torn last line, which is
  dropped), and :meth:`ResumableJsonl.finalize` renames it to ``<path>`` when done.

Example::

    out = ResumableJsonl(stage_dir / "solutions.jsonl", Solution)
    todo = [p for p in problems if p.id not in out.done_ids]
    for batch in chunks(todo, 64):
        out.append(generate(batch))
    out.finalize()

A malformed line raises :class:`JsonlError` naming the file and 1-based line.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Type, TypeVar

T = TypeVar("T")


class JsonlError(ValueError):
    """A JSONL file that cannot be read; the message names file and line."""


def stable_id(*parts: Any, n: int = 16) -> str:
    """Deterministic short id from the given parts (e.g. the problem text)."""
    h = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).hexdigest()
    return h[:n]


# --- records -------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    id: str
    question: str
    answer: str  # reference final answer
    reference_solution: str | None = None  # step-numbered text, if the world has one
    source: str = ""  # world / dataset name, e.g. "arith" or "gsm8k"
    meta: dict = field(default_factory=dict)  # difficulty knobs, original index, ...


@dataclass(frozen=True)
class Solution:
    id: str
    problem_id: str
    generator: str  # which model wrote it
    steps: tuple[str, ...]
    final_answer: str | None
    is_correct: bool | None = None  # graded against Problem.answer
    text: str = ""  # raw generation
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Pair:
    """A student solution paired with the reference solution shown to the contrastive critic."""

    id: str
    problem_id: str
    solution_id: str
    reference_solution_id: str | None  # None: the problem's own reference solution
    label_correct: bool  # known label of the student solution


@dataclass(frozen=True)
class CritiqueRecord:
    """One generated critique. ``mode`` is contrastive | direct | bug_injection | validation."""

    id: str
    target_id: str  # pair / solution / correction it critiques
    mode: str
    model: str
    prompt: str
    text: str
    verdict: bool | None = None
    first_error_step: int | None = None
    final_answer: str | None = None
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ValidationResult:
    id: str  # == critique id
    critique_id: str
    checks: dict  # check name -> bool (only the enabled checks)
    passed: bool
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SFTExample:
    id: str
    prompt: list  # chat messages (no reference)
    completion: str
    label_correct: bool
    meta: dict = field(default_factory=dict)


RECORD_TYPES = {t.__name__: t for t in (Problem, Solution, Pair, CritiqueRecord, ValidationResult, SFTExample)}


def to_dict(rec: Any) -> dict:
    return dataclasses.asdict(rec) if dataclasses.is_dataclass(rec) else dict(rec)


def from_dict(cls: Type[T], d: dict, where: str = "") -> T:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise JsonlError(f"{where}: unknown field(s) {sorted(unknown)} for {cls.__name__}")
    kw = dict(d)
    for f in dataclasses.fields(cls):
        if f.name in kw and isinstance(kw[f.name], list) and "tuple" in str(f.type):
            kw[f.name] = tuple(kw[f.name])
    try:
        return cls(**kw)
    except TypeError as e:
        raise JsonlError(f"{where}: {e}") from None


# --- reading -------------------------------------------------------------------
def iter_jsonl(path: str | os.PathLike, cls: Type[T] | None = None, allow_torn_tail: bool = False) -> Iterator[Any]:
    """Yield dicts (or ``cls`` records) from ``path``; blank lines are skipped."""
    path = Path(path)
    with open(path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    torn_tail = not data.endswith(b"\n") and data != b""
    for i, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw.decode("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            if allow_torn_tail and torn_tail and i == len(lines):
                return  # a crash mid-write; the resumable writer drops this line
            raise JsonlError(f"{path}:{i}: malformed JSON line ({e})") from None
        if not isinstance(obj, dict):
            raise JsonlError(f"{path}:{i}: expected a JSON object, got {type(obj).__name__}")
        yield from_dict(cls, obj, f"{path}:{i}") if cls is not None else obj


def read_jsonl(path: str | os.PathLike, cls: Type[T] | None = None) -> list[Any]:
    return list(iter_jsonl(path, cls))


# --- writing -------------------------------------------------------------------
def _dumps(rec: Any) -> str:
    return json.dumps(to_dict(rec), ensure_ascii=False, sort_keys=False)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write text to ``path`` via a temp file in the same directory + rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_jsonl(path: str | os.PathLike, records: Iterable[Any]) -> int:
    """Atomically write all records; returns the count. Duplicate ids are an error."""
    seen: set[str] = set()
    lines = []
    for rec in records:
        d = to_dict(rec)
        rid = d.get("id")
        if rid is not None:
            if rid in seen:
                raise ValueError(f"{path}: duplicate id {rid!r}")
            seen.add(rid)
        lines.append(json.dumps(d, ensure_ascii=False))
    atomic_write_text(path, "".join(l + "\n" for l in lines))
    return len(lines)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


class ResumableJsonl:
    """Append-only writer keyed by record id; see the module docstring."""

    def __init__(self, path: str | os.PathLike, cls: Type[T] | None = None):
        self.path = Path(path)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.cls = cls
        self.done_ids: set[str] = set()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():  # already finalized
            self.done_ids = {r["id"] for r in iter_jsonl(self.path)}
            self.finalized = True
            return
        self.finalized = False
        if self.partial.exists():
            self._repair_tail()
            for rec in iter_jsonl(self.partial):
                self.done_ids.add(rec["id"])

    def _repair_tail(self) -> None:
        """Cut a torn last line left by a crash, so appends start on a clean line."""
        data = self.partial.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            with open(self.partial, "r+b") as f:
                f.truncate(cut)

    def __contains__(self, rid: str) -> bool:
        return rid in self.done_ids

    def append(self, records: Iterable[Any]) -> int:
        if self.finalized:
            raise RuntimeError(f"{self.path} is finalized; delete it to regenerate")
        n = 0
        with open(self.partial, "a", encoding="utf-8") as f:
            for rec in records:
                d = to_dict(rec)
                rid = d["id"]
                if rid in self.done_ids:
                    continue
                f.write(json.dumps(d, ensure_ascii=False) + "\n")
                self.done_ids.add(rid)
                n += 1
            f.flush()
            os.fsync(f.fileno())
        return n

    def finalize(self) -> Path:
        if not self.finalized:
            if not self.partial.exists():
                self.partial.touch()
            os.replace(self.partial, self.path)
            self.finalized = True
        return self.path

    def records(self) -> list[Any]:
        src = self.path if self.finalized else self.partial
        return read_jsonl(src, self.cls) if src.exists() else []

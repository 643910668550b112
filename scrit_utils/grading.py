"""Answer grading: is a predicted final answer equivalent to the ground truth?

``is_equivalent(pred, gt)`` layers cheap, exact checks in front of math-verify:

1. clean both sides (last ``\\boxed{}`` if there is one, ``$``, ``\\text{}``, ``####``, trailing period);
2. identical strings -> True;
3. multiple choice: when ``gt`` is a single letter A-E (ARC-C, GPQA, MMLU-STEM), ``pred`` must name
   the same letter ("B", "(B)", "B. text", "\\text{B}", "answer is (B)");
4. GSM8K-style numbers on both sides ("1,000", "540 meters", "$5", "#### 540") -> numeric compare;
5. otherwise ``math_verify.parse`` + ``math_verify.verify`` (LaTeX / sympy equivalence).

Timeouts. math-verify's own timeout uses ``signal.alarm``, which works only in the main thread of
the main interpreter, and no in-process timeout can stop a long C-level computation (a huge sympy
power holds the GIL). So math-verify here always runs with its own timeouts off, inside worker
*processes* started with :mod:`subprocess` (``python -m scrit_utils.grading --worker``), talking JSON
lines over pipes. The parent waits on each item with a deadline and, past it, kills the worker,
grades the item ``False`` and starts a fresh worker. ``subprocess`` (not ``multiprocessing``) is
used because it also works from daemonic processes (e.g. ``multiprocessing.Pool`` workers, which may
not start multiprocessing children) and from any thread; the fast paths 1-4 run in the caller and
never pay the IPC cost.

Usage::

    from scrit_utils.grading import is_equivalent, grade_batch
    is_equivalent("\\\\frac{1}{2}", "0.5")                 # True
    is_equivalent("(B) 12 apples", "B")                   # True
    grade_batch([(pred, gt), ...], n_jobs=None, timeout_s=5)  # list[bool], parallel, tqdm bar
"""
from __future__ import annotations

import atexit
import json
import logging
import math
import os
import re
import selectors
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Iterable, Sequence

from scrit_utils.parsing import extract_last_boxed

__all__ = ["is_equivalent", "grade_batch", "normalize_answer", "choice_letter", "as_number", "GradingWorkerError"]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 5.0
_WORKER_START_TIMEOUT_S = 120.0  # importing sympy + math-verify on a busy 2-core machine


class GradingWorkerError(RuntimeError):
    """A grading worker process could not be started (not raised for per-item timeouts)."""


# --- normalisation and fast paths ------------------------------------------------------------------
_TEXT_WRAP_RE = re.compile(r"\\(?:text|textbf|mathrm|mathbf|mbox|textit)\s*\{([^{}]*)\}")
_SPACE_CMDS_RE = re.compile(r"\\[,;:! ]|\\quad|\\qquad|~")


def normalize_answer(s: str | None) -> str:
    """Light, meaning-preserving clean-up of an answer string (used by every path)."""
    if s is None:
        return ""
    s = str(s)
    boxed = extract_last_boxed(s)
    if boxed is not None:
        s = boxed
    s = s.strip()
    s = re.sub(r"^#{2,}\s*", "", s)  # "#### 540"
    s = s.replace("\\left", "").replace("\\right", "").replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = s.replace("\\$", "$")
    s = _SPACE_CMDS_RE.sub(" ", s)
    # "$x$", "\( x \)", "\[ x \]" wrappers
    for a, b in (("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if len(s) >= len(a) + len(b) and s.startswith(a) and s.endswith(b):
            s = s[len(a):len(s) - len(b)].strip()
    s = s.strip().rstrip(".").strip()
    return s


_LETTER_RE = re.compile(
    r"^(?:\(|\[)?\s*([A-E])\s*(?:\)|\])?(?:[\.\):,]|\s|$)"
)
_LETTER_ANYWHERE_RE = re.compile(r"(?:answer|option|choice)(?:\s+is)?\s*[:=]?\s*\(?([A-E])\)?(?![A-Za-z])", re.IGNORECASE)


def choice_letter(s: str | None) -> str | None:
    """The multiple-choice letter an answer names ("B", "(B)", "B. text", "\\text{B}"), else None."""
    t = normalize_answer(s)
    t = _TEXT_WRAP_RE.sub(r"\1", t).strip().strip("$").strip()
    if len(t) == 1 and t.upper() in "ABCDE":
        return t.upper()
    m = _LETTER_RE.match(t)
    if m:
        return m.group(1)
    m = _LETTER_ANYWHERE_RE.search(t)
    return m.group(1).upper() if m else None


def _is_choice_gt(gt: str) -> str | None:
    t = _TEXT_WRAP_RE.sub(r"\1", normalize_answer(gt)).strip()
    m = re.fullmatch(r"\(?\s*([A-E])\s*\)?", t)
    return m.group(1) if m else None


_NUM_RE = re.compile(
    r"^[-\u2212]?\s*(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?$"
)
_UNIT_TAIL_RE = re.compile(r"^(.*?\d)\s*(?:\\%|%|\\text\s*\{\s*[A-Za-z][A-Za-z .]*\}|[A-Za-z]{2,}(?:\s+[A-Za-z]+)*)\s*\.?$")


def as_number(s: str | None) -> float | None:
    """A plain number in GSM8K style ("1,000", "540 meters", "$5", "-3.5", "#### 7"), else None.

    Only whole-string numbers (optionally with a currency sign and a trailing unit word of two or
    more letters) count: "5x" or "2/3" are left to math-verify.
    """
    t = normalize_answer(s)
    t = t.replace("$", "").strip()
    m = _UNIT_TAIL_RE.match(t)
    if m:
        t = m.group(1).strip()
    t = t.replace("\u2212", "-").replace(" ", "")
    if not t or not _NUM_RE.match(t) or not any(c.isdigit() for c in t):
        return None
    try:
        v = float(t.replace(",", ""))
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _numbers_equal(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-8)


_UNDECIDED = None
_SINGLE_TOKEN_GROUP_RE = re.compile(r"([\^_])\{(\w)\}")
_YES_NO_RE = re.compile(r"^(yes|no)(?:$|[\s.,;:!])", re.IGNORECASE)


def _canon(s: str) -> str:
    """String form for exact comparison: no spaces, ``x^{2}`` == ``x^2``."""
    return _SINGLE_TOKEN_GROUP_RE.sub(r"\1\2", s.replace(" ", ""))


def _yes_no(s: str) -> str | None:
    """"yes"/"no" when the answer is, or starts with, that word ("No. It is not closed ...")."""
    m = _YES_NO_RE.match(_TEXT_WRAP_RE.sub(r"\1", s).strip())
    return m.group(1).lower() if m else None


def _fast_path(pred: str, gt: str) -> bool | None:
    """Cheap, exact decisions; None when math-verify is needed."""
    p, g = normalize_answer(pred), normalize_answer(gt)
    if not p or not g:
        return False
    if _canon(p) == _canon(g):
        return True
    yn_p, yn_g = _yes_no(p), _yes_no(g)
    if yn_p is not None and yn_g is not None:
        return yn_p == yn_g
    letter = _is_choice_gt(gt)
    if letter is not None:
        return choice_letter(pred) == letter
    np_, ng = as_number(p), as_number(g)
    if np_ is not None and ng is not None:
        return _numbers_equal(np_, ng)
    return _UNDECIDED


def _math_verify(pred: str, gt: str) -> bool:
    """math-verify with its own (signal-based) timeouts switched off; call only in a worker."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    logging.getLogger("math_verify").setLevel(logging.ERROR)
    cfg = (LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig())

    def _parse(s: str):
        out = parse(f"${s}$", extraction_config=cfg, parsing_timeout=None)
        if not out:
            out = parse(s, extraction_config=cfg, parsing_timeout=None)
        return out

    g, p = _parse(normalize_answer(gt)), _parse(normalize_answer(pred))
    if not g or not p:
        return False
    return bool(verify(g, p, timeout_seconds=None))


def _equivalent_no_timeout(pred: str, gt: str) -> bool:
    fast = _fast_path(pred, gt)
    if fast is not None:
        return fast
    try:
        return _math_verify(pred, gt)
    except Exception:  # math-verify / sympy errors on odd input -> not equivalent
        return False


# --- worker processes ---------------------------------------------------------------------------------
def _worker_main() -> None:
    """Worker loop: one JSON request per stdin line -> one JSON reply per stdout line."""
    import math_verify  # noqa: F401  (import before announcing readiness)
    import sympy  # noqa: F401

    out = sys.stdout
    out.write('{"ready": true}\n')
    out.flush()
    for line in sys.stdin:
        req = json.loads(line)
        if req.get("sleep_s"):  # test hook: simulate a pathological item
            time.sleep(float(req["sleep_s"]))
        try:
            ok = _equivalent_no_timeout(req["pred"], req["gt"])
        except Exception:
            ok = False
        out.write(json.dumps({"i": req["i"], "ok": ok}) + "\n")
        out.flush()


def _spawn_worker() -> subprocess.Popen:
    env = dict(os.environ)
    pkg_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = pkg_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return subprocess.Popen(
        [sys.executable, "-m", "scrit_utils.grading", "--worker"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True, encoding="utf-8", bufsize=1, env=env,
    )


def _kill(proc: subprocess.Popen) -> None:
    try:
        proc.kill()
        proc.wait(timeout=10)
    except Exception:  # pragma: no cover
        pass
    for f in (proc.stdin, proc.stdout):
        try:
            f.close()
        except Exception:
            pass


@dataclass
class _Slot:
    proc: subprocess.Popen
    state: str = "starting"  # starting | idle | busy
    item: int = -1
    deadline: float = 0.0


class _WorkerPool:
    """``n`` killable worker processes; ``run`` grades items with a hard per-item deadline."""

    def __init__(self, n: int):
        self.n = max(1, int(n))
        self.slots: list[_Slot] = []

    def _start(self) -> _Slot:
        return _Slot(_spawn_worker(), "starting", -1, time.monotonic() + _WORKER_START_TIMEOUT_S)

    def close(self) -> None:
        for s in self.slots:
            _kill(s.proc)
        self.slots = []

    def run(self, items: Sequence[tuple[int, str, str]], results: list, timeout_s: float,
            pbar=None, sleep_s: float = 0.0) -> None:
        """Grade ``(index, pred, gt)`` items into ``results[index]``."""
        todo = list(reversed(items))
        while len(self.slots) < min(self.n, max(1, len(items))):
            self.slots.append(self._start())
        sel = selectors.DefaultSelector()
        try:
            for s in self.slots:
                sel.register(s.proc.stdout, selectors.EVENT_READ, s)
            busy = 0
            while todo or busy:
                # dispatch to idle workers
                for s in self.slots:
                    if s.state == "idle" and todo:
                        i, pred, gt = todo.pop()
                        req = {"i": i, "pred": pred, "gt": gt}
                        if sleep_s:
                            req["sleep_s"] = sleep_s
                        try:
                            s.proc.stdin.write(json.dumps(req) + "\n")
                            s.proc.stdin.flush()
                        except (BrokenPipeError, OSError):
                            todo.append((i, pred, gt))
                            self._replace(sel, s)
                            continue
                        s.state, s.item, s.deadline = "busy", i, time.monotonic() + timeout_s
                        busy += 1
                if not todo and not busy:
                    break
                now = time.monotonic()
                wait = max(0.0, min(s.deadline for s in self.slots if s.state != "idle") - now) \
                    if any(s.state != "idle" for s in self.slots) else 0.05
                for key, _ in sel.select(timeout=wait):
                    s = key.data
                    line = s.proc.stdout.readline()
                    if not line:  # worker died
                        if s.state == "busy":
                            results[s.item] = False
                            busy -= 1
                            if pbar is not None:
                                pbar.update(1)
                        elif s.state == "starting":
                            raise GradingWorkerError("grading worker exited during start-up "
                                                     f"({sys.executable} -m scrit_utils.grading --worker)")
                        self._replace(sel, s)
                        continue
                    msg = json.loads(line)
                    if s.state == "starting":
                        s.state = "idle"
                    elif s.state == "busy" and msg.get("i") == s.item:
                        results[s.item] = bool(msg["ok"])
                        s.state, s.item = "idle", -1
                        busy -= 1
                        if pbar is not None:
                            pbar.update(1)
                now = time.monotonic()
                for s in list(self.slots):
                    if s.state != "idle" and now > s.deadline:
                        if s.state == "starting":
                            raise GradingWorkerError(
                                f"grading worker did not start within {_WORKER_START_TIMEOUT_S:.0f} s")
                        log.warning("grading item %d timed out after %.1f s; graded False", s.item, timeout_s)
                        results[s.item] = False
                        busy -= 1
                        if pbar is not None:
                            pbar.update(1)
                        self._replace(sel, s)
        except BaseException:
            self.close()
            raise
        finally:
            sel.close()

    def _replace(self, sel: selectors.BaseSelector, s: _Slot) -> None:
        try:
            sel.unregister(s.proc.stdout)
        except Exception:
            pass
        _kill(s.proc)
        new = self._start()
        self.slots[self.slots.index(s)] = new
        sel.register(new.proc.stdout, selectors.EVENT_READ, new)


# one persistent single-worker pool per process for is_equivalent(); a lock makes it thread-safe
_SINGLE: _WorkerPool | None = None
_SINGLE_LOCK = threading.Lock()


def _close_single() -> None:
    global _SINGLE
    if _SINGLE is not None:
        _SINGLE.close()
        _SINGLE = None


atexit.register(_close_single)


def is_equivalent(pred: str | None, gt: str | None, timeout_s: float | None = DEFAULT_TIMEOUT_S,
                  *, _test_sleep_s: float = 0.0) -> bool:
    """True when ``pred`` states the same final answer as ``gt``.

    ``timeout_s`` is a hard limit for the math-verify step (run in a killable worker process);
    ``None`` runs math-verify in-process without any timeout. A timed-out item is ``False``.
    ``_test_sleep_s`` makes the worker sleep first (test hook for the timeout).
    """
    global _SINGLE
    if pred is None or gt is None:
        return False
    pred, gt = str(pred), str(gt)
    if not _test_sleep_s:
        fast = _fast_path(pred, gt)
        if fast is not None:
            return fast
        if timeout_s is None:
            return _equivalent_no_timeout(pred, gt)
    results: list = [False]
    with _SINGLE_LOCK:
        if _SINGLE is None:
            _SINGLE = _WorkerPool(1)
        _SINGLE.run([(0, pred, gt)], results, timeout_s or DEFAULT_TIMEOUT_S, sleep_s=_test_sleep_s)
    return bool(results[0])


def grade_batch(pairs: Iterable[tuple[str, str]], n_jobs: int | None = None, timeout_s: float = DEFAULT_TIMEOUT_S,
                progress: bool = True, *, _test_sleep_s: float = 0.0) -> list[bool]:
    """Grade ``(pred, gt)`` pairs in parallel (``n_jobs`` worker processes, default all cores).

    Fast-path items are decided in the caller; the rest go to the worker pool with a hard
    per-item ``timeout_s``. Order of the result matches ``pairs``.
    """
    from tqdm.auto import tqdm

    pairs = [(("" if p is None else str(p)), ("" if g is None else str(g))) for p, g in pairs]
    results: list = [None] * len(pairs)
    slow: list[tuple[int, str, str]] = []
    for i, (p, g) in enumerate(pairs):
        fast = None if _test_sleep_s else _fast_path(p, g)
        if fast is None:
            slow.append((i, p, g))
        else:
            results[i] = fast
    n = n_jobs if n_jobs and n_jobs > 0 else (os.cpu_count() or 1)
    with tqdm(total=len(pairs), initial=len(pairs) - len(slow), desc="grading", disable=not progress,
              dynamic_ncols=True) as pbar:
        if slow:
            pool = _WorkerPool(min(n, len(slow)))
            try:
                pool.run(slow, results, timeout_s, pbar=pbar, sleep_s=_test_sleep_s)
            finally:
                pool.close()
    return [bool(r) for r in results]


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        _worker_main()
    else:
        print("usage: python -m scrit_utils.grading --worker   (internal grading worker)", file=sys.stderr)
        sys.exit(2)

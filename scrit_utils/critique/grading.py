"""Answer grading: is a predicted final answer equivalent to the ground truth?

``is_equivalent(pred, gt)`` layers cheap, exact checks in front of math-verify:

1. clean both sides (last ``\\boxed{}`` if there is one, ``$``, ``\\text{}``, ``####``, trailing period,
   spacing commands; a matrix row break ``\\\\`` is kept);
2. identical strings -> True;
3. multiple choice: when ``gt`` is a single letter A-E (ARC-C, GPQA, MMLU-STEM), ``pred`` must name
   the same letter ("B", "(B)", "B. text", "\\text{B}", "answer is (B)");
4. plain numbers on both sides ("1,000", "540 meters", "$5", "#### 540", "2.5e-4",
   "2.5 \\times 10^{-4}") -> numeric compare, relative tolerance 1e-4 ("62.5%" equals 62.5 and 0.625);
5. otherwise ``math_verify.parse`` + ``math_verify.verify`` (LaTeX / sympy equivalence), after a
   normalisation step: E-notation is written ``2.5\\times10^{-4}`` (unless an answer uses the
   constant e, as in "2e-1" = 2e - 1), and equations in a list get their lone variable on the left.
   Letters are kept as variables first (math-verify's unit stripping is off: its unit list holds
   c, g, m, s, ...); only if that fails is it switched on, and then a stripped "unit" must not be a
   variable of the other answer, and units stripped from both sides must be the same
   (``\\frac{1}{2}c`` = ``\\frac{c}{2}``, ``10 cm`` = ``10``, ``2 s`` != ``2 m``). A letter after a
   number on one side only still reads as a unit (``5 m`` = ``5``, hence also ``2c`` = ``2``).
   math-verify's ``allow_set_relation_comp`` is on: ``[\\frac{1}{2}, 8]`` = ``\\frac{1}{2} \\leq x \\leq 8``.

Order in lists (math-verify's policy, kept and tested): the reference answer decides. A tuple,
interval, vector or matrix in ``gt`` is ordered (``(1,2)`` != ``(2,1)``; the prediction's brackets are
not compared, so ``1,2`` matches ``(1,2)``). A set ``\\{1,2\\}`` or a bare list ``1,2`` in ``gt`` is
unordered and ignores repeats (``2,1`` and ``1,2,2`` match it), as is a list of tuples
(``(1,9),(2,16)`` = ``(2,16),(1,9)``).

Timeouts. math-verify's own timeout uses ``signal.alarm``, which works only in the main thread of
the main interpreter, and no in-process timeout can stop a long C-level computation (a huge sympy
power holds the GIL). So math-verify here always runs with its own timeouts off, inside worker
*processes* started with :mod:`subprocess` (``python -m scrit_utils.critique.grading --worker``), talking JSON
lines over pipes. The parent waits on each item with a deadline and, past it, kills the worker,
grades the item ``False`` and starts a fresh worker. ``subprocess`` (not ``multiprocessing``) is
used because it also works from daemonic processes (e.g. ``multiprocessing.Pool`` workers, which may
not start multiprocessing children) and from any thread; the fast paths 1-4 run in the caller and
never pay the IPC cost.

Usage::

    from scrit_utils.critique.grading import is_equivalent, grade_batch
    is_equivalent("\\\\frac{1}{2}", "0.5")                 # True
    is_equivalent("(B) 12 apples", "B")                   # True
    grade_batch([(pred, gt), ...], n_jobs=None, timeout_s=5)  # list[bool], parallel, tqdm bar
"""
from __future__ import annotations

import atexit
import functools
import json
import logging
import math
import os
import re
import sys
import threading
import time
from typing import Iterable

from scrit_utils.critique.grading_workers import GradingWorkerError, _WorkerPool
from scrit_utils.critique.parsing import extract_last_boxed

__all__ = ["is_equivalent", "grade_batch", "normalize_answer", "choice_letter", "as_number", "GradingWorkerError"]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 5.0


# --- normalisation and fast paths ------------------------------------------------------------------
_TEXT_WRAP_RE = re.compile(r"\\(?:text|textbf|mathrm|mathbf|mbox|textit)\s*\{([^{}]*)\}")
# spacing commands; a LaTeX line break ``\\`` (matrix rows) is matched first and kept, so that its
# second backslash is not read as the start of ``\ `` (a space)
_SPACE_CMDS_RE = re.compile(r"(\\\\)|\\[,;:! ]|\\quad|\\qquad|~")


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
    s = _SPACE_CMDS_RE.sub(lambda m: m.group(1) or " ", s)
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
# scientific notation: "2.5e-4" / "2.5E-4" (E-notation) and "2.5 \times 10^{-4}"
_E_NOTATION = r"(\d+(?:\.\d+)?)[eE]([-+]?\d+)"
_E_NOTATION_RE = re.compile(r"^[-+]?" + _E_NOTATION + r"$")
_E_TOKEN_RE = re.compile(r"(?<![\w.\\}])" + _E_NOTATION + r"(?![\w.])")
_TIMES_TEN_RE = re.compile(r"^[-+]?(\d+(?:\.\d+)?)\s*(?:\\times|\\cdot|\u00d7)\s*10\s*\^\s*\{?\s*([-+]?\d+)\s*\}?$")
# the constant e as a symbol ("2e-1", "e^{2}"), not inside a word or a command name ("\sec", "meter")
_EULER_E_RE = re.compile(r"(?<![A-Za-z\\])e(?![A-Za-z])")
_COMMAND_RE = re.compile(r"\\[A-Za-z]+")


def _scientific(t: str) -> float | None:
    m = _E_NOTATION_RE.match(t) or _TIMES_TEN_RE.match(t)
    if not m:
        return None
    sign = -1.0 if t.startswith("-") else 1.0
    try:
        return sign * float(m.group(1)) * 10.0 ** int(m.group(2))
    except OverflowError:
        return None


def as_number(s: str | None) -> float | None:
    """A plain number in GSM8K style ("1,000", "540 meters", "$5", "-3.5", "#### 7") or in scientific
    notation ("2.5e-4", "2.5 \\times 10^{-4}"), else None.

    Only whole-string numbers (optionally with a currency sign and a trailing unit word of two or
    more letters) count: "5x" or "2/3" are left to math-verify.
    """
    t = normalize_answer(s)
    t = t.replace("$", "").strip()
    m = _UNIT_TAIL_RE.match(t)
    if m:
        t = m.group(1).strip()
    t = t.replace("\u2212", "-")
    sci = _scientific(t)
    if sci is not None:
        return sci if math.isfinite(sci) else None
    t = t.replace(" ", "")
    if not t or not _NUM_RE.match(t) or not any(c.isdigit() for c in t):
        return None
    try:
        v = float(t.replace(",", ""))
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _numbers_equal(a: float, b: float) -> bool:
    # relative only: an absolute tolerance would make 2.5e-10 equal 2.6e-10 (0 still equals only 0)
    return math.isclose(a, b, rel_tol=1e-4, abs_tol=0.0)


def _uses_euler_e(s: str) -> bool:
    """Whether ``s`` writes the constant e as a symbol outside its E-notation numbers."""
    return bool(_EULER_E_RE.search(_COMMAND_RE.sub(" ", _E_TOKEN_RE.sub(" ", s))))


def _pair_forms(pred: str, gt: str) -> tuple[str, str]:
    """Both answers normalised for math-verify. E-notation ("2.5e-4") is read as scientific notation
    and written ``2.5\\times10^{-4}``, unless either side uses e as the constant (then "2e-1" is
    2e - 1, math-verify's reading)."""
    p, g = normalize_answer(pred), normalize_answer(gt)
    if (_E_TOKEN_RE.search(p) or _E_TOKEN_RE.search(g)) and not (_uses_euler_e(p) or _uses_euler_e(g)):
        p, g = (_E_TOKEN_RE.sub(r"\1\\times10^{\2}", x) for x in (p, g))
    return _orient_equations(p), _orient_equations(g)


_LONE_VARIABLE_RE = re.compile(r"[A-Za-z](?:_\{?\w+\}?)?")


def _split_top_level(s: str, sep: str = ",") -> list[str]:
    """``s`` split at ``sep`` outside any (), [] or {} group."""
    parts, depth, start = [], 0, 0
    for i, c in enumerate(s):
        depth += (c in "([{") - (c in ")]}")
        if c == sep and depth == 0:
            parts.append(s[start:i])
            start = i + 1
    return parts + [s[start:]]


def _orient_equations(s: str) -> str:
    """In a list of equations ("B=2D, 2C=E") write each with its lone variable on the left ("E=2C").

    math-verify pairs the members of two lists by a sort key that, for an equation, is the value
    assigned to a lone left-hand variable, so ``2C=E`` would not be paired with ``E=2C`` (a single
    equation it compares both ways already). Swapping the sides never changes an equation.
    """
    parts = _split_top_level(s)
    if len(parts) < 2:
        return s
    out = []
    for part in parts:
        sides = part.split("=")
        if (len(sides) == 2 and not any(c in part for c in "<>!")
                and _LONE_VARIABLE_RE.fullmatch(sides[1].strip())
                and not _LONE_VARIABLE_RE.fullmatch(sides[0].strip())):
            part = f"{sides[1].strip()}={sides[0].strip()}"
        out.append(part)
    return ",".join(out) if out != parts else s


_UNDECIDED = None
_PERCENT_RE = re.compile(r"%|\\percent\b|\bpercent\b")
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
        if _numbers_equal(np_, ng):
            return True
        # "62.5%" is 62.5 in GSM8K style and 0.625 as a value (math-verify's reading): accept both
        pct_p, pct_g = _PERCENT_RE.search(p) is not None, _PERCENT_RE.search(g) is not None
        if pct_p != pct_g:
            return _numbers_equal(np_ / 100, ng) if pct_p else _numbers_equal(np_, ng / 100)
        return False
    return _UNDECIDED


@functools.lru_cache(maxsize=None)
def _extraction_config(units: bool) -> tuple:
    """math-verify's default LaTeX + expression extraction, boxed answers first, with its unit
    stripping on or off (its unit list holds single letters such as c, g, m, s)."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, LatexNormalizationConfig

    norm = LatexNormalizationConfig(basic_latex=True, units=units, malformed_operators=True, nits=True,
                                    boxed="all", equations=False)
    return (LatexExtractionConfig(boxed_match_priority=0, normalization_config=norm), ExprExtractionConfig())


def _mv_parse(s: str, units: bool) -> list:
    from math_verify import parse

    cfg = _extraction_config(units)
    return parse(f"${s}$", extraction_config=cfg, parsing_timeout=None) or \
        parse(s, extraction_config=cfg, parsing_timeout=None)


def _symbol_names(parsed: list) -> set[str]:
    return {str(x) for e in parsed for x in getattr(e, "free_symbols", ())}


def _strips_units(s: str) -> bool:
    from latex2sympy2_extended import normalize_latex

    with_units, without = (normalize_latex(s, _extraction_config(u)[0].normalization_config) for u in (True, False))
    return with_units != without


def _math_verify(pred: str, gt: str) -> bool:
    """math-verify with its own (signal-based) timeouts switched off; call only in a worker.

    Letters are first kept as variables (``\\frac{1}{2}c`` is c/2). Only when that fails are
    trailing units stripped ("10 cm" vs "10"), and then only letters that are not variables of the
    other answer, and the same letters when both answers lose some ("2 s" is not "2 m").
    """
    from math_verify import verify

    logging.getLogger("math_verify").setLevel(logging.ERROR)
    p_text, g_text = _pair_forms(pred, gt)
    g, p = _mv_parse(g_text, False), _mv_parse(p_text, False)
    if g and p and verify(g, p, timeout_seconds=None, allow_set_relation_comp=True):
        return True
    if not (_strips_units(g_text) or _strips_units(p_text)):
        return False
    g_u, p_u = _mv_parse(g_text, True), _mv_parse(p_text, True)
    if not g_u or not p_u:
        return False
    g_vars, p_vars = _symbol_names(g), _symbol_names(p)
    p_dropped, g_dropped = p_vars - _symbol_names(p_u), g_vars - _symbol_names(g_u)
    if p_dropped & g_vars or g_dropped & p_vars:
        return False  # a "unit" dropped from one side is a variable of the other
    if p_dropped and g_dropped and p_dropped != g_dropped:
        return False  # different units
    return bool(verify(g_u, p_u, timeout_seconds=None, allow_set_relation_comp=True))


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
        print("usage: python -m scrit_utils.critique.grading --worker   (internal grading worker)", file=sys.stderr)
        sys.exit(2)

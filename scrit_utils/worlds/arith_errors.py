"""How a toy-world solution is wrong: the error shape of one solution and the shape table of a benchmark set.

The first wrong step is the world's exact label (:func:`scrit_utils.worlds.arith.label_solution`); the shape
also counts how many steps break the chain a solution writes. A step ``a op b = c`` is *consistent* when
``a`` is the value the previous step wrote (the start value for step 1), ``op`` and ``b`` are the
problem's, and ``c`` is ``a op b``; the boxed answer is consistent when it is the last step's ``c``.

Shapes (:data:`SHAPES`), checked in this order:

- ``correct``: every value right and the boxed answer the true one;
- ``malformed``: a step without a readable ``a op b = c``, or no ``\\boxed{}`` answer;
- ``step_count``: every step readable but more or fewer steps than the problem has operations;
- ``one_local``: exactly one inconsistent step (a wrong result, a wrong operand or a miscopied value),
  every later step consistent with it and the box the last value (what ``arith.inject_error`` writes);
- ``several``: two or more inconsistencies (steps, or the box);
- ``final_only``: every step right, the boxed answer not the last value.

Usage::

    from scrit_utils.worlds import arith_errors
    arith_errors.shape(problem, solution.steps)          # "one_local"
    arith_errors.shape_table(rows)                        # {"n": 300, "shapes": {...}, ...}
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Iterable, Mapping, Sequence

from scrit_utils.core.records import Problem
from scrit_utils.worlds import arith

SHAPES = ("correct", "one_local", "several", "final_only", "step_count", "malformed")
#: what each shape means, for the markdown table's legend
SHAPE_TEXT = {
    "correct": "every step and the boxed answer right",
    "one_local": "one wrong step, later steps consistent with it",
    "several": "two or more inconsistent steps (or a step and the box)",
    "final_only": "all steps right, boxed answer wrong",
    "step_count": "steps readable, but missing or extra steps",
    "malformed": "an unreadable step or no boxed answer",
}
_EQ = re.compile(r"(-?\d+)\s*([+\-*])\s*(-?\d+)\s*=\s*(-?\d+)")  # as arith.step_value reads a step


def _apply(a: int, op: str, b: int) -> int:
    return a + b if op == "+" else a - b if op == "-" else a * b


def inconsistencies(problem: Problem, steps: Sequence[str]) -> int | None:
    """Inconsistent steps plus one for a box that is not the last written value; None when a step is
    unreadable or there is no box (malformed: nothing to count against)."""
    p = arith.parse_problem(problem)
    boxed = arith.last_boxed("\n".join(steps))
    if boxed is None:
        return None
    prev, bad = p.start, 0
    for k, s in enumerate(steps):
        m = _EQ.search(s)
        if m is None:
            return None
        a, op, b, c = int(m.group(1)), m.group(2), int(m.group(3)), int(m.group(4))
        want_op = p.ops[k] if k < len(p.ops) else None  # an extra step has no operation to match
        bad += (a != prev or want_op is None or (op, b) != want_op or c != _apply(a, op, b))
        prev = c
    return bad + (boxed != str(prev))


def shape(problem: Problem, steps: Sequence[str]) -> str:
    """The error shape of one solution (one of :data:`SHAPES`); see the module docstring."""
    label = arith.label_solution(problem, steps)
    if label.is_correct:
        return "correct"
    bad = inconsistencies(problem, steps)
    if bad is None:
        return "malformed"
    if len(steps) != len(arith.parse_problem(problem).ops):
        return "step_count"
    values = arith.parse_problem(problem).values()
    if all(arith.step_value(s) == values[k + 1] for k, s in enumerate(steps)):
        return "final_only"
    # a wrong value with no inconsistency is impossible (the chain starts at the true start); two
    # compensating slips that land on the true value again still count as the inconsistencies they are
    return "one_local" if bad == 1 else "several"


def shape_table(rows: Iterable[Mapping]) -> dict:
    """Counts over one set's rows (each with ``shape``, ``final_correct``, ``first_error_step``):
    ``{"n", "shapes": {shape: count}, "final_answer_right": count, "first_error_step": {step: count}}``."""
    rows = list(rows)
    shapes = Counter(r["shape"] for r in rows)
    first = Counter(int(r["first_error_step"]) for r in rows if r["shape"] != "correct")
    return {"n": len(rows), "shapes": {s: shapes.get(s, 0) for s in SHAPES if shapes.get(s)},
            "final_answer_right": sum(bool(r["final_correct"]) for r in rows if r["shape"] != "correct"),
            "first_error_step": {str(k): first[k] for k in sorted(first)}}


def describe(problem: Problem, steps: Sequence[str], final_correct: bool) -> dict:
    """The fields :func:`shape_table` reads, for one solution (1-based first error step, -1 when right)."""
    label = arith.label_solution(problem, steps)
    return {"shape": shape(problem, steps), "final_correct": bool(final_correct),
            "first_error_step": label.first_error_step}


def markdown(tables: Mapping[str, dict]) -> str:
    """One row per set: item count and the share of each shape (``count (pct%)``) of its wrong items."""
    used = [s for s in SHAPES if s != "correct" and any(t["shapes"].get(s) for t in tables.values())]
    head = ["set", "items", "wrong", *used, "right answer, wrong steps"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, t in tables.items():
        wrong = t["n"] - t["shapes"].get("correct", 0)
        cells = [f"{t['shapes'].get(s, 0)} ({100 * t['shapes'].get(s, 0) / wrong:.0f}%)" if wrong else "0"
                 for s in used]
        lines.append("| " + " | ".join([name, str(t["n"]), str(wrong), *cells, str(t["final_answer_right"])]) + " |")
    legend = [f"- `{s}`: {SHAPE_TEXT[s]}" for s in used]
    return "\n".join(lines + [""] + legend) + "\n"

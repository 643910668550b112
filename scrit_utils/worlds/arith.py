"""The toy arithmetic world: multi-step integer word problems with exact step labels.

A problem starts from a number and applies 2-6 operations (``+``, ``-``, ``*``); every
intermediate value stays in ``0..max_value``. Reference solutions use the same surface
conventions as real solutions (``Step k: ...`` lines via :func:`prompts.format_solution`,
final ``\\boxed{}``), so the real parser and grader serve both worlds::

    Question:  Start with 17. Add 25. Multiply by 3. Subtract 40.
    Solution:  Step 1: 17+25=42
               Step 2: 42*3=126
               Step 3: 126-40=86 \\boxed{86}

Held-out splits (``train`` / ``seed`` / ``benchmark``) are assigned by a hash of the
question text, so they never overlap whatever seed or difficulty produced a problem.

Ground-truth critiques use a *check* step body: the critic writes the student's step with the
value it checks against (its own recomputation, or the reference's value in the contrastive
form), then ``|`` and the student's value, both written as in a solution (no zero-padding: a
padded value is a transformation, not a copy, and tiny models failed to learn it), then its own
verdict word::

    ### Critique of Step 2
    42*3=126|129 wrong

The checked value comes first on purpose: after ``42*3=`` a line of the reference (and of the
student) goes on with its value, so with a reference the critic can copy the reference's value,
while without one it must compute it or copy the student's (the sycophantic shortcut).

The with-reference (contrastive) form starts with a ``## Reference Analysis`` listing
the reference's intermediate values (never a ``\\boxed``). The critic always writes the
verdict and first-error step itself; nothing in this module reads a model's critique.

Usage::

    from scrit_utils.worlds import arith
    cfg = arith.ArithConfig()
    probs = arith.generate_problems(seed=0, n=100, split="train", config=cfg)
    sol = arith.inject_error(probs[0], random.Random(1))        # wrong solution (steps)
    text = arith.ground_truth_critique(probs[0], sol.steps, with_reference=True)
"""
from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass, field
from typing import Sequence

from scrit_utils.critique import prompts
from scrit_utils.core.records import Problem, Solution, stable_id

WORLD = "arith"
SPLITS = ("train", "seed", "dev", "benchmark")
# share of the hash space per split: train 80% (bases and study), seed 10% (the bases' ground-truth critiques),
# dev 5% (choosing the study's hyper-parameters), benchmark 5% (the claims). dev and benchmark were one 10%
# benchmark split until 2026-12-03; train and seed never moved, so bases built before still never saw either.
_SPLIT_BOUNDS = {"train": (0, 80), "seed": (80, 90), "dev": (90, 95), "benchmark": (95, 100)}

from scrit_utils.core.arith_config import OP_WORDS, ArithConfig  # noqa: F401 (the world's config, one definition)
from scrit_utils.worlds.arith_verdict import VERDICT_OK, VERDICT_WRONG  # noqa: E402  (one definition)


# --- problems -----------------------------------------------------------------------
def split_of(question: str) -> str:
    """Held-out split of a question, from a hash of its text (independent of any seed)."""
    bucket = int.from_bytes(hashlib.sha256(question.encode("utf-8")).digest()[:4], "little") % 100
    for name, (lo, hi) in _SPLIT_BOUNDS.items():
        if lo <= bucket < hi:
            return name
    raise AssertionError(bucket)  # pragma: no cover


def _apply(a: int, op: str, b: int) -> int:
    return a + b if op == "+" else a - b if op == "-" else a * b


@dataclass(frozen=True)
class ArithProblem:
    start: int
    ops: tuple[tuple[str, int], ...]

    @property
    def question(self) -> str:
        return " ".join([f"Start with {self.start}."] + [OP_WORDS[o].format(b=b) for o, b in self.ops])

    def values(self) -> list[int]:
        """Running values: values()[0] = start, values()[k] = value after step k."""
        v = [self.start]
        for o, b in self.ops:
            v.append(_apply(v[-1], o, b))
        return v

    @property
    def answer(self) -> int:
        return self.values()[-1]


def _sample_problem(rng: random.Random, cfg: ArithConfig) -> ArithProblem:
    v = start = rng.randint(1, cfg.max_start)
    n = rng.randint(cfg.min_steps, cfg.max_steps)
    ops: list[tuple[str, int]] = []
    for _ in range(n):
        feasible = []
        if "+" in cfg.ops and v + 1 <= cfg.max_value:
            feasible.append(("+", 1, min(cfg.max_addend, cfg.max_value - v)))
        if "-" in cfg.ops and v - 1 >= 0:
            feasible.append(("-", 1, min(cfg.max_addend, v)))
        if "*" in cfg.ops and v * 2 <= cfg.max_value:
            feasible.append(("*", 2, min(cfg.max_factor, cfg.max_value // max(v, 1))))
        op, lo, hi = rng.choice(feasible)
        b = rng.randint(lo, hi)
        ops.append((op, b))
        v = _apply(v, op, b)
    return ArithProblem(start, tuple(ops))


def reference_steps(p: ArithProblem) -> list[str]:
    vals = p.values()
    steps = [f"{vals[k]}{o}{b}={vals[k + 1]}" for k, (o, b) in enumerate(p.ops)]
    steps[-1] += f" \\boxed{{{vals[-1]}}}"
    return steps


def to_problem(p: ArithProblem, cfg: ArithConfig | None = None) -> Problem:
    q = p.question
    return Problem(
        id=stable_id(WORLD, q),
        question=q,
        answer=str(p.answer),
        reference_solution=prompts.format_solution(reference_steps(p)),
        source=WORLD,
        meta={
            "start": p.start,
            "ops": [[o, b] for o, b in p.ops],
            "n_steps": len(p.ops),
            "split": split_of(q),
            "max_value": (cfg or ArithConfig()).max_value,
        },
    )


def parse_problem(problem: Problem) -> ArithProblem:
    """Recover the structured problem from a :class:`Problem` (meta, else the question text)."""
    if "start" in problem.meta and "ops" in problem.meta:
        return ArithProblem(int(problem.meta["start"]), tuple((o, int(b)) for o, b in problem.meta["ops"]))
    m = re.match(r"Start with (\d+)\.", problem.question)
    if not m:
        raise ValueError(f"problem {problem.id}: not an arith question: {problem.question!r}")
    ops = []
    for word, b in re.findall(r"(Add|Subtract|Multiply by) (\d+)\.", problem.question):
        ops.append(({"Add": "+", "Subtract": "-", "Multiply by": "*"}[word], int(b)))
    return ArithProblem(int(m.group(1)), tuple(ops))


def generate_problems(
    seed: int, n: int, split: str, config: ArithConfig | None = None, stream: str = "problems"
) -> list[Problem]:
    """``n`` distinct problems of one split, deterministic in (seed, stream, split, config)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    cfg = config or ArithConfig()
    rng = random.Random(f"{seed}/{stream}/{split}")
    out: list[Problem] = []
    seen: set[str] = set()
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 200 * n + 10_000:
            raise RuntimeError(f"could not find {n} distinct {split} problems with {cfg}")
        p = _sample_problem(rng, cfg)
        q = p.question
        if q in seen or split_of(q) != split:
            continue
        seen.add(q)
        out.append(to_problem(p, cfg))
    return out


# --- solutions ------------------------------------------------------------------------
_STEP_RE = re.compile(r"^\s*Step\s+(\d+)\s*:\s*(.*)$")
_EQ_RE = re.compile(r"(-?\d+)\s*([+\-*])\s*(-?\d+)\s*=\s*(-?\d+)")
_BOX_RE = re.compile(r"\\boxed\{([^{}]*)\}")


def split_steps(text: str) -> list[str]:
    """Step bodies of a ``Step k:`` solution text (lines without a step number join the previous)."""
    steps: list[str] = []
    for line in text.strip().splitlines():
        m = _STEP_RE.match(line)
        if m:
            steps.append(m.group(2).strip())
        elif steps and line.strip():
            steps[-1] += " " + line.strip()
        elif line.strip():
            steps.append(line.strip())
    return steps


def last_boxed(text: str) -> str | None:
    found = _BOX_RE.findall(text)
    return found[-1].strip() if found else None


def step_value(step: str) -> int | None:
    """The result the student wrote in one step (``a op b = c`` -> c), None if unreadable."""
    m = _EQ_RE.search(step)
    return int(m.group(4)) if m else None


@dataclass(frozen=True)
class StepLabel:
    """Ground truth for one solution: first wrong step (1-based, -1 if none) and correctness."""

    first_error_step: int
    is_correct: bool
    clean: bool  # False when the label needed a convention (missing/extra steps, box mismatch)


def label_solution(problem: Problem, steps: Sequence[str]) -> StepLabel:
    """First wrong step: the first whose written result differs from the true running value."""
    p = parse_problem(problem)
    vals = p.values()
    n = len(p.ops)
    boxed = last_boxed("\n".join(steps))
    for k, s in enumerate(steps, start=1):
        if k > n or step_value(s) != vals[k]:
            return StepLabel(k, False, k <= n and step_value(s) is not None)
    if len(steps) == n and boxed is not None and boxed == str(vals[-1]):
        return StepLabel(-1, True, True)
    return StepLabel(max(len(steps), 1), False, False)


def reference_solution(problem: Problem, generator: str = "reference") -> Solution:
    steps = tuple(reference_steps(parse_problem(problem)))
    return Solution(
        id=stable_id(problem.id, generator, "ref"),
        problem_id=problem.id,
        generator=generator,
        steps=steps,
        final_answer=problem.answer,
        is_correct=True,
        text=prompts.format_solution(steps),
    )


_SHIFTS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 30, 100)


def inject_error(problem: Problem, rng: random.Random, kind: str | None = None) -> Solution:
    """A wrong solution with one injected error; later steps follow correctly from it.

    ``kind``: ``"result"`` (the step's result is off by a small shift) or ``"operand"``
    (the step uses a wrong operand); random when None. The final answer always differs. Some
    problems admit no operand error (e.g. ``Start with 1. Subtract 1. Multiply by 2.``); after
    500 failed draws a requested kind falls back to a random one (``meta["error_kind"]`` says which).
    """
    if kind and kind not in ("result", "operand"):
        raise ValueError(f"unknown error kind {kind!r}; expected result | operand")
    p = parse_problem(problem)
    n = len(p.ops)
    vals = p.values()
    for attempt in range(1000):
        k = rng.randint(1, n)
        kd = (kind if attempt < 500 else None) or rng.choice(("result", "result", "operand"))
        o, b = p.ops[k - 1]
        if kd == "result":
            wrong = vals[k] + rng.choice((-1, 1)) * rng.choice(_SHIFTS)
            shown_b = b
        else:  # operand
            shown_b = b + rng.choice((-1, 1)) * rng.randint(1, 3)
            if shown_b < (2 if o == "*" else 1) or shown_b == b:
                continue
            wrong = _apply(vals[k - 1], o, shown_b)
        if wrong < 0 or wrong == vals[k]:
            continue
        steps = [f"{vals[i]}{oo}{bb}={vals[i + 1]}" for i, (oo, bb) in enumerate(p.ops[: k - 1])]
        steps.append(f"{vals[k - 1]}{o}{shown_b}={wrong}")
        v = wrong
        for oo, bb in p.ops[k:]:
            nv = _apply(v, oo, bb)
            steps.append(f"{v}{oo}{bb}={nv}")
            v = nv
        if v == vals[-1]:
            continue
        steps[-1] += f" \\boxed{{{v}}}"
        return Solution(
            id=stable_id(problem.id, "injected", kd, k, wrong, shown_b),
            problem_id=problem.id,
            generator="injected",
            steps=tuple(steps),
            final_answer=str(v),
            is_correct=False,
            text=prompts.format_solution(steps),
            meta={"error_kind": kd, "first_error_step": k},
        )
    raise RuntimeError(f"could not inject an error into problem {problem.id}")  # pragma: no cover


# --- critiques ------------------------------------------------------------------------
def _pad(v: int | None, width: int) -> str:
    if v is None:
        return "?" * width
    return f"-{abs(v):0{width}d}" if v < 0 else f"{v:0{width}d}"


from scrit_utils.worlds.arith_verdict import COMPARED_VALUES_RE, VERDICT_RULES, ComparedValuesVerdictRule, make_verdict_rule


def _num(v: int | None) -> str:
    """A compared value as the student wrote it (no padding: the critic copies it verbatim)."""
    return "???" if v is None else str(v)


def step_body(prev: int, op: str, b: int, correct: int, student: int | None) -> str:
    """Check body: ``42*3=126|129 wrong`` (checked value | student's value, verdict)."""
    verdict = VERDICT_OK if student == correct else VERDICT_WRONG
    return f"{prev}{op}{b}={_num(correct)}|{_num(student)} {verdict}"


def reference_analysis(problem: Problem) -> str:
    """Short contrastive preamble: the reference's running values (never a \\boxed)."""
    vals = parse_problem(problem).values()
    # indexed by step ("2:90") so the critic finds step k's value by content, not by counting
    return "Values: " + " ".join(f"{k}:{v}" for k, v in enumerate(vals[1:], start=1))


def critique_parts(
    problem: Problem, steps: Sequence[str], with_reference: bool = False
) -> prompts.CritiqueParts:
    """Ground-truth critique of a student solution (stops at the first wrong step)."""
    p = parse_problem(problem)
    vals = p.values()
    lab = label_solution(problem, steps)
    last = lab.first_error_step if not lab.is_correct else len(p.ops)
    bodies = []
    for k in range(1, min(last, len(p.ops)) + 1):
        o, b = p.ops[k - 1]
        student = step_value(steps[k - 1]) if k <= len(steps) else None
        body = step_body(vals[k - 1], o, b, vals[k], student)
        if k == last and not lab.is_correct and VERDICT_WRONG not in body:
            body = body.rsplit(" ", 1)[0] + " " + VERDICT_WRONG  # e.g. box mismatch on a right value
        bodies.append(body)
    if lab.is_correct:
        correction = problem.answer
    else:
        correction = prompts.format_solution(reference_steps(p))
    return prompts.CritiqueParts(
        step_critiques=tuple(bodies),
        is_correct=lab.is_correct,
        first_error_step=-1 if lab.is_correct else lab.first_error_step,
        correction=correction,
        reference_analysis=reference_analysis(problem) if with_reference else None,
    )


def ground_truth_critique(problem: Problem, steps: Sequence[str], with_reference: bool = False) -> str:
    """Critique text in the RealCritic format; contrastive form when ``with_reference``."""
    return prompts.render_critique(critique_parts(problem, steps, with_reference))


# --- prompts (compact variant) ----------------------------------------------------------
def solve_messages(problem: Problem) -> list[dict]:
    return prompts.solve_messages(problem.question, variant="compact")


def direct_messages(problem: Problem, solution_text: str) -> list[dict]:
    return prompts.direct_critic_messages(problem.question, solution_text, variant="compact")


def contrastive_messages(problem: Problem, solution_text: str) -> list[dict]:
    ref = problem.reference_solution or prompts.format_solution(reference_steps(parse_problem(problem)))
    return prompts.contrastive_critic_messages(problem.question, ref, solution_text, variant="compact")


# --- seed critiques and the compare drill ---------------------------------------------------
@dataclass(frozen=True)
class SeedExample:
    """One ground-truth critique for base training: chat messages + target text."""

    id: str
    messages: list
    target: str
    mode: str  # "direct" | "contrastive"
    label_correct: bool
    meta: dict = field(default_factory=dict)


def seed_critiques(
    seed: int, n_per_mode: int, config: ArithConfig | None = None, wrong_fraction: float = 0.5,
    stream: str = "seed-critiques",
) -> list[SeedExample]:
    """The seed of ground-truth critiques (the ONLY use of step labels in training).

    ``n_per_mode`` direct + ``n_per_mode`` contrastive critiques on disjoint problems of the
    ``seed`` split; exactly ``round(wrong_fraction * n)`` per mode critique an injected
    wrong solution, the rest the reference solution. ``stream`` names an independent draw of problems.
    """
    cfg = config or ArithConfig()
    probs = generate_problems(seed, 2 * n_per_mode, "seed", cfg, stream=stream)
    out: list[SeedExample] = []
    n_wrong = round(wrong_fraction * n_per_mode)
    for mi, mode in enumerate(("direct", "contrastive")):
        for i, prob in enumerate(probs[mi * n_per_mode : (mi + 1) * n_per_mode]):
            rng = random.Random(f"{seed}/seed-sol/{prob.id}")
            sol = inject_error(prob, rng) if i < n_wrong else reference_solution(prob)
            msgs = direct_messages(prob, sol.text) if mode == "direct" else contrastive_messages(prob, sol.text)
            target = ground_truth_critique(prob, sol.steps, with_reference=(mode == "contrastive"))
            out.append(
                SeedExample(
                    id=stable_id(prob.id, mode, sol.id),
                    messages=msgs,
                    target=target,
                    mode=mode,
                    label_correct=bool(sol.is_correct),
                    meta={"problem_id": prob.id, "solution_id": sol.id},
                )
            )
    return out


def drill_lines(rng: random.Random, n_lines: int, config: ArithConfig | None = None) -> list[tuple[str, str]]:
    """Compare drill: ``(step header + body without verdict, " ok"/" wrong")`` pairs.

    Half the lines have a student value that differs from the checked one, often by a single
    digit, so the verdict can only be learned by comparing the digits.
    """
    cfg = config or ArithConfig()
    w = cfg.width
    out = []
    for i in range(n_lines):
        p = _sample_problem(rng, cfg)
        k = rng.randint(1, len(p.ops))
        vals = p.values()
        o, b = p.ops[k - 1]
        correct = vals[k]
        student = correct
        if rng.random() < 0.5:
            if rng.random() < 0.5:  # change one digit
                s = list(_pad(correct, w))
                pos = rng.randrange(w)
                s[pos] = rng.choice([d for d in "0123456789" if d != s[pos]])
                student = int("".join(s))
            else:
                student = max(0, correct + rng.choice((-1, 1)) * rng.choice(_SHIFTS))
                if student == correct:
                    student = correct + 1
        body = step_body(vals[k - 1], o, b, correct, student)
        line, verdict = body.rsplit(" ", 1)
        out.append((f"{prompts.STEP_HEADER.format(n=k)}\n{line}", " " + verdict))
    return out

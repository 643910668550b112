"""Prompt templates and the critique output format shared by every world.

The output markers below are RealCritic's critique-and-correct markers (see
``../shared/docs/SCRIT_METHOD.md``); the parser in :mod:`scrit_utils.critique.parsing` and
every writer of critique text (toy seed data, self-training targets) use these
constants, so the format lives in exactly one place.

Two prompt *variants* exist with identical output markers:

- ``full``: instructive wording for real instruction-tuned LLMs (Qwen2.5);
- ``compact``: terse instructions for the toy arithmetic world, whose tiny models
  only ever see these exact strings (long instructions would waste context).

Usage::

    from scrit_utils.critique import prompts
    msgs = prompts.direct_critic_messages(question, solution_text, variant="full")
    text = prompts.render_chat(tokenizer, msgs)   # tokenizer.apply_chat_template

Bump :data:`PROMPT_VERSION` whenever any template text changes: stage cache keys
include it, so cached generations made with old prompts are not reused.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

PROMPT_VERSION = "2026-11-25.1"

# --- output markers (exact strings the parser relies on) -------------------
CRITIQUE_HEADER = "## Critique of Student Solution Steps"
STEP_HEADER = "### Critique of Step {n}"
CONCLUSION_HEADER = "## Conclusion of Critique"
VERDICT_CORRECT = "The solution is Correct."
VERDICT_INCORRECT = "The solution is Incorrect."
FIRST_ERROR_LINE = "The first error step number: {n}"
CORRECTION_HEADER = "## Correction of Student Solution"
CORRECTION_START = "===CORRECTION_START==="
CORRECTION_END = "===CORRECTION_END==="
REFERENCE_ANALYSIS_HEADER = "## Reference Analysis"
CORRECT_CASE_SENTENCE = "The student solution is correct, so the final answer stays \\boxed{{{answer}}}."

# bug-injection (ablation baseline): the model first writes a corrupted solution
INJECTED_SOLUTION_START = "===INJECTED_SOLUTION_START==="
INJECTED_SOLUTION_END = "===INJECTED_SOLUTION_END==="

#: every fixed marker string; the toy tokenizer adds each as a single token
ALL_MARKERS: tuple[str, ...] = (
    CRITIQUE_HEADER,
    "### Critique of Step",
    CONCLUSION_HEADER,
    VERDICT_CORRECT,
    VERDICT_INCORRECT,
    "The first error step number:",
    CORRECTION_HEADER,
    CORRECTION_START,
    CORRECTION_END,
    REFERENCE_ANALYSIS_HEADER,
    INJECTED_SOLUTION_START,
    INJECTED_SOLUTION_END,
    "\\boxed{",
)

VARIANTS = ("full", "compact")


def format_solution(steps: Sequence[str]) -> str:
    """Number solution steps the way every prompt shows them ("Step 1: ...")."""
    return "\n".join(f"Step {i}: {s.strip()}" for i, s in enumerate(steps, start=1))


# --- critique text writer -----------------------------------------------------
@dataclass(frozen=True)
class CritiqueParts:
    """Structured content of one critique; :func:`render_critique` turns it into text.

    ``step_critiques`` holds the text under each ``### Critique of Step n``
    header, stopping at the first wrong step. ``first_error_step`` is 1-based,
    -1 when the solution is correct. ``correction`` is the corrected solution
    (incorrect case) or the answer that a correct solution keeps (correct case).
    """

    step_critiques: tuple[str, ...]
    is_correct: bool
    first_error_step: int
    correction: str
    reference_analysis: str | None = None


def render_critique(parts: CritiqueParts) -> str:
    out: list[str] = []
    if parts.reference_analysis is not None:
        out += [REFERENCE_ANALYSIS_HEADER, parts.reference_analysis.strip(), ""]
    out.append(CRITIQUE_HEADER)
    for n, body in enumerate(parts.step_critiques, start=1):
        out += [STEP_HEADER.format(n=n), body.strip()]
    out += ["", CONCLUSION_HEADER]
    out.append(VERDICT_CORRECT if parts.is_correct else VERDICT_INCORRECT)
    out.append(FIRST_ERROR_LINE.format(n=-1 if parts.is_correct else parts.first_error_step))
    out += ["", CORRECTION_HEADER]
    if parts.is_correct:
        out.append(CORRECT_CASE_SENTENCE.format(answer=parts.correction.strip()))
    else:
        out += [CORRECTION_START, parts.correction.strip(), CORRECTION_END]
    return "\n".join(out)


def strip_reference_analysis(text: str) -> str:
    """Drop the reference-analysis part of a contrastive critique (self-training targets)."""
    idx = text.find(CRITIQUE_HEADER)
    return text[idx:] if idx >= 0 else text


# --- instruction templates ------------------------------------------------------
_FULL_SOLVE = (
    "Solve the following math problem step by step. Number each step as 'Step k:'. "
    "Put the final answer in \\boxed{}.\n\nProblem:\n{question}"
)
_COMPACT_SOLVE = "Solve.\n{question}"

_FULL_FORMAT_RULES = (
    "Write your answer in exactly this format:\n"
    f"{CRITIQUE_HEADER}\n"
    "### Critique of Step 1\n<check step 1>\n... (stop after the first step that is wrong)\n"
    f"{CONCLUSION_HEADER}\n"
    f"'{VERDICT_CORRECT}' or '{VERDICT_INCORRECT}'\n"
    "The first error step number: <step number, or -1 if the solution is correct>\n"
    f"{CORRECTION_HEADER}\n"
    "If the solution is correct, one sentence that repeats its final answer in \\boxed{}. "
    f"If it is incorrect, write {CORRECTION_START}, then the corrected solution that keeps the "
    "student's steps before the error, fixes the wrong step and continues the student's own "
    f"approach to a final answer in \\boxed{{}}, then {CORRECTION_END}."
)

_FULL_DIRECT = (
    "You are a careful math teacher. Check the student's solution below one step at a time, "
    "find the first wrong step if there is one, and correct the solution.\n\n"
    "Problem:\n{question}\n\nStudent Solution:\n{solution}\n\n" + _FULL_FORMAT_RULES
)
_COMPACT_DIRECT = "Critique.\n{question}\nStudent:\n{solution}"

_FULL_CONTRASTIVE = (
    "You are a careful math teacher. You are given a problem, a reference solution that is known "
    "to be correct, and a student's solution. First study the reference solution: under the "
    f"heading '{REFERENCE_ANALYSIS_HEADER}' summarise its key ideas, the critical steps and the "
    "places where students typically go wrong. Then check the student's solution one step at a "
    "time against your own reasoning (the student may use a different valid approach than the "
    "reference), find the first wrong step if there is one, and correct the solution. Never "
    "mention the reference solution outside the reference analysis.\n\n"
    "Problem:\n{question}\n\nReference Solution:\n{reference}\n\nStudent Solution:\n{solution}\n\n"
    f"Begin with {REFERENCE_ANALYSIS_HEADER}, then continue in this format.\n" + _FULL_FORMAT_RULES
)
_COMPACT_CONTRASTIVE = "Critique with reference.\n{question}\nReference:\n{reference}\nStudent:\n{solution}"

_FULL_BUG_INJECT = (
    "You are preparing exercises for math teachers. Below is a correct solution. Rewrite it with "
    "exactly one realistic mistake (a wrong calculation or a wrong reasoning step) at a step of "
    "your choice, and let the later steps follow from the mistake, ending with a (now wrong) final "
    f"answer in \\boxed{{}}. Write the rewritten solution between {INJECTED_SOLUTION_START} and "
    f"{INJECTED_SOLUTION_END}, numbering the steps 'Step k:'.\n\n"
    "Problem:\n{question}\n\nCorrect Solution:\n{solution}"
)
_COMPACT_BUG_INJECT = "Inject error.\n{question}\nSolution:\n{solution}"

TEMPLATES: dict[str, dict[str, str]] = {
    "solve": {"full": _FULL_SOLVE, "compact": _COMPACT_SOLVE},
    "direct": {"full": _FULL_DIRECT, "compact": _COMPACT_DIRECT},
    "contrastive": {"full": _FULL_CONTRASTIVE, "compact": _COMPACT_CONTRASTIVE},
    "bug_injection": {"full": _FULL_BUG_INJECT, "compact": _COMPACT_BUG_INJECT},
}

Messages = list[dict[str, str]]


def _fill(template: str, **fields: str) -> str:
    """Substitute ``{name}`` placeholders only; other braces (``\\boxed{}``) stay literal."""
    # one pass, so a value that itself contains "{solution}" is never substituted again
    pattern = re.compile("|".join(re.escape("{" + k + "}") for k in fields))
    return pattern.sub(lambda m: fields[m.group(0)[1:-1]], template)


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"unknown prompt variant {variant!r}; expected one of {VARIANTS}")


def _user(text: str) -> Messages:
    return [{"role": "user", "content": text}]


def solve_messages(question: str, variant: str = "full") -> Messages:
    _check_variant(variant)
    return _user(_fill(TEMPLATES["solve"][variant], question=question))


def direct_critic_messages(question: str, solution: str, variant: str = "full") -> Messages:
    """No-reference critic: the evaluation and self-training input format."""
    _check_variant(variant)
    return _user(_fill(TEMPLATES["direct"][variant], question=question, solution=solution))


def contrastive_critic_messages(question: str, reference: str, solution: str, variant: str = "full") -> Messages:
    """Critic that sees a correct reference solution (data synthesis only)."""
    _check_variant(variant)
    return _user(
        _fill(TEMPLATES["contrastive"][variant], question=question, reference=reference, solution=solution)
    )


def bug_injection_messages(question: str, solution: str, variant: str = "full") -> Messages:
    """First half of the bug-injection baseline: corrupt a correct solution."""
    _check_variant(variant)
    return _user(_fill(TEMPLATES["bug_injection"][variant], question=question, solution=solution))


def render_chat(tokenizer, messages: Messages, add_generation_prompt: bool = True) -> str:
    """Render messages with the tokenizer's own chat template (Qwen's or the toy one)."""
    if getattr(tokenizer, "chat_template", None) is None:
        raise ValueError(f"tokenizer {getattr(tokenizer, 'name_or_path', tokenizer)!r} has no chat_template")
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)

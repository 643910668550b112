"""Parse critique text written in the RealCritic critique-and-correct format.

The markers come from :mod:`scrit_utils.critique.prompts` (the one place the format is
defined). Real model output drifts from the exact strings, so matching is
tolerant: case-insensitive, any number of ``#`` in headings (or a bold heading),
``**bold**`` verdicts, missing periods, ``The first error step number: Step 3`` /
``**3**``, a missing ``===CORRECTION_END===`` (the correction then runs to the end
of the text) and extra whitespace.

:func:`parse_critique` never raises on a string: anything it cannot find is
``None``.

Usage::

    from scrit_utils.critique.parsing import parse_critique, extract_last_boxed
    c = parse_critique(model_output)
    c.verdict            # True (judged correct) / False (incorrect) / None (unparseable)
    c.first_error_step   # 1-based step, -1 for "no error", None when absent
    c.final_answer       # content of the LAST \\boxed{...} of the whole text (the graded answer)
    c.predicted_error_step()  # what EI-F1 scores: -1, a step, or None (counts as wrong)
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from scrit_utils.critique import prompts

__all__ = ["Critique", "parse_critique", "extract_last_boxed"]


@dataclass(frozen=True)
class Critique:
    """Structured view of one critique text (fields are ``None`` when absent)."""

    verdict: bool | None  # True = solution judged correct, False = incorrect, None = unparseable
    first_error_step: int | None  # 1-based; -1 = no error; None = no such line
    correction: str | None  # corrected solution, or the correct-case sentence
    final_answer: str | None  # last \boxed{} content of the whole text
    step_critiques: tuple[str, ...] = ()
    reference_analysis: str | None = None
    verdict_explicit: bool = False  # verdict came from a verdict line (not inferred from the step)

    def predicted_error_step(self) -> int | None:
        """The first-error prediction to score: -1 (judged correct), a step >= 1, or None.

        A "correct" verdict predicts -1 even without a step line; an "incorrect"
        verdict needs a positive step, otherwise the prediction is unusable (None).
        """
        if self.verdict is True:
            return -1
        if self.verdict is False and self.first_error_step is not None and self.first_error_step >= 0:
            return self.first_error_step
        return None


# --- marker regexes, built from the constants in prompts.py ---------------------------------
def _words(marker: str) -> str:
    """Regex for a marker's words with flexible whitespace (no leading '#', no trailing '.'/':')."""
    core = marker.lstrip("#").strip().rstrip(".:").strip()
    return r"\s+".join(re.escape(w) for w in core.split())


def _heading(marker: str) -> re.Pattern[str]:
    # a heading at the start of a line: any number of '#' (or none), optional bold, optional colon
    return re.compile(
        r"^[ \t]*(?:#{1,6}[ \t]*)?(?:\*\*|__)?[ \t]*" + _words(marker) + r"[ \t]*:?[ \t]*(?:\*\*|__)?[ \t]*:?[ \t]*$",
        re.IGNORECASE | re.MULTILINE,
    )


_CRITIQUE_RE = _heading(prompts.CRITIQUE_HEADER)
_CONCLUSION_RE = _heading(prompts.CONCLUSION_HEADER)
_CORRECTION_HDR_RE = _heading(prompts.CORRECTION_HEADER)
_REFERENCE_RE = _heading(prompts.REFERENCE_ANALYSIS_HEADER)
_STEP_HDR_RE = re.compile(
    r"^[ \t]*(?:#{1,6}[ \t]*)?(?:\*\*|__)?[ \t]*"
    + _words(prompts.STEP_HEADER.split("{n}")[0])
    + r"[ \t]*(\d{1,6})[ \t]*:?[ \t]*(?:\*\*|__)?[ \t]*:?[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)

# "The solution is Correct." / "The solution is **incorrect**" / "the solution is not correct"
_VERDICT_PREFIX = _words(prompts.VERDICT_CORRECT.rsplit(" ", 1)[0])  # "The solution is"
_VERDICT_RE = re.compile(
    _VERDICT_PREFIX + r"[ \t]*[*_`\"']{0,3}[ \t]*(not[ \t]+correct|incorrect|correct)\b",
    re.IGNORECASE,
)

# "The first error step number: 3" / ": Step 3" / ": **3**" / ": -1" / ": None"
_FIRST_ERROR_RE = re.compile(
    _words(prompts.FIRST_ERROR_LINE.split("{n}")[0])
    + r"[ \t]*[*_]{0,2}[ \t]*:?[ \t*_`$(\[]{0,8}(?:step[ \t]*)?[ \t*_`$(\[]{0,4}([-\u2212]?[ \t]?\d{1,6}|none|n/a)",
    re.IGNORECASE,
)

_START_RE = re.compile(r"={2,}[ \t]*" + re.escape(prompts.CORRECTION_START.strip("=")) + r"[ \t]*={2,}", re.IGNORECASE)
_END_RE = re.compile(r"={2,}[ \t]*" + re.escape(prompts.CORRECTION_END.strip("=")) + r"[ \t]*={2,}", re.IGNORECASE)

_BOX_RE = re.compile(r"\\(?:boxed|fbox)[ \t]*\{")


def extract_last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` / ``\\boxed {...}`` / ``\\fbox{...}`` in ``text``.

    Nested braces are matched. Like Qwen's ``last_boxed_only_string``, only the
    LAST box counts: if it is unclosed (a truncated generation) the result is ``None``.
    """
    if not isinstance(text, str):
        return None
    last = None
    for last in _BOX_RE.finditer(text):
        pass
    if last is None:
        return None
    depth = 1
    start = last.end()
    for i in range(start, len(text)):
        ch = text[i]
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start:i].strip()
    return None


def _first(regex: re.Pattern[str], text: str, pos: int = 0) -> re.Match[str] | None:
    return regex.search(text, pos)


def _parse_step(raw: str) -> int | None:
    raw = raw.strip().lower().replace("\u2212", "-").replace(" ", "").replace("\t", "")
    if raw in ("none", "n/a"):
        return -1
    try:
        return int(raw)
    except ValueError:  # pragma: no cover - the regex only lets digits through
        return None


def parse_critique(text: str) -> Critique:
    """Parse one critique; never raises on a string (non-strings give an empty result)."""
    if not isinstance(text, str):
        return Critique(None, None, None, None)
    n = len(text)

    corr_hdr = _first(_CORRECTION_HDR_RE, text)
    concl = _first(_CONCLUSION_RE, text)
    if concl is not None and corr_hdr is not None and corr_hdr.start() < concl.start():
        # a stray correction heading before the conclusion: use the first one after it
        corr_hdr = _first(_CORRECTION_HDR_RE, text, concl.end())
    corr_pos = corr_hdr.start() if corr_hdr else n

    # --- conclusion region: where verdict/step lines are searched first ---------------
    if concl is not None:
        region = text[concl.end():corr_pos] if corr_pos >= concl.end() else text[concl.end():]
    else:
        region = text[:corr_pos]
    # an explicit verdict: inside the conclusion take the first; without one the last before the correction
    verdict_m = _first(_VERDICT_RE, region) if concl is not None else None
    if verdict_m is None:
        matches = list(_VERDICT_RE.finditer(region))
        verdict_m = matches[-1] if matches else None
    verdict: bool | None = None
    if verdict_m is not None:
        verdict = verdict_m.group(1).lower() == "correct"

    step_m = _first(_FIRST_ERROR_RE, region)
    if step_m is None:
        matches = list(_FIRST_ERROR_RE.finditer(text))
        step_m = matches[-1] if matches else None
    first_error_step = _parse_step(step_m.group(1)) if step_m is not None else None

    explicit = verdict is not None
    if verdict is None and first_error_step is not None:
        verdict = first_error_step == -1

    # --- correction ------------------------------------------------------------------
    correction: str | None = None
    start_m = _first(_START_RE, text, corr_hdr.end() if corr_hdr else 0)
    if start_m is None and corr_hdr is not None:
        start_m = _first(_START_RE, text)
    if start_m is not None:
        end_m = _first(_END_RE, text, start_m.end())
        correction = text[start_m.end():end_m.start() if end_m else n].strip()
    elif corr_hdr is not None:
        correction = text[corr_hdr.end():].strip()

    # --- step critiques and reference analysis -------------------------------------------
    crit_hdr = _first(_CRITIQUE_RE, text)
    steps_from = crit_hdr.end() if crit_hdr else 0
    steps_to = concl.start() if concl and concl.start() >= steps_from else corr_pos
    step_hdrs = list(_STEP_HDR_RE.finditer(text, steps_from, max(steps_from, steps_to)))
    step_critiques = tuple(
        text[m.end():(step_hdrs[i + 1].start() if i + 1 < len(step_hdrs) else steps_to)].strip()
        for i, m in enumerate(step_hdrs)
    )

    reference_analysis: str | None = None
    ref_m = _first(_REFERENCE_RE, text)
    if ref_m is not None:
        stops = [m.start() for m in (crit_hdr, step_hdrs[0] if step_hdrs else None, concl, corr_hdr)
                 if m is not None and m.start() >= ref_m.end()]
        reference_analysis = text[ref_m.end():min(stops) if stops else n].strip()

    return Critique(
        verdict=verdict,
        first_error_step=first_error_step,
        correction=correction,
        final_answer=extract_last_boxed(text),
        step_critiques=step_critiques,
        reference_analysis=reference_analysis,
        verdict_explicit=explicit,
    )

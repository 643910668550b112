"""Critique parsing: exact format round trips, real-output marker variants, fuzzing."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scrit_utils.critique import prompts
from scrit_utils.critique.parsing import Critique, extract_last_boxed, parse_critique


# --- round trips with the writer in prompts.py ------------------------------------------------
def test_round_trip_incorrect_with_reference():
    parts = prompts.CritiqueParts(
        step_critiques=("17+25=42 is right.", "42*3 is 126, not 129."),
        is_correct=False,
        first_error_step=2,
        correction="Step 1: 17+25=42\nStep 2: 42*3=126\nSo the answer is \\boxed{126}",
        reference_analysis="Key values are 42 and 126.",
    )
    c = parse_critique(prompts.render_critique(parts))
    assert c.verdict is False and c.verdict_explicit
    assert c.first_error_step == 2
    assert c.correction == parts.correction
    assert c.final_answer == "126"
    assert c.step_critiques == parts.step_critiques
    assert c.reference_analysis == parts.reference_analysis
    assert c.predicted_error_step() == 2


def test_round_trip_correct():
    parts = prompts.CritiqueParts(step_critiques=("ok", "fine", "good"), is_correct=True,
                                  first_error_step=-1, correction="\\frac{7}{2}")
    c = parse_critique(prompts.render_critique(parts))
    assert (c.verdict, c.first_error_step, c.final_answer) == (True, -1, "\\frac{7}{2}")
    assert c.correction == prompts.CORRECT_CASE_SENTENCE.format(answer="\\frac{7}{2}")
    assert c.step_critiques == ("ok", "fine", "good")
    assert c.reference_analysis is None
    assert c.predicted_error_step() == -1


def _doc(verdict_line: str, step_line: str, correction: str = "", head: str = "##") -> str:
    return (
        f"{head} Critique of Student Solution Steps\n{head}# Critique of Step 1\nfine\n\n"
        f"{head} Conclusion of Critique\n{verdict_line}\n{step_line}\n\n"
        f"{head} Correction of Student Solution\n{correction}"
    )


# --- marker variants seen in real model output ---------------------------------------------------
@pytest.mark.parametrize(
    "line,expected",
    [
        ("The solution is Correct.", True),
        ("The solution is correct.", True),
        ("The solution is CORRECT.", True),
        ("The solution is **Correct**.", True),
        ("**The solution is Correct.**", True),
        ("The solution is Correct", True),
        ("The   solution  is\tcorrect .", True),
        ("The solution is Incorrect.", False),
        ("The solution is incorrect", False),
        ("The solution is INCORRECT.", False),
        ("The solution is **Incorrect**", False),
        ("The solution is not correct.", False),
    ],
)
def test_verdict_variants(line, expected):
    c = parse_critique(_doc(line, ""))
    assert c.verdict is expected and c.verdict_explicit


@pytest.mark.parametrize(
    "line,expected",
    [
        ("The first error step number: 3", 3),
        ("The first error step number: Step 3", 3),
        ("The first error step number: **3**", 3),
        ("**The first error step number:** 3", 3),
        ("The first error step number : step 12.", 12),
        ("the FIRST error step number:   -1", -1),
        ("The first error step number: \u22121", -1),
        ("The first error step number: None", -1),
        ("The first error step number: $4$", 4),
    ],
)
def test_first_error_step_variants(line, expected):
    assert parse_critique(_doc("", line)).first_error_step == expected


def test_verdict_inferred_from_step_when_no_verdict_line():
    a = parse_critique(_doc("", "The first error step number: -1"))
    b = parse_critique(_doc("", "The first error step number: 2"))
    assert a.verdict is True and not a.verdict_explicit
    assert b.verdict is False and not b.verdict_explicit
    assert b.predicted_error_step() == 2


def test_explicit_verdict_wins_over_step():
    c = parse_critique(_doc("The solution is Incorrect.", "The first error step number: -1"))
    assert c.verdict is False
    assert c.predicted_error_step() is None  # inconsistent: unusable prediction


def test_verdict_taken_from_conclusion_not_step_critiques():
    text = ("## Critique of Student Solution Steps\n### Critique of Step 1\nSo far the solution is correct.\n"
            "## Conclusion of Critique\nThe solution is Incorrect.\nThe first error step number: 2\n")
    assert parse_critique(text).verdict is False


@pytest.mark.parametrize("head", ["#", "##", "###", "####", "**"])
def test_heading_levels(head):
    if head == "**":
        text = ("**Critique of Student Solution Steps**\n**Critique of Step 1**\nok\n"
                "**Conclusion of Critique**\nThe solution is Incorrect.\nThe first error step number: 1\n"
                "**Correction of Student Solution:**\n===CORRECTION_START===\nfix \\boxed{5}\n===CORRECTION_END===")
    else:
        text = _doc("The solution is Incorrect.", "The first error step number: 1",
                    "===CORRECTION_START===\nfix \\boxed{5}\n===CORRECTION_END===", head=head)
    c = parse_critique(text)
    assert (c.verdict, c.first_error_step, c.correction, c.final_answer) == (False, 1, "fix \\boxed{5}", "5")
    assert c.step_critiques == ("ok",) if head == "**" else ("fine",)


def test_missing_end_marker_runs_to_end():
    text = _doc("The solution is Incorrect.", "The first error step number: 2",
                "===CORRECTION_START===\nStep 1: a\nStep 2: b = 7\n\\boxed{7}\n  ")
    c = parse_critique(text)
    assert c.correction == "Step 1: a\nStep 2: b = 7\n\\boxed{7}"
    assert c.final_answer == "7"


def test_marker_case_and_spacing_variants():
    text = _doc("The solution is incorrect", "The first error step number: 1",
                "=== correction_start ===\n  x=3 \\boxed{3}\n=== Correction_End ===\ntrailing \\boxed{9}")
    c = parse_critique(text)
    assert c.correction == "x=3 \\boxed{3}"
    assert c.final_answer == "9"  # the LAST box of the whole text is the graded answer


def test_correct_case_sentence_without_markers():
    text = _doc("The solution is Correct.", "The first error step number: -1",
                "The student solution is correct, so the final answer stays \\boxed{540}.")
    c = parse_critique(text)
    assert c.correction.startswith("The student solution is correct") and c.final_answer == "540"


def test_empty_and_garbage():
    for t in ("", "   ", "hello world", "\\boxed{", "## Conclusion of Critique"):
        c = parse_critique(t)
        assert isinstance(c, Critique)
        assert c.verdict is None and c.first_error_step is None and c.predicted_error_step() is None
    assert parse_critique(None).verdict is None  # type: ignore[arg-type]


# --- boxed extraction -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text,expected",
    [
        ("a \\boxed{1} b \\boxed{2}", "2"),
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("\\boxed {x^{2}+1}", "x^{2}+1"),
        ("\\fbox{C}", "C"),
        ("\\boxed{1} then \\fbox{2}", "2"),
        ("\\boxed{\\text{(B)}}", "\\text{(B)}"),
        ("no box", None),
        ("\\boxed{1} \\boxed{unclosed", None),
        ("\\boxed{}", ""),
    ],
)
def test_extract_last_boxed(text, expected):
    assert extract_last_boxed(text) == expected


# --- fuzz: never raise ------------------------------------------------------------------------------
_FRAGMENTS = [
    prompts.CRITIQUE_HEADER, "### Critique of Step 1", "#### critique of step 99999999999", prompts.CONCLUSION_HEADER,
    prompts.VERDICT_CORRECT, prompts.VERDICT_INCORRECT, "The first error step number:", " -1", " **3**",
    " Step 4", "9" * 50, prompts.CORRECTION_HEADER, prompts.CORRECTION_START, prompts.CORRECTION_END,
    prompts.REFERENCE_ANALYSIS_HEADER, "\\boxed{", "\\boxed {", "\\fbox{", "{", "}", "\n", "#", "**", "=",
    "\u2212", "\x00", "The solution is ", "not correct", "none",
]


# One byte string per example, each byte picking a marker fragment, an ASCII character or a
# non-ASCII code point: far cheaper for hypothesis than composing lists of st.text (10k examples ~5 s).
_ALPHABET = _FRAGMENTS + [chr(c) for c in range(32, 127)] + ["\n", "\t", "\u00e9", "\U0001F600"]


def _decode(raw: bytes) -> str:
    return "".join(_ALPHABET[b % len(_ALPHABET)] if b < 200 else chr(0x80 + b * 7) for b in raw)


@settings(max_examples=10000, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
          database=None)
@given(st.binary(max_size=200).map(_decode))
def test_fuzz_never_raises(text):
    c = parse_critique(text)
    assert c.verdict in (True, False, None)
    assert c.first_error_step is None or isinstance(c.first_error_step, int)
    assert all(isinstance(s, str) for s in c.step_critiques)
    if c.final_answer is not None:
        assert c.final_answer == "" or c.final_answer in text

"""Prompt builders and the critique writer."""
from __future__ import annotations

import pytest

from scrit_utils.critique import prompts


def test_render_critique_incorrect_has_all_markers():
    text = prompts.render_critique(
        prompts.CritiqueParts(
            step_critiques=("17+25=42 ok", "42*3=129 wrong"),
            is_correct=False,
            first_error_step=2,
            correction="Step 1: 17+25=42\nStep 2: 42*3=126\n\\boxed{126}",
            reference_analysis="key values 42, 126",
        )
    )
    for marker in (
        prompts.REFERENCE_ANALYSIS_HEADER,
        prompts.CRITIQUE_HEADER,
        "### Critique of Step 1",
        "### Critique of Step 2",
        prompts.CONCLUSION_HEADER,
        prompts.VERDICT_INCORRECT,
        "The first error step number: 2",
        prompts.CORRECTION_START,
        prompts.CORRECTION_END,
    ):
        assert marker in text
    stripped = prompts.strip_reference_analysis(text)
    assert stripped.startswith(prompts.CRITIQUE_HEADER) and "key values" not in stripped


def test_render_critique_correct_restates_boxed_answer():
    text = prompts.render_critique(
        prompts.CritiqueParts(step_critiques=("ok",), is_correct=True, first_error_step=-1, correction="86")
    )
    assert "The first error step number: -1" in text
    assert text.rstrip().endswith("\\boxed{86}.")
    assert prompts.CORRECTION_START not in text


def test_builders_and_variants():
    sol = prompts.format_solution(["a", "b"])
    assert sol == "Step 1: a\nStep 2: b"
    for variant in prompts.VARIANTS:
        m = prompts.contrastive_critic_messages("Q?", "REF", sol, variant=variant)
        assert m[0]["role"] == "user" and "REF" in m[0]["content"] and sol in m[0]["content"]
        assert "REF" not in prompts.direct_critic_messages("Q?", sol, variant=variant)[0]["content"]
    with pytest.raises(ValueError, match="variant"):
        prompts.solve_messages("Q", variant="tiny")


def test_placeholder_text_inside_values_is_not_substituted():
    m = prompts.direct_critic_messages("What is {solution}?", "Step 1: \\boxed{3}", variant="full")
    content = m[0]["content"]
    assert "What is {solution}?" in content and "\\boxed{}" in content

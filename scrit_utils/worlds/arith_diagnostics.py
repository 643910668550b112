"""Base-model diagnostics the toy world can measure because it can check every step.

These are measurements for the base-model table (``results/tables/base_models.md``), never inputs
to any SCRIT stage:

- :func:`fluke_rate`: among solutions whose final answer is right, the share with a wrong step.
  A reference chosen by its final answer is only as trustworthy as this rate is low.
- :func:`checked_value_accuracy`: how often a critique's checked value (``42*3=<checked>|<student's>``)
  is the step's true value, over the step lines it should have checked (every step of a correct
  solution, the steps up to and including the first wrong one of a wrong solution), and on the
  first-error lines alone (where it matters).
- :func:`own_step_accuracy`: how often the model, solving the same problem with the right steps
  before it (teacher-forced: one forward pass over the reference solution), writes step k's value.

Headroom = own step accuracy - no-reference checked-value accuracy on the same (problem, step)
pairs: what the model can compute but does not use when it critiques without a reference, i.e.
what SCRIT can teach.

Usage::

    from scrit_utils.worlds import arith_diagnostics as ad
    ad.fluke_rate(problems, solutions)                          # {"n_right": .., "fluke_rate": ..}
    ad.checked_value_accuracy(problems, solution_steps, critique_texts)
    ad.own_step_accuracy("models/toy-409k", problems, targets)  # targets: [(problem_index, step), ...]
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from scrit_utils.core.records import Problem, Solution
from scrit_utils.worlds import arith
from scrit_utils.critique import prompts

_STEP_LINE_RE = re.compile(r"### Critique of Step (\d+)[ \t]*\n([^\n]*)")
_REF_STEP_RE = re.compile(r"Step (\d+): -?\d+[+\-*]-?\d+=(-?\d+)")


def fluke_rate(problems: Sequence[Problem], solutions: Sequence[Solution]) -> dict:
    """Share (%) of final-answer-right solutions that contain a wrong step (or a missing/extra one)."""
    by_id = {p.id: p for p in problems}
    right = [s for s in solutions if s.is_correct]
    flukes = sum(not arith.label_solution(by_id[s.problem_id], s.steps).is_correct for s in right)
    return {"n_right": len(right), "n_fluke": flukes, "fluke_rate": 100.0 * flukes / len(right) if right else float("nan")}


def checked_steps(problem: Problem, steps: Sequence[str]) -> list[int]:
    """The steps a critique should check: all of a correct solution, up to the first wrong one otherwise."""
    lab = arith.label_solution(problem, steps)
    n = len(arith.parse_problem(problem).ops)
    last = n if lab.is_correct else min(lab.first_error_step, n)
    return list(range(1, last + 1))


def critique_checked_values(text: str) -> dict[int, int | None]:
    """Step -> the checked value a critique wrote on that step's line (None: no readable pair)."""
    out: dict[int, int | None] = {}
    for m in _STEP_LINE_RE.finditer(text):
        k = int(m.group(1))
        if k in out:
            continue
        pair = arith.COMPARED_VALUES_RE.search(m.group(2))
        out[k] = int(pair.group(1)) if pair and pair.group(1).lstrip("-").isdigit() else None
    return out


def checked_value_accuracy(problems: Sequence[Problem], solution_steps: Sequence[Sequence[str]],
                           critiques: Sequence[str]) -> dict:
    """Checked-value accuracy (%) of critiques over the lines they should check, and on first-error lines."""
    if not (len(problems) == len(solution_steps) == len(critiques)):
        raise ValueError("checked_value_accuracy: problems, solutions and critiques differ in length")
    right = total = err_right = err_total = 0
    for p, steps, text in zip(problems, solution_steps, critiques):
        vals = arith.parse_problem(p).values()
        written = critique_checked_values(text)
        lab = arith.label_solution(p, steps)
        for k in checked_steps(p, steps):
            ok = written.get(k) == vals[k]
            right += ok
            total += 1
            if not lab.is_correct and k == lab.first_error_step:
                err_right += ok
                err_total += 1
    return {"lines": total, "checked_acc": 100.0 * right / total if total else float("nan"),
            "error_lines": err_total, "checked_acc_error": 100.0 * err_right / err_total if err_total else float("nan")}


def step_targets(problems: Sequence[Problem], solution_steps: Sequence[Sequence[str]]) -> list[tuple[int, int, bool]]:
    """(problem index, step, is the first-error line) for every line a critique should check."""
    out = []
    for i, (p, steps) in enumerate(zip(problems, solution_steps)):
        lab = arith.label_solution(p, steps)
        out += [(i, k, not lab.is_correct and k == lab.first_error_step) for k in checked_steps(p, steps)]
    return out


def own_step_accuracy(model_dir: str | Path, problems: Sequence[Problem],
                      targets: Sequence[tuple[int, int, bool]], batch_size: int = 64) -> dict:
    """Teacher-forced accuracy (%) of the model writing step k's value after the right steps 1..k-1.

    One forward pass per problem over solve prompt + reference solution; step k counts as right when
    the greedy (argmax) prediction of every token of its value, and of the token after it (so ``12``
    is not taken for ``123``), is the reference's.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer


    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    step_right: dict[tuple[int, int], bool] = {}
    need = sorted({i for i, _, _ in targets})
    for b in range(0, len(need), batch_size):
        chunk = need[b:b + batch_size]
        seqs, spans = [], []
        for i in chunk:
            p = problems[i]
            ref = prompts.format_solution(arith.reference_steps(arith.parse_problem(p)))
            prompt_ids = tok(prompts.render_chat(tok, arith.solve_messages(p)), add_special_tokens=False)["input_ids"]
            enc = tok(ref, add_special_tokens=False, return_offsets_mapping=True)
            seqs.append(prompt_ids + list(enc["input_ids"]) + [tok.eos_token_id])
            spans.append(_value_token_spans(ref, enc["offset_mapping"], len(prompt_ids)))
        L = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), L), tok.pad_token_id, dtype=torch.long)
        att = torch.zeros((len(seqs), L), dtype=torch.long)
        for r, s in enumerate(seqs):
            ids[r, :len(s)] = torch.tensor(s)
            att[r, :len(s)] = 1
        with torch.no_grad():
            pred = model(input_ids=ids, attention_mask=att).logits.argmax(-1)
        for r, i in enumerate(chunk):
            for k, (lo, hi) in spans[r].items():  # token positions lo..hi (inclusive of the token after the value)
                step_right[(i, k)] = bool((pred[r, lo - 1:hi] == ids[r, lo:hi + 1]).all())
    hits = [step_right[(i, k)] for i, k, _ in targets]
    err = [step_right[(i, k)] for i, k, e in targets if e]
    return {"own_step_acc": 100.0 * sum(hits) / len(hits) if hits else float("nan"),
            "own_step_acc_error": 100.0 * sum(err) / len(err) if err else float("nan")}


def _value_token_spans(ref: str, offsets, shift: int) -> dict[int, tuple[int, int]]:
    """Step -> (first, last) token index of its value plus the token after it, in the full sequence."""
    out = {}
    for m in _REF_STEP_RE.finditer(ref):
        a, b = m.span(2)
        toks = [j for j, (s, e) in enumerate(offsets) if s >= a and e <= b and e > s]
        if toks:
            out[int(m.group(1))] = (toks[0] + shift, toks[-1] + 1 + shift)
    return out

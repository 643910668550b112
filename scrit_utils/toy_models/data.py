"""The base models' training data: (messages, target) pairs and drill lines as token ids + loss weights.

:class:`Encoder` turns a chat prompt and its target into ids with per-token loss weights (loss on the
target only; verdict tokens, the compared values of a ``wrong`` line and, in contrastive targets, the
reference-determined values weighted as a recipe :class:`~scrit_utils.toy_models.build.Phase` says);
:func:`inject_pair` is the bug-injection instruction (v3's inject batches); :func:`collate` pads a batch.
Used by :mod:`scrit_utils.toy_models.build`::

    enc = Encoder(tok, verdict_weight=2.0, copy_weight=10.0, ref_weight=5.0)
    ids, weights = enc.pair(arith.contrastive_messages(p, sol.text), target, mode="contrastive")
"""
from __future__ import annotations

import random
import re
from typing import Sequence

from scrit_utils.core.records import Problem, Solution
from scrit_utils.critique import prompts
from scrit_utils.worlds import arith

# the two compared values of a ground-truth critique line whose verdict is "wrong"
_WRONG_LINE_VALUES = re.compile(arith.COMPARED_VALUES_RE.pattern + " " + arith.VERDICT_WRONG)


class Encoder:
    """Turns (messages, target) pairs and drill lines into ids + loss weights."""

    def __init__(self, tok, verdict_weight: float, copy_weight: float = 1.0, ref_weight: float = 1.0):
        self.tok = tok
        self.eos = tok.eos_token_id
        self.pad = tok.pad_token_id
        ids = set()
        for w in (" " + arith.VERDICT_OK, " " + arith.VERDICT_WRONG, prompts.VERDICT_CORRECT, prompts.VERDICT_INCORRECT):
            enc = tok(w, add_special_tokens=False)["input_ids"]
            if len(enc) == 1:
                ids.add(enc[0])
        self.verdict_ids = ids
        self.verdict_weight = verdict_weight
        self.copy_weight = copy_weight
        self.ref_weight = ref_weight

    def ids(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False)["input_ids"]

    def pair(self, messages: list, target: str, mode: str | None = None) -> tuple[list[int], list[float]]:
        """Prompt + target ids and loss weights; ``mode`` = the seed critique's format (None: not a critique)."""
        p = self.ids(prompts.render_chat(self.tok, messages))
        enc = self.tok(target, add_special_tokens=False, return_offsets_mapping=True)
        t = list(enc["input_ids"]) + [self.eos]
        w = [self.verdict_weight if i in self.verdict_ids else 1.0 for i in t]
        offsets = enc["offset_mapping"]
        if self.ref_weight != 1.0 and mode == "contrastive":
            # the tokens the reference determines: every checked value and every number of the correction.
            # A model that solves well enough computes them and gets most right; copying them from the
            # reference gets all right, and the extra weight makes the few misses count (toy-0.6m).
            for j in _in_spans(offsets, reference_value_spans(target)):
                w[j] = self.ref_weight
        if self.copy_weight != 1.0:
            # the two values on a "wrong" line: the student's must be copied from the solution and the
            # checked one must differ from it. Everywhere else they are equal, so a solver-trained
            # model writes one value twice and never sees a mismatch (first build: 0/80 copied).
            # Those few tokens get copy_weight x loss.
            for j in _in_spans(offsets, [(m.start(1), m.end(2)) for m in _WRONG_LINE_VALUES.finditer(target)]):
                w[j] = self.copy_weight
        return p + t, [0.0] * len(p) + w

    def drill(self, lines: Sequence[tuple[str, str]]) -> tuple[list[int], list[float]]:
        ids: list[int] = []
        wts: list[float] = []
        for j, (ctx, verdict) in enumerate(lines):
            c = self.ids(("\n" if j else "") + ctx)
            v = self.ids(verdict)
            ids += c + v
            wts += [0.0] * len(c) + [1.0] * len(v)
        return ids, wts


def _in_spans(offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]) -> list[int]:
    """Indices of the tokens (by character offsets) that lie wholly inside one of ``spans``."""
    return [j for j, (a, b) in enumerate(offsets) if any(a >= lo and b <= hi for lo, hi in spans)]


def reference_value_spans(target: str) -> list[tuple[int, int]]:
    """Character spans of a contrastive critique's reference-determined values: each step's checked value
    (``=<checked>|``) and every number after the correction header."""
    spans = [m.span(1) for m in arith.COMPARED_VALUES_RE.finditer(target)]
    cut = target.find(prompts.CORRECTION_HEADER)
    if cut >= 0:
        cut += len(prompts.CORRECTION_HEADER)
        spans += [(m.start() + cut, m.end() + cut) for m in re.finditer(r"\d+", target[cut:])]
    return spans


def inject_pair(problem: Problem, rng: random.Random) -> tuple[list, str, Solution]:
    """The bug-injection instruction as an instruct LLM would be taught it: the study's bug-injection prompt
    (:func:`~scrit_utils.critique.prompts.bug_injection_messages`, compact variant) on the problem's correct
    solution -> the world's injected solution (:func:`scrit_utils.worlds.arith.inject_error`: one error, later
    steps follow from it) between the INJECTED_SOLUTION markers, the form the study's bug-injection stage
    reads back (``pipeline.self_critic.extract_injected``). Returns (messages, target, injected solution)."""
    correct = arith.reference_solution(problem)
    wrong = arith.inject_error(problem, rng)
    msgs = prompts.bug_injection_messages(problem.question, correct.text, variant="compact")
    target = f"{prompts.INJECTED_SOLUTION_START}\n{wrong.text}\n{prompts.INJECTED_SOLUTION_END}"
    return msgs, target, wrong


def collate(batch: list[tuple[list[int], list[float]]], pad_id: int):
    import torch

    L = max(len(x) for x, _ in batch)
    ids = torch.full((len(batch), L), pad_id, dtype=torch.long)
    att = torch.zeros((len(batch), L), dtype=torch.long)
    wts = torch.zeros((len(batch), L), dtype=torch.float)
    for i, (x, w) in enumerate(batch):
        ids[i, : len(x)] = torch.tensor(x)
        att[i, : len(x)] = 1
        wts[i, : len(w)] = torch.tensor(w)
    return ids, att, wts


def encode_pools(examples: dict[str, list], enc: Encoder) -> dict[str, list]:
    return {mode: [enc.pair(e.messages, e.target, mode=e.mode) for e in exs] for mode, exs in examples.items()}

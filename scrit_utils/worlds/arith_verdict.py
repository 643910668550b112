"""The toy world's switchable decode-time verdict rule (``world.arith.verdict_rule``).

Usage::

    from scrit_utils.worlds.arith_verdict import make_verdict_rule
    backend.decode_hook = make_verdict_rule("compared_values", backend.tokenizer)
"""
from __future__ import annotations

import re
from typing import Sequence

VERDICT_OK = "ok"
VERDICT_WRONG = "wrong"

#: the two compared values of a step body, ``=<checked>|<student's>`` (whitespace tolerated for model text)
COMPARED_VALUES_RE = re.compile(r"=\s*(-?[0-9?]+)\s*\|\s*(-?[0-9?]+)")


class ComparedValuesVerdictRule:
    """The switchable decode-time verdict rule (``world.arith.verdict_rule: compared_values``).

    Small toy critics compute the checked value and copy the student's value well, but learn
    the equality test behind the verdict word slowly (the calibration prototype never wrote
    "incorrect" either). With this rule on, whenever the critic *chooses to write* a step verdict
    (its next token is `` ok`` or `` wrong``) right after a compared pair ``=<checked>|<student>``,
    the word is set by whether the two values it wrote are equal. Everything else -- both values,
    when to write a verdict, the conclusion, first-error step and correction that follow -- is
    the model's own output. Off by default; results are reported with it on and off.

    An instance is a decode hook (:class:`scrit_utils.generation.decode_hook.DecodeHook`); build it
    with :func:`make_verdict_rule` and pass it to the backend. ``stats`` counts the verdict words it
    was consulted on (``verdicts``) and those whose word it changed (``overridden``).
    """

    name = "compared_values"
    _TAIL_RE = re.compile(r"=\s*(-?\d+)\s*\|\s*(-?\d+)\s*$")
    tail_chars = 24  # characters of generated text the rule looks at

    def __init__(self, tokenizer):
        ids = {}
        for word in (VERDICT_OK, VERDICT_WRONG):
            enc = tokenizer(" " + word, add_special_tokens=False)["input_ids"]
            if len(enc) != 1:
                raise ValueError(f"verdict_rule {self.name!r} needs ' {word}' to be one token in this tokenizer "
                                 f"(got {len(enc)}); it is meant for the toy tokenizer")
            ids[word] = enc[0]
        self.ok_id, self.wrong_id = ids[VERDICT_OK], ids[VERDICT_WRONG]
        self.candidates = frozenset(ids.values())
        self.stats = {"verdicts": 0, "overridden": 0}

    def verdict(self, tail: str) -> int | None:
        """The verdict token to write after generated text ``tail`` (None: no compared pair just ended)."""
        m = self._TAIL_RE.search(tail)
        if m is None:
            return None
        return self.ok_id if m.group(1) == m.group(2) else self.wrong_id

    def __call__(self, tokens: list[int], tails: Sequence[str | None], logits=None) -> list[int] | None:
        """The decode hook: each verdict word a live row chose right after a compared pair is set by the pair."""
        out = None
        for j, (t, tail) in enumerate(zip(tokens, tails)):
            if tail is None or t not in self.candidates:
                continue
            v = self.verdict(tail)
            if v is None:
                continue
            self.stats["verdicts"] += 1
            if v != t:
                self.stats["overridden"] += 1
                if out is None:
                    out = list(tokens)
                out[j] = v
        return out


VERDICT_RULES = {ComparedValuesVerdictRule.name: ComparedValuesVerdictRule}


def make_verdict_rule(name: str | None, tokenizer) -> ComparedValuesVerdictRule | None:
    """The decode hook for ``world.arith.verdict_rule`` = ``name`` (None or empty = off), with fresh ``stats``.

    Usage: ``backend.decode_hook = make_verdict_rule("compared_values", backend.tokenizer)``.
    An unknown name is an error that lists the known ones.
    """
    if not name:
        return None
    if name not in VERDICT_RULES:
        raise ValueError(f"world.arith.verdict_rule: unknown rule {name!r}; known: {sorted(VERDICT_RULES)} or null")
    return VERDICT_RULES[name](tokenizer)

"""Decode hooks: a world's rule that may replace the tokens a backend chose at a decode step.

Generation knows nothing about worlds; a world that wants a decode-time rule hands the backend
an object that follows :class:`DecodeHook` (``TransformersBackend(..., decode_hook=hook)``, or
set ``backend.decode_hook`` between calls; None = off). At every decode step, after the
backend has chosen each row's next token (argmax or sampled) and before it appends them::

    new = hook(tokens, tails, logits)

- ``tokens``: the chosen token id per row of the current batch (a list of ints; do not modify it);
- ``tails``: per row, the end of the text generated so far (at least ``hook.tail_chars``
  characters, or all of it when shorter), or None for a row that has already finished;
- ``logits``: the ``[rows, vocab]`` logits the tokens were chosen from (read only).

The hook returns None to keep the tokens, or a new list of the same length with some of them
replaced; the backend then feeds those to the model, so the rest of the text follows the
override. A hook counts what it did in its own ``stats`` dict (callers report it); a fresh hook
starts a fresh count. The toy world's verdict rule is one:
:func:`scrit_utils.worlds.arith.make_verdict_rule`.
"""
from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import torch

__all__ = ["DecodeHook"]


@runtime_checkable
class DecodeHook(Protocol):
    """The decode-step hook protocol; see the module docstring."""

    #: characters of each row's generated text the hook needs to see in ``tails``
    tail_chars: int
    #: the hook's own counters, e.g. how often it was consulted and how often it changed a token
    stats: dict[str, int]

    def __call__(self, tokens: list[int], tails: Sequence[str | None], logits: torch.Tensor) -> list[int] | None:
        """Tokens to use instead of ``tokens`` (same length), or None to keep them."""
        ...

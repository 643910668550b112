"""The generation interface every backend implements (transformers, vLLM, OpenAI-compatible).

A backend turns chat requests into completions. Requests carry chat *messages*, not
rendered text, so that a server backend can send them as-is while in-process
backends render them with the model's own chat template. Each request carries its
own seed, derived from (profile seed, stage, item id, sample index) by
:func:`derive_seed`, so a resumed run reproduces an uninterrupted one.

Usage::

    backend = get_backend("transformers", model="models/toy-0.5m")
    reqs = [GenerationRequest(id=p.id, messages=prompts.solve_messages(p.question, "compact"),
                              seed=derive_seed(cfg.seed, "solve", p.id, 0)) for p in problems]
    texts = backend.generate(reqs, SamplingParams(max_new_tokens=256, temperature=0.7))
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol, Sequence, runtime_checkable


@dataclass(frozen=True)
class SamplingParams:
    max_new_tokens: int = 512
    temperature: float = 0.0  # 0.0 means greedy decoding
    top_p: float = 1.0
    stop: tuple[str, ...] = ()  # generation ends at (and excludes) the first stop string

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


@dataclass(frozen=True)
class GenerationRequest:
    id: str
    messages: list  # chat messages [{"role": ..., "content": ...}]
    seed: int = 0


@runtime_checkable
class Backend(Protocol):
    """``generate`` returns one completion string per request, in request order."""

    name: str

    def generate(
        self, requests: Sequence[GenerationRequest], params: SamplingParams, progress: bool = True
    ) -> list[str]: ...


def derive_seed(seed: int, *parts: object) -> int:
    """A 31-bit seed from the profile seed and an item's identity (stage, id, sample index)."""
    h = hashlib.sha256(("\x1f".join([str(seed), *map(str, parts)])).encode()).digest()
    return int.from_bytes(h[:4], "little") & 0x7FFFFFFF


def truncate_at_stop(text: str, stop: Sequence[str]) -> str:
    """Cut ``text`` at the earliest occurrence of any stop string."""
    cut = len(text)
    for s in stop:
        if s:
            i = text.find(s)
            if 0 <= i < cut:
                cut = i
    return text[:cut]

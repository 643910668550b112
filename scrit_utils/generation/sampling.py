"""Token sampling with counter-based randomness: a request's draw at step ``t`` depends only on (seed, t).

:func:`counter_uniform` hashes ``(seed, step)`` to one uniform number with integer ops on the
CPU, so the same request samples the same text on every machine and device, whatever other
requests share its batch, the batch size, or whether the run was resumed. :func:`_sample`
turns a batch's logits into next tokens with it (greedy: argmax).
"""
from __future__ import annotations

import torch

from scrit_utils.generation.base import SamplingParams

__all__ = ["counter_uniform"]

_MASK32 = 0xFFFFFFFF


def _mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    """(x * c) mod 2**32 for 32-bit values held in int64, without int64 overflow."""
    lo, hi = c & 0xFFFF, c >> 16
    return (x * lo + (((x * hi) & 0xFFFF) << 16)) & _MASK32


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer finaliser (xorshift-multiply, "lowbias32" constants)."""
    x = x & _MASK32
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def counter_uniform(seeds: torch.Tensor, step: int | torch.Tensor) -> torch.Tensor:
    """One uniform [0, 1) float64 per seed, a pure function of (seed, step); 53 random bits.

    ``step`` is one step for every seed or a tensor of one step per seed (continuous batching, where
    rows are at different tokens). Computed on the CPU with integer ops only, so the same (seed, step)
    gives the same number on every machine and device, whatever else is in the batch.
    """
    s = seeds.to(device="cpu", dtype=torch.int64)
    steps = torch.as_tensor(step, dtype=torch.int64).to("cpu").expand_as(s)
    key = _mix32(s + 0x9E3779B9)
    a = _mix32(key ^ _mix32(2 * steps))
    b = _mix32(key ^ _mix32(2 * steps + 1) ^ 0x68E31DA4)
    return ((a << 21) | (b >> 11)).to(torch.float64) / float(1 << 53)


def _sample(logits: torch.Tensor, seeds: torch.Tensor, step: int | torch.Tensor, params: SamplingParams) -> torch.Tensor:
    """Next token per row: argmax when greedy, else inverse-CDF sampling with a per-row uniform."""
    if params.greedy:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / params.temperature, dim=-1).double()
    if params.top_p < 1.0:
        probs, order = torch.sort(probs, dim=-1, descending=True, stable=True)
        before = probs.cumsum(dim=-1) - probs  # mass strictly above each token
        probs = probs.masked_fill(before >= params.top_p, 0.0)  # the top token always stays
    else:
        order = None
    cdf = probs.cumsum(dim=-1)
    u = counter_uniform(seeds, step).to(cdf.device) * cdf[:, -1]
    idx = torch.searchsorted(cdf, u.unsqueeze(-1), right=True).clamp_(max=cdf.shape[-1] - 1)
    # never land on a zero-probability token (u == cdf boundary at the tail)
    idx = torch.where(probs.gather(-1, idx) > 0, idx, (probs > 0).cumsum(-1).argmax(-1, keepdim=True))
    tok = idx if order is None else order.gather(-1, idx)
    return tok.squeeze(-1)

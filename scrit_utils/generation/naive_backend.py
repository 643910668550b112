"""The slow reference: one prompt at a time through ``model.generate``.

``scripts/bench_generation.py`` times :class:`~scrit_utils.generation.transformers_backend.TransformersBackend`
against it, and the tests check the two agree (greedy: token for token).

Usage::

    from scrit_utils.generation.naive_backend import NaiveTransformersBackend

    naive = NaiveTransformersBackend("models/toy-0.6m")              # or _loaded=(model, tokenizer)
    texts = naive.generate(requests, SamplingParams(max_new_tokens=64))
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from scrit_utils.critique import prompts
from scrit_utils.generation.base import GenerationRequest, SamplingParams, truncate_at_stop
from scrit_utils.generation.loading import _eos_ids, _validate, load_model, load_tokenizer, resolve_device, resolve_dtype

__all__ = ["NaiveTransformersBackend"]


class NaiveTransformersBackend:
    """One prompt at a time through ``model.generate`` (the slow baseline for the benchmark).

    Greedy output matches :class:`TransformersBackend` token for token. Sampled output uses
    transformers' own sampler seeded per request with ``torch.manual_seed``, so it is
    reproducible but not the same draw as the batched backend's counter-based sampler.
    """

    name = "transformers-naive"

    def __init__(self, model: str | Path, device: str = "cpu", dtype: str | torch.dtype = "auto",
                 trust_remote_code: bool = False, revision: str | None = None, _loaded: tuple | None = None):
        self.model_name = str(model)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        if _loaded is not None:
            self.model, self.tokenizer = _loaded
        else:
            self.tokenizer = load_tokenizer(model, trust_remote_code, revision)
            self.model = load_model(model, self.device, self.dtype, trust_remote_code, revision)
        self.eos_ids = _eos_ids(self.tokenizer, self.model)
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else min(self.eos_ids)

    @torch.inference_mode()
    def generate(self, requests: Sequence[GenerationRequest], params: SamplingParams, progress: bool = True) -> list[str]:
        from tqdm.auto import tqdm

        requests = list(requests)
        _validate(requests, params)
        out = []
        stops = tuple(s for s in params.stop if s)
        for r in tqdm(requests, disable=not progress, desc="generate (naive)", unit="req", dynamic_ncols=True):
            text = prompts.render_chat(self.tokenizer, r.messages)
            ids = torch.tensor([self.tokenizer(text, add_special_tokens=False)["input_ids"]], device=self.device)
            kw = dict(max_new_tokens=params.max_new_tokens, eos_token_id=sorted(self.eos_ids), pad_token_id=self.pad_id,
                      attention_mask=torch.ones_like(ids))
            if params.greedy:
                kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            else:
                torch.manual_seed(r.seed)
                kw.update(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=0)
            if stops:
                kw.update(stop_strings=list(stops), tokenizer=self.tokenizer)
            seq = self.model.generate(ids, **kw)[0, ids.shape[1]:].tolist()
            while seq and seq[-1] in self.eos_ids:
                seq.pop()
            out.append(truncate_at_stop(self.tokenizer.decode(seq, skip_special_tokens=True), stops))
        return out

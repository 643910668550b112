"""Offline generation with vLLM (GPU machines only; ``pip install -e '.[gpu]'``).

:class:`VLLMBackend` wraps one ``vllm.LLM`` engine. Each request's messages are rendered with
the checkpoint's own chat template through the Hugging Face tokenizer
(:func:`scrit_utils.critique.prompts.render_chat`, the same code path as the transformers backend) and
tokenized here, so vLLM receives token ids: the prompt tokens are identical across backends.
Completions are decoded from the returned token ids with the same tokenizer. Every request
gets its own ``vllm.SamplingParams`` carrying its derived seed, so sampled text does not
depend on batch composition, and a resumed run reproduces an uninterrupted one.

Engine options worth knowing: ``tensor_parallel_size`` splits one model over that many GPUs;
``enable_prefix_caching`` reuses the KV cache of shared prompt prefixes (all critique prompts
share the long instruction, so this saves prefill work); ``gpu_memory_utilization`` is the
share of GPU memory vLLM may take for weights + KV cache; ``max_model_len`` caps the context
(a smaller value leaves room for more concurrent sequences). Any other ``vllm.LLM`` keyword
(``enforce_eager``, ``quantization``, ...) can be passed through ``engine_kwargs``.

vLLM is imported only when a backend is built: the CPU set-up never installs it and nothing
else in the package imports this module eagerly.

One engine at a time. An engine claims ``gpu_memory_utilization`` of every GPU it uses, so two in one
process do not fit. Building a backend first shuts down the engine still alive in this process (whoever
holds it: a later ``generate`` on that backend raises instead of running); :meth:`VLLMBackend.shutdown`
and :func:`shutdown_live_engine` stop it explicitly, and ``pipeline.common.release_backends`` (between
generators, before training) calls them. vLLM 0.33.0's ``LLM`` has no ``shutdown()``; its engine does:
``llm.llm_engine.engine_core`` is an ``EngineCoreClient`` whose ``shutdown()`` stops the engine-core process
and its GPU workers, and ``vllm.distributed.parallel_state.cleanup_dist_env_and_memory()`` then destroys
the model-parallel groups and empties the CUDA cache (what vLLM's own tests call between engines).
These three vLLM names are the :class:`EngineAPI`; tests put a stand-in engine there (``ENGINE_API``).

Usage::

    backend = VLLMBackend("Qwen/Qwen2.5-7B-Instruct", tensor_parallel_size=2)
    texts = backend.generate(requests, SamplingParams(max_new_tokens=2048))   # greedy
    backend.shutdown()                                  # GPU memory back before the next model or training
"""
from __future__ import annotations

import gc
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from scrit_utils.critique import prompts
from scrit_utils.generation.base import GenerationRequest, SamplingParams, truncate_at_stop
from scrit_utils.generation.loading import load_tokenizer


def _eos_ids(tokenizer, model: str) -> frozenset[int]:
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    try:
        from transformers import GenerationConfig

        eos = GenerationConfig.from_pretrained(model).eos_token_id
        ids.update([eos] if isinstance(eos, int) else list(eos or []))
    except OSError:  # no generation_config.json
        pass
    return frozenset(ids)


def vllm_available() -> bool:
    """Whether vLLM can be imported here (never the case in the CPU set-up)."""
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def sampling_kwargs(params: SamplingParams, seed: int) -> dict[str, Any]:
    """Keyword arguments for ``vllm.SamplingParams`` for one request.

    Greedy is ``temperature=0`` (vLLM then ignores top_p); stop strings are excluded from the
    output (vLLM's default ``include_stop_str_in_output=False``), matching our other backends.
    """
    if params.max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {params.max_new_tokens}")
    if not params.greedy and not (0.0 < params.top_p <= 1.0):
        raise ValueError(f"top_p must be in (0, 1], got {params.top_p}")
    kw: dict[str, Any] = {
        "n": 1,
        "max_tokens": int(params.max_new_tokens),
        "temperature": 0.0 if params.greedy else float(params.temperature),
        "top_p": 1.0 if params.greedy else float(params.top_p),
        "seed": int(seed),
        "skip_special_tokens": True,
    }
    stops = [s for s in params.stop if s]
    if stops:
        kw["stop"] = stops
    return kw


def engine_kwargs(
    model: str,
    tensor_parallel_size: int = 1,
    dtype: str = "auto",
    gpu_memory_utilization: float = 0.9,
    max_model_len: int | None = None,
    enable_prefix_caching: bool = True,
    trust_remote_code: bool = False,
    seed: int = 0,
    **extra: Any,
) -> dict[str, Any]:
    """Keyword arguments for ``vllm.LLM`` (checked here so a bad profile fails before CUDA starts)."""
    if tensor_parallel_size < 1:
        raise ValueError(f"tensor_parallel_size must be >= 1, got {tensor_parallel_size}")
    if not (0.0 < gpu_memory_utilization <= 1.0):
        raise ValueError(f"gpu_memory_utilization must be in (0, 1], got {gpu_memory_utilization}")
    if max_model_len is not None and max_model_len < 1:
        raise ValueError(f"max_model_len must be >= 1, got {max_model_len}")
    kw: dict[str, Any] = {
        "model": str(model),
        "tokenizer": str(model),
        "tensor_parallel_size": int(tensor_parallel_size),
        "dtype": dtype,
        "gpu_memory_utilization": float(gpu_memory_utilization),
        "enable_prefix_caching": bool(enable_prefix_caching),
        "trust_remote_code": bool(trust_remote_code),
        "seed": int(seed),
    }
    if max_model_len is not None:
        kw["max_model_len"] = int(max_model_len)
    kw.update(extra)
    return kw


@dataclass(frozen=True)
class EngineAPI:
    """What the backend uses of vLLM: the engine class (``vllm.LLM``), the per-request sampling parameters
    (``vllm.SamplingParams``) and the process-wide teardown run after an engine's shutdown."""

    llm_cls: Callable[..., Any]
    sampling_params_cls: Callable[..., Any]
    cleanup: Callable[[], None]


#: the EngineAPI new backends use when given none; None = the installed vLLM (:func:`vllm_api`)
ENGINE_API: EngineAPI | None = None
_LIVE: "VLLMBackend | None" = None  # the one engine alive in this process


def vllm_api() -> EngineAPI:
    """The installed vLLM's :class:`EngineAPI` (vllm 0.33.0), with a clear error where it is not installed."""
    try:
        import vllm
        from vllm.distributed.parallel_state import cleanup_dist_env_and_memory
    except ImportError as e:
        raise ImportError(
            "the vLLM backend needs vllm (GPU machines: pip install -e '.[gpu]'); "
            f"on CPU use the transformers or openai backend ({e})"
        ) from None
    return EngineAPI(vllm.LLM, vllm.SamplingParams, cleanup_dist_env_and_memory)


def live_engine() -> "VLLMBackend | None":
    """The backend whose engine is alive in this process, if any."""
    return _LIVE


def shutdown_live_engine() -> bool:
    """Shut down the engine alive in this process (if any); True when there was one."""
    live = _LIVE
    if live is None:
        return False
    live.shutdown()
    return True


class VLLMBackend:
    name = "vllm"

    def __init__(
        self,
        model: str,
        tensor_parallel_size: int = 1,
        dtype: str = "auto",
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        enable_prefix_caching: bool = True,
        trust_remote_code: bool = False,
        seed: int = 0,
        engine_api: EngineAPI | None = None,
        **engine_kw: Any,
    ):
        global _LIVE
        self.model_name = str(model)
        self.llm = None
        self.engine_kwargs = engine_kwargs(
            model, tensor_parallel_size, dtype, gpu_memory_utilization, max_model_len,
            enable_prefix_caching, trust_remote_code, seed, **engine_kw,
        )
        self._api = engine_api or ENGINE_API or vllm_api()
        # our tokenizer loader (keeps a custom toy tokenizer.json as it is) renders and tokenizes
        self.tokenizer = load_tokenizer(model, trust_remote_code=trust_remote_code)
        self.eos_ids = _eos_ids(self.tokenizer, model)
        shutdown_live_engine()  # the previous engine gives its GPU memory back before this one claims it
        self.llm = self._api.llm_cls(**self.engine_kwargs)
        _LIVE = self

    def __repr__(self) -> str:
        state = "" if self.alive else ", shut down"
        return f"VLLMBackend({self.model_name!r}, tp={self.engine_kwargs['tensor_parallel_size']}{state})"

    @property
    def alive(self) -> bool:
        return self.llm is not None

    def shutdown(self) -> None:
        """Stop the engine and free its GPU memory (idempotent): the engine core's ``shutdown()`` (its process
        and GPU workers exit), the last reference dropped, then vLLM's ``cleanup_dist_env_and_memory()``."""
        global _LIVE
        llm, self.llm = self.llm, None
        if _LIVE is self:
            _LIVE = None
        if llm is None:
            return
        core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        try:
            if core is not None:
                core.shutdown()
        finally:
            del core, llm
            gc.collect()  # the in-process engine's tensors go with the last reference
            self._api.cleanup()

    def __enter__(self) -> "VLLMBackend":
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()

    def encode(self, requests: Sequence[GenerationRequest]) -> list[list[int]]:
        texts = [prompts.render_chat(self.tokenizer, r.messages) for r in requests]
        return self.tokenizer(texts, add_special_tokens=False)["input_ids"]

    def generate(
        self, requests: Sequence[GenerationRequest], params: SamplingParams, progress: bool = True
    ) -> list[str]:
        requests = list(requests)
        if not requests:
            return []
        if self.llm is None:
            raise RuntimeError(f"{self!r}: its engine was shut down (another vLLM engine started in this process, "
                               "or release_backends() ran); build a new backend to generate with it")
        ids = self.encode(requests)
        inputs = [{"prompt_token_ids": x} for x in ids]
        sps = [self._api.sampling_params_cls(**sampling_kwargs(params, r.seed)) for r in requests]
        outputs = self.llm.generate(inputs, sps, use_tqdm=progress)
        if len(outputs) != len(requests):  # pragma: no cover - vLLM contract
            raise RuntimeError(f"vLLM returned {len(outputs)} outputs for {len(requests)} requests")
        # vLLM returns outputs in input order. Texts are decoded here from the token ids with our
        # tokenizer (vLLM's own detokenizer may load a custom toy tokenizer as Qwen's BPE), then cut
        # at the first stop string exactly as the transformers backend does.
        return [self.decode(o.outputs[0].token_ids, params.stop) for o in outputs]

    def decode(self, token_ids: Sequence[int], stop: Sequence[str] = ()) -> str:
        ids = list(token_ids)
        while ids and ids[-1] in self.eos_ids:
            ids.pop()
        return truncate_at_stop(self.tokenizer.decode(ids, skip_special_tokens=True), stop)

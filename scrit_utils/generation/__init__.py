"""Generation backends behind one interface; see :mod:`scrit_utils.generation.base`."""
from scrit_utils.generation.base import Backend, GenerationRequest, SamplingParams, derive_seed, truncate_at_stop
from scrit_utils.generation.decode_hook import DecodeHook

__all__ = ["Backend", "DecodeHook", "GenerationRequest", "SamplingParams", "derive_seed", "truncate_at_stop", "get_backend"]


def get_backend(kind: str, **kwargs) -> Backend:
    """Construct a backend by name; GPU/optional ones are imported lazily."""
    from scrit_utils.core.inputs import record_model

    record_model(kwargs.get("model"))  # a stage recording its inputs (scrit_utils.core.inputs) sees the model
    if kind == "transformers":
        from scrit_utils.generation.transformers_backend import TransformersBackend

        return TransformersBackend(**kwargs)
    if kind == "vllm":
        from scrit_utils.generation.vllm_backend import VLLMBackend

        return VLLMBackend(**kwargs)
    if kind == "openai":
        from scrit_utils.generation.openai_backend import OpenAIBackend

        return OpenAIBackend(**kwargs)
    raise ValueError(f"unknown generation backend {kind!r}; expected transformers | vllm | openai")

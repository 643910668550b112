"""VLLMBackend: what can be checked without vLLM runs on CPU; the engine test needs vllm + a GPU."""
from __future__ import annotations

import subprocess
import sys

import pytest

from scrit_utils.generation import GenerationRequest, SamplingParams, get_backend
from scrit_utils.generation.vllm_backend import engine_kwargs, sampling_kwargs, vllm_available


def test_sampling_kwargs_greedy_and_sampled():
    g = sampling_kwargs(SamplingParams(max_new_tokens=2048, temperature=0.0, top_p=0.3), seed=5)
    assert g == {"n": 1, "max_tokens": 2048, "temperature": 0.0, "top_p": 1.0, "seed": 5, "skip_special_tokens": True}
    s = sampling_kwargs(SamplingParams(max_new_tokens=64, temperature=0.7, top_p=0.9, stop=("##", "")), seed=123)
    assert s["temperature"] == 0.7 and s["top_p"] == 0.9 and s["seed"] == 123 and s["stop"] == ["##"]
    with pytest.raises(ValueError, match="max_new_tokens"):
        sampling_kwargs(SamplingParams(max_new_tokens=0), seed=0)
    with pytest.raises(ValueError, match="top_p"):
        sampling_kwargs(SamplingParams(temperature=1.0, top_p=0.0), seed=0)


def test_engine_kwargs_defaults_and_validation():
    kw = engine_kwargs("Qwen/Qwen2.5-7B-Instruct", tensor_parallel_size=4, max_model_len=8192, enforce_eager=True)
    assert kw["tensor_parallel_size"] == 4 and kw["enable_prefix_caching"] is True
    assert kw["trust_remote_code"] is False and kw["max_model_len"] == 8192 and kw["enforce_eager"] is True
    assert "max_model_len" not in engine_kwargs("m")
    with pytest.raises(ValueError, match="tensor_parallel_size"):
        engine_kwargs("m", tensor_parallel_size=0)
    with pytest.raises(ValueError, match="gpu_memory_utilization"):
        engine_kwargs("m", gpu_memory_utilization=1.5)


def test_cpu_import_paths_never_import_vllm():
    # importing the package, the generation registry and this module must not pull vllm in
    code = (
        "import sys, scrit_utils.generation, scrit_utils.generation.vllm_backend, scrit_utils.core.config;"
        "assert 'vllm' not in sys.modules, 'vllm was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.skipif(vllm_available(), reason="vllm is installed here; the missing-vllm error path is not reachable")
def test_clear_error_without_vllm():
    with pytest.raises(ImportError, match=r"\.\[gpu\]"):
        get_backend("vllm", model="models/does-not-matter")


@pytest.mark.skipif(not vllm_available(), reason="vllm is not importable (GPU-only extra `.[gpu]`; CPU set-up never installs it)")
def test_vllm_greedy_matches_transformers(tmp_path):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("vllm is installed but no CUDA device is visible")
    from scrit_utils.critique import prompts
    from scrit_utils.generation.transformers_backend import TransformersBackend

    from .scaleout_tiny import build_tiny_chat_model

    path = build_tiny_chat_model(tmp_path / "tiny")
    reqs = [GenerationRequest(f"r{i}", prompts.direct_critic_messages(f"{i}+1", f"Step 1: {i}+1={i + 1}", "compact"), seed=i)
            for i in range(8)]
    params = SamplingParams(max_new_tokens=16)
    ours = get_backend("vllm", model=str(path), gpu_memory_utilization=0.3, dtype="float32", enforce_eager=True)
    got = ours.generate(reqs, params, progress=False)
    ref = TransformersBackend(str(path), device="cuda", dtype="float32").generate(reqs, params, progress=False)
    assert got == ref
    sp = SamplingParams(max_new_tokens=16, temperature=1.0)
    assert ours.generate(reqs, sp, progress=False) == ours.generate(list(reversed(reqs)), sp, progress=False)[::-1]


def test_gpu_check_script_exits_cleanly_without_gpu(repo_root):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible; run scripts/gpu_check.py itself")
    proc = subprocess.run([sys.executable, str(repo_root / "scripts/gpu_check.py"), "--workdir", "/nonexistent"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "no CUDA device" in proc.stderr

"""scripts/gpu_check.py: its CPU part runs here (the GPU part needs vLLM and a GPU; see docs/GPU.md)."""
from __future__ import annotations

import pytest

import json
import subprocess
import sys

# subprocesses, servers or whole real-data sets: `make test` runs them, `make test-fast` does not
pytestmark = pytest.mark.slow


def test_gpu_check_cpu_part(repo_root, tmp_path):
    out = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, str(repo_root / "scripts" / "gpu_check.py"), "--cpu-only", "--n", "8",
                           "--workdir", str(tmp_path / "work"), "--json-out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["mode"] == "cpu-only" and report["ok"] is True and report["passed"] == {"cpu_part": True}
    model = report["check_model"]
    # a head size every vLLM CUDA attention backend takes, on the committed toy tokenizer
    assert model["head_size"] == 64 and model["vllm_safe_head_size"] and model["tokenizer"] == "models/tokenizer"
    cpu = report["cpu"]
    assert cpu["equal_to_hf_generate"] == "8/8" and cpu["batch_order_independent"] and cpu["distinct_texts"] > 1
    assert cpu["max_greedy_gap"] == 0.0 and cpu["corrupted_flagged"] == 8  # the teacher-forced check can fail
    assert report["vllm_vs_transformers"] == "not run (--cpu-only)"
    saved = json.loads((tmp_path / "work" / "check-model" / "config.json").read_text())
    assert saved["hidden_size"] // saved["num_attention_heads"] == 64 and saved["num_key_value_heads"] == 1

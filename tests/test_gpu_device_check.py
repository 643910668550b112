"""`scripts/gpu_check.py --device` (scripts/gpu_device_check.py): its stages run here on CPU with small models;
on a machine without CUDA the command itself stops at once, saying so (the GPU run needs a GPU: docs/GPU.md)."""
from __future__ import annotations

import importlib.metadata as md
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import gpu_device_check as dev  # noqa: E402

TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
            vocab_size=2048, max_position_embeddings=1024, tie_word_embeddings=True)


def test_no_cuda_device_is_a_clear_exit(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is visible here")
    out = tmp_path / "r.json"
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "gpu_check.py"), "--device", "--json-out", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("gpu_check --device: no CUDA device (torch ") and "nothing was run" in r.stderr
    assert json.loads(out.read_text()) == {"mode": "device", "torch": torch.__version__, "cuda": False, "ok": False,
                                           "error": "no CUDA device"}


def test_wheel_table_matches_the_pins():
    table = {w[0]: w for w in dev.WHEELS}
    for name in ("transformers", "trl", "peft", "accelerate", "datasets", "tokenizers", "safetensors", "numpy"):
        assert table[name][1] == md.version(name), name  # the wheels are the versions this project runs
    assert "torch" not in table and len(table) == len(dev.WHEELS) == 27
    assert {w[3] for w in dev.WHEELS} == {"core", "trl"} and table["peft"][3] == "core" and table["trl"][3] == "trl"
    core = sum(w[2] for w in dev.WHEELS if w[3] == "core")
    assert core < dev.CARRY_LIMIT - 25 * 2**20  # the core set fits one transfer beside a working tree of 25 MiB
    assert table["pyarrow"][2] > dev.CARRY_LIMIT - 25 * 2**20  # TRL's datasets -> pyarrow does not


def test_print_wheels_lists_sizes_and_the_download_line():
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "gpu_check.py"), "--print-wheels"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    assert r.stdout.startswith("gpu_check --device needs, beyond torch (64 MiB per transfer; working tree ")
    assert "core (generation + LoRA through PEFT): 18 wheels, 36.5 MiB" in r.stdout
    assert "  transformers==5.20.2   12.25 MiB" in r.stdout and "core fits one transfer: " in r.stdout
    # the core wheels in transfers that each fit beside the working tree, every wheel once, trl's never
    downloads = [l for l in r.stdout.splitlines() if l.startswith("transfer ")]
    pins = [p for l in downloads for p in l.split(" -d wheels-")[1].split()[1:]]
    assert downloads and sorted(pins) == sorted(f"{n}=={v}" for n, v, _, g in dev.WHEELS if g == "core")
    calls = [l for l in r.stdout.splitlines() if l.startswith("on the GPU machine, call ")]
    assert len(calls) == len(downloads) and "gpu_check.py --device" in calls[-1]
    assert all("--target .gpu-deps" in c for c in calls)


def test_transfers_fit_the_room_and_fail_when_one_wheel_cannot():
    ws = [("a", "1", 30, "core"), ("b", "1", 20, "core"), ("c", "1", 15, "core"), ("d", "1", 5, "core")]
    plan = dev.transfers(ws, 35)
    assert all(sum(w[2] for w in t) <= 35 for t in plan) and sorted(w[0] for t in plan for w in t) == list("abcd")
    assert len(plan) == 2
    assert dev.transfers(ws, 29) is None  # "a" alone is larger than the room


@pytest.mark.slow
def test_generation_stage_on_cpu():
    report: dict = {}
    ok = dev.generation_stage(report, "cpu", n=4, max_new=8, big_shape=TINY, big_n=2, big_max_new=8)
    g = report["generation"]
    assert g["model"] == "models/toy-409k" and g["float32"]["equal"] == 4  # batched + KV cache == HF generate
    assert ok == (g["bfloat16"]["equal"] >= 0.9 * 4)
    big = g["qwen2.5-0.5b_shape"]
    assert big["requests"] == 2 and big["generated_tokens"] > 0 and big["backend_tokens_per_s"] > 0


def test_qwen25_05b_shape():
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    with torch.device("meta"):  # sizes only, no memory
        model = Qwen2ForCausalLM(Qwen2Config(**dev.QWEN25_05B))
    # Qwen2.5-0.5B's parameter count (494M, embeddings tied to the output layer)
    assert sum(p.numel() for p in model.parameters()) == 494_032_768
    assert model.config.hidden_size // model.config.num_attention_heads == 64


@pytest.mark.slow
@pytest.mark.parametrize("use_trl", [True, False])
def test_lora_sft_stage_on_cpu(tmp_path, use_trl):
    report: dict = {}
    ok = dev.sft_stage(report, tmp_path, "cpu", steps=3, batch=2, seq_len=256, shape=TINY, bf16=False, use_trl=use_trl)
    r = report["lora_sft"]
    assert ok, r
    assert r["trainer"] == ("trl.SFTTrainer" if use_trl else "peft + plain loop (TRL not used: asked)")
    assert r["steps"] == 3 and r["lora_r"] == 64 and r["only_lora_trainable"] and r["gradient_checkpointing"]
    assert r["base_weights_unchanged"] and r["lora_weights_moved"] and r["tokens_per_s"] > 0

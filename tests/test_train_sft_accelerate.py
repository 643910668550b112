"""scripts/train_sft.py under `accelerate launch` with 2 CPU processes (gloo) on a tiny model."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scrit_utils.critique import prompts
from scrit_utils.core.records import SFTExample, write_jsonl

from .conftest import REPO
from .scaleout_tiny import build_tiny_chat_model


@pytest.mark.slow
def test_accelerate_two_process_cpu_sft(tmp_path):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    base = build_tiny_chat_model(tmp_path / "base")
    data = tmp_path / "sft.jsonl"
    write_jsonl(data, [
        SFTExample(id=f"e{i}", prompt=prompts.direct_critic_messages(f"{i}+1", f"Step 1: {i}+1={i + 1}", "compact"),
                   completion=prompts.render_critique(prompts.CritiqueParts((f"{i}+1={i + 1} ok",), True, -1, str(i + 1))),
                   label_correct=True)
        for i in range(8)
    ])
    out = tmp_path / "out"
    env = dict(os.environ, OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1",
               ACCELERATE_DISABLE_RICH="1")
    cmd = [str(Path(sys.executable).with_name("accelerate")), "launch",
           "--config_file", str(REPO / "configs/accelerate/cpu_2proc.yaml"), "--main_process_port", "0",
           str(REPO / "scripts/train_sft.py"), "--profile", "configs/smoke.yaml", "--data", str(data),
           "--output-dir", str(out), "--model", str(base),
           "--set", "training.max_steps=3", "training.per_device_train_batch_size=2", "training.max_length=256",
           "training.use_lora=false", "training.logging_steps=1", "training.learning_rate=0.01"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]

    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["processes"] == 2 and summary["distributed_type"].endswith("MULTI_CPU")
    assert summary["steps"] == 3 and summary["global_batch"] == 4
    assert len(summary["logged_losses"]) == 3 and all(l == l for l in summary["logged_losses"])  # no NaN

    trained = AutoModelForCausalLM.from_pretrained(out / "model")  # loadable HF dir
    assert (out / "model" / "model.safetensors").exists() and (out / "model" / "tokenizer.json").exists()
    before = load_file(base / "model.safetensors")
    after = trained.state_dict()
    changed = [k for k, v in before.items() if k in after and not torch.equal(v, after[k])]
    assert changed, "training did not change any weight"


def test_accelerate_configs_parse():
    from accelerate.commands.config.config_args import load_config_from_file

    ds = load_config_from_file(str(REPO / "configs/accelerate/deepspeed_zero3.yaml"))
    assert str(ds.distributed_type).endswith("DEEPSPEED") and ds.deepspeed_config["zero_stage"] == 3
    assert ds.deepspeed_config["zero3_save_16bit_model"] is True and ds.mixed_precision == "bf16"
    fsdp = load_config_from_file(str(REPO / "configs/accelerate/fsdp.yaml"))
    assert str(fsdp.distributed_type).endswith("FSDP") and fsdp.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"
    cpu = load_config_from_file(str(REPO / "configs/accelerate/cpu_2proc.yaml"))
    assert cpu.use_cpu is True and cpu.num_processes == 2

"""The Qwen2.5 profiles load with the study's loader and carry the paper's settings."""
from __future__ import annotations

import re

import pytest

from scrit_utils.core import config

from .conftest import REPO

PROFILES = sorted(REPO.glob("configs/qwen*.yaml"))
# GPUs each profile's batch arithmetic assumes (docs/GPU.md)
WORLD = {"qwen2.5-1.5b": 1, "qwen2.5-7b": 1, "qwen2.5-32b": 16, "qwen2.5-72b-instruct": 32}
REALCRITIC = {"gsm8k", "math", "college_math", "minerva_math", "olympiadbench", "arc-challenge", "gpqa", "mmlu_stem"}


def test_all_four_sizes_present():
    assert {p.stem for p in PROFILES} == set(WORLD)


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.stem)
def test_profile_loads_with_paper_settings(path):
    cfg = config.load(path)
    t = cfg.training
    assert cfg.run.name == path.stem and cfg.world.kind == "real"
    assert [s.name for s in cfg.world.real_sources] == ["numinamath", "gsm8k", "math"]
    assert t.num_train_epochs == 1.0 and t.max_steps == -1 and t.warmup_ratio == 0.03
    assert t.per_device_train_batch_size * t.gradient_accumulation_steps * WORLD[path.stem] == 256
    if not t.use_lora:
        assert t.learning_rate == 5e-6  # paper, full fine-tune
    assert (not t.use_lora) == (WORLD[path.stem] > 1)  # LoRA on one GPU, full FT + ZeRO-3 on many
    ev = cfg.generation.evaluation
    assert ev.temperature == 0.0 and ev.max_new_tokens == 2048
    assert cfg.generation.backend == "vllm" and cfg.generation.prompt_variant == "full"
    assert set(cfg.evaluation.benchmarks) == REALCRITIC
    assert cfg.evaluation.scenarios == ("wrong", "mix", "own")
    assert cfg.evaluation.processbench == ("gsm8k", "math", "olympiadbench", "omnimath")
    assert cfg.validation.correct_ratio == 0.5 and cfg.self_critique.mode == "contrastive"
    for ref in re.findall(r"configs/accelerate/[\w.]+\.yaml", path.read_text()):
        assert (REPO / ref).exists(), f"{path.name} names a missing file {ref}"

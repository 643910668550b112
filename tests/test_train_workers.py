"""The sweeps' SFT on worker processes (run.training_workers; scrit_utils/study/train_workers.py): the points'
stages are trained once each in the workers, keyed apart from in-process training, with the same losses and
weights up to one thread's rounding; the key is left out of every hash at its default."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiny_lm import build_tiny_lm, critique_examples  # noqa: E402

from scrit_utils.core import artifacts, config  # noqa: E402
from scrit_utils.generation.process_pool import shutdown_pools  # noqa: E402
from scrit_utils.pipeline import training  # noqa: E402
from scrit_utils.study import sweeps, train_workers  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_lm(tmp_path_factory.mktemp("m") / "tiny", hidden=32, layers=2, tokenizer="toy")


def _cfg(tmp_path, model, *extra):
    return config.load("configs/smoke.yaml", [f"models.critic={model}", f"run.artifacts_dir={tmp_path}",
                                              "training.use_lora=false", "training.bf16=false", "training.max_steps=3",
                                              "training.per_device_train_batch_size=4", "training.logging_steps=1",
                                              "training.max_length=512", "run.torch_threads=2", *extra])


def _upstream(cfg):
    st = artifacts.stage("03_self_validation", cfg, ("run.seed",), "test")
    st.finish(counts={})
    return st


def _jobs(cfg, st03):
    a, b = tuple(critique_examples(12, seed=1)), tuple(critique_examples(16, seed=2))  # ids differ
    return [sweeps.Job("data_size", "contrastive", 12, 0, cfg, cfg, st03, a),
            sweeps.Job("data_size", "contrastive", 12, 0, cfg, cfg, st03, a),  # the same set again: trained once
            sweeps.Job("data_size", "direct", 16, 0, cfg, cfg, st03, b),
            sweeps.Job("data_size", "contrastive", 0, 0, None, cfg)]  # the base: nothing to train


def _trained(st):
    losses = [r["loss"] for r in json.loads((st.dir / "train_log.json").read_text()) if "loss" in r]
    return losses, load_file(training.trained_model_dir(st) / "model.safetensors")


def test_points_train_once_each_on_the_workers_with_one_process_s_losses(tmp_path, tiny):
    cfg = _cfg(tmp_path, tiny, "run.training_workers=2")
    one = _cfg(tmp_path, tiny)
    st03 = _upstream(one)
    jobs = _jobs(cfg, st03)
    try:
        assert train_workers.pretrain(jobs, sweeps.train_stage, sweeps.run_train) == 2
        assert train_workers.pretrain(jobs, sweeps.train_stage, sweeps.run_train) == 0  # finished stages are not trained again
    finally:
        shutdown_pools()
    done = [sweeps.train_stage(j.cfg_train, st03, j.examples) for j in jobs[::2]]
    assert all(st.done for st in done)
    assert done[0].manifest["counts"]["steps"] == 3
    for job, st in zip(jobs[::2], done):  # the same points trained here, on two threads
        here = sweeps.run_train(one, st03, job.examples)
        assert here.dir != st.dir and here.hash != st.hash  # the key tells them apart
        (la, wa), (lb, wb) = _trained(st), _trained(here)
        assert la == pytest.approx(lb, rel=1e-4, abs=1e-6) and len(la) == 3  # max_steps
        for k in wa:
            torch.testing.assert_close(wa[k], wb[k], rtol=1e-3, atol=1e-5)
    assert train_workers.pretrain(_jobs(one, st03), sweeps.train_stage, sweeps.run_train) == 0  # one worker: the notebook trains in-process
    # the same key trained here (as the rounds' parents are) runs on one thread too: the worker's bits exactly
    here_cfg = _cfg(tmp_path / "here", tiny, "run.training_workers=2")
    before = torch.get_num_threads()
    here = sweeps.run_train(here_cfg, st03, jobs[0].examples)
    assert torch.get_num_threads() == before  # restored after training
    assert here.hash == done[0].hash and here.dir != done[0].dir
    (la, wa), (lb, wb) = _trained(done[0]), _trained(here)
    assert la == lb and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_the_key_is_hashed_when_set_and_checked(tmp_path, tiny):
    assert "training_workers" not in config.to_dict(config.load("configs/smoke.yaml"))["run"]
    cfg = _cfg(tmp_path, tiny, "run.training_workers=2")
    sl = config.config_slice(cfg, training.TRAIN_KEYS + ("run.training_workers",))
    assert sl["run.training_workers"] == 2
    with pytest.raises(ValueError, match="run.training_workers = 0"):
        train_workers.workers_of(_cfg(tmp_path, tiny, "run.training_workers=0"))

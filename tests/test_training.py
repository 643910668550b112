"""Stage 04 training: TRL SFT on prompt/completion (loss on the critique only), full or LoRA,
saved as loadable HF model dirs (safetensors)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiny_lm import build_tiny_lm, critique_examples  # noqa: E402

from scrit_utils.core import config  # noqa: E402
from scrit_utils.pipeline import training  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_lm(tmp_path_factory.mktemp("m") / "tiny", hidden=32, layers=2, tokenizer="toy")


def _examples(n=8):
    return critique_examples(n, seed=0)


def _cfg(tmp_path, model, *extra):
    return config.load("configs/smoke.yaml", [f"models.critic={model}", f"run.artifacts_dir={tmp_path}",
                                              "training.max_steps=2", "training.per_device_train_batch_size=4", *extra])


def test_loss_only_on_the_completion(tmp_path, tiny):
    cfg = _cfg(tmp_path, tiny)
    exs = _examples(2)
    trainer, tok = training.make_trainer(cfg, training.train_stage(cfg), exs)
    batch = trainer.data_collator([trainer.train_dataset[0]])
    ids, labels = batch["input_ids"][0], batch["labels"][0]
    supervised = ids[labels != -100].tolist()
    assert 0 < len(supervised) < len(ids)
    text = tok.decode(supervised)
    assert text.startswith(exs[0].completion[:40])  # the critique, from its first token ...
    assert "Critique.\n" not in text and exs[0].prompt[0]["content"][:30] not in text  # ... never the prompt


def _weights(path):
    from safetensors.torch import load_file

    return load_file(str(Path(path) / "model.safetensors"))


@pytest.mark.parametrize("use_lora", [False, True])
def test_train_saves_hf_model_dir(tmp_path, tiny, use_lora):
    from transformers import AutoModelForCausalLM

    cfg = _cfg(tmp_path, tiny, f"training.use_lora={str(use_lora).lower()}", "training.learning_rate=0.01")
    st = training.train_stage(cfg)
    stats = training.train(cfg, st, _examples())
    assert stats["steps"] == 2 and stats["use_lora"] is use_lora
    out = training.trained_model_dir(st)
    for f in ("config.json", "model.safetensors", "tokenizer.json"):
        assert (out / f).exists(), f
    assert not (st.dir / "trainer").exists()  # no optimizer checkpoints left behind
    AutoModelForCausalLM.from_pretrained(str(out))  # a normal HF dir
    base, new = _weights(tiny), _weights(out)
    assert set(new) <= set(base) | {"lm_head.weight"}  # merged: no LoRA tensors in the model dir
    assert any(not (base[k] == new[k]).all() for k in new if k in base)  # training changed the weights
    if use_lora:
        assert (st.dir / "adapter" / "adapter_config.json").exists()
        assert (st.dir / "adapter" / "adapter_model.safetensors").exists()


def test_empty_training_set_is_a_clear_error(tmp_path, tiny):
    cfg = _cfg(tmp_path, tiny)
    with pytest.raises(ValueError, match="self-training set is empty"):
        training.train(cfg, training.train_stage(cfg), [])


def test_trainer_log_lines_go_to_stderr_not_stdout(capfd):
    """Saved notebooks keep stdout: the Trainer's {'loss': ...} lines must not land there (#13)."""
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from scrit_utils.pipeline.training import _log_lines_to_stderr

    class FakeTrainer:  # only the callback list matters here
        def __init__(self):
            from transformers.trainer_callback import ProgressCallback
            self.callbacks = [ProgressCallback()]

        def pop_callback(self, cls):
            for c in self.callbacks:
                if isinstance(c, cls):
                    self.callbacks.remove(c)
                    return c

        def add_callback(self, cls):
            self.callbacks.append(cls())

    t = FakeTrainer()
    _log_lines_to_stderr(t)
    (cb,) = t.callbacks
    args, state = TrainingArguments(output_dir="unused", report_to=[]), TrainerState(max_steps=2)
    cb.on_train_begin(args, state, TrainerControl())
    cb.on_log(args, state, TrainerControl(), logs={"loss": 1.25, "total_flos": 3.0})
    cb.on_train_end(args, state, TrainerControl())
    out, err = capfd.readouterr()
    assert "'loss': '1.25'" in err and "loss" not in out

"""Padding-free SFT (scrit_utils.pipeline.sft_fast): the same loss curve and weights as the padded study
trainer, attention that never crosses examples, and the fallback to the padded trainer."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiny_lm import build_tiny_lm, critique_examples  # noqa: E402

from scrit_utils.core import config  # noqa: E402
from scrit_utils.pipeline import sft_fast, training  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_lm(tmp_path_factory.mktemp("m") / "tiny", hidden=32, layers=2, tokenizer="toy")


def _examples(n):
    return critique_examples(n, seed=1)


def _cfg(tmp_path, model, *extra):
    return config.load("configs/smoke.yaml", [f"models.critic={model}", f"run.artifacts_dir={tmp_path}",
                                              "training.use_lora=false", "training.bf16=false", "training.max_steps=3",
                                              "training.per_device_train_batch_size=4", "training.logging_steps=1",
                                              "training.max_length=512", *extra])


def _train(trainer):
    torch.manual_seed(0)
    trainer.train()
    losses = [r["loss"] for r in trainer.state.log_history if "loss" in r]
    return losses, {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def test_padding_free_trains_the_same_losses_and_weights_as_the_padded_trainer(tmp_path, tiny):
    cfg = _cfg(tmp_path, tiny)
    exs = _examples(12)  # 3 steps of 4, examples of different lengths (padding in every padded batch)
    st = training.train_stage(cfg)
    padded, tok = training.make_trainer(cfg, st, exs)
    fast_cfg = _cfg(tmp_path, tiny, "training.padding_free=true")  # the profile key the study sets
    fast, _ = training.make_trainer(fast_cfg, training.train_stage(fast_cfg), exs)
    assert fast.args.padding_free and fast.model.config._attn_implementation == sft_fast.VARLEN_ATTENTION
    assert not padded.args.padding_free
    batch = padded.data_collator([padded.train_dataset[i] for i in range(4)])
    assert (batch["attention_mask"] == 0).any()  # the padded path really pads
    lp, wp = _train(padded)
    lf, wf = _train(fast)
    assert len(lp) == len(lf) == 3
    assert lf == pytest.approx(lp, rel=1e-5, abs=1e-6)
    for k in wp:
        torch.testing.assert_close(wf[k], wp[k], rtol=1e-4, atol=1e-6)


def test_varlen_attention_equals_padded_causal_attention_per_example():
    torch.manual_seed(0)
    heads, kv_heads, dim, lengths = 4, 2, 8, [5, 9, 3]
    total = sum(lengths)

    class Attn(torch.nn.Module):
        num_key_value_groups = heads // kv_heads
        is_causal = True

    q = torch.randn(1, heads, total, dim, requires_grad=True)
    k = torch.randn(1, kv_heads, total, dim, requires_grad=True)
    v = torch.randn(1, kv_heads, total, dim, requires_grad=True)
    bounds = torch.tensor([0, 5, 14, 17], dtype=torch.int32)
    out, _ = sft_fast.varlen_sdpa(Attn(), q, k, v, None, scaling=0.3, cu_seq_lens_q=bounds)
    assert out.shape == (1, total, heads, dim)
    out.square().sum().backward()
    for (a, b) in zip(bounds[:-1].tolist(), bounds[1:].tolist()):  # each example alone, by the definition
        qq = q.detach()[:, :, a:b]
        kk = k.detach()[:, :, a:b].repeat_interleave(2, dim=1)
        vv = v.detach()[:, :, a:b].repeat_interleave(2, dim=1)
        scores = (qq @ kk.transpose(-1, -2)) * 0.3
        scores = scores.masked_fill(torch.ones(b - a, b - a).triu(1).bool(), float("-inf"))
        ref = (scores.softmax(-1) @ vv).transpose(1, 2)
        torch.testing.assert_close(out.detach()[:, a:b], ref, rtol=1e-5, atol=1e-6)
    # no gradient crosses an example: a query of the second example has no say on the first one's keys
    q2 = q.detach().clone().requires_grad_(True)
    out2, _ = sft_fast.varlen_sdpa(Attn(), q2, k.detach(), v.detach(), None, scaling=0.3, cu_seq_lens_q=bounds)
    out2[:, 5:14].sum().backward()
    assert q2.grad[:, :, :5].abs().sum() == 0 and q2.grad[:, :, 14:].abs().sum() == 0


def test_padding_free_is_a_hashed_when_set_training_key(tmp_path, tiny):
    plain, fast = _cfg(tmp_path, tiny), _cfg(tmp_path, tiny, "training.padding_free=true")
    assert "padding_free" not in config.to_dict(plain)["training"]  # at its default: no stage hash moves
    assert training.train_stage(plain).hash != training.train_stage(fast).hash  # set: a different stage


def test_over_long_examples_and_lora_fall_back_to_the_padded_trainer(tmp_path, tiny):
    exs = _examples(4)
    short = _cfg(tmp_path, tiny, "training.max_length=32", "training.padding_free=true")
    assert not sft_fast.fits_max_length(exs, training.load_critic(short)[1], 32)
    trainer, _ = training.make_trainer(short, training.train_stage(short), exs)
    assert not trainer.args.padding_free and trainer.args.max_length == 32
    lora = _cfg(tmp_path, tiny, "training.use_lora=true", "training.padding_free=true")
    trainer, _ = training.make_trainer(lora, training.train_stage(lora), exs)
    assert not trainer.args.padding_free


def test_the_unfused_loss_trains_the_fused_head_s_losses_and_weights(tmp_path, tiny):
    """training.fused_lm_head=false: the loss from the model's logits, the same curve as TRL's fused head."""
    exs = _examples(12)
    fused_cfg = _cfg(tmp_path, tiny, "training.padding_free=true")
    fused, _ = training.make_trainer(fused_cfg, training.train_stage(fused_cfg), exs)
    cfg = _cfg(tmp_path, tiny, "training.padding_free=true", "training.fused_lm_head=false")
    plain, _ = training.make_trainer(cfg, training.train_stage(cfg), exs)
    assert type(plain).__name__ == "UnfusedLossSFTTrainer" and type(fused).__name__ == "SFTTrainer"
    lf, wf = _train(fused)
    lp, wp = _train(plain)
    assert lp == pytest.approx(lf, rel=1e-5, abs=1e-6) and len(lp) == 3
    for k in wf:
        torch.testing.assert_close(wp[k], wf[k], rtol=1e-4, atol=1e-6)
    logged = [r for r in plain.state.log_history if "loss" in r]
    assert all(0 < r["mean_token_accuracy"] <= 1 and r["entropy"] > 0 for r in logged)
    assert [r["num_tokens"] for r in logged] == [r["num_tokens"] for r in fused.state.log_history if "loss" in r]
    # hashed when set: the default leaves every stage key as it was
    assert "fused_lm_head" not in config.to_dict(config.load("configs/smoke.yaml"))["training"]
    assert training.train_stage(cfg).hash != training.train_stage(fused_cfg).hash

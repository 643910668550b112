"""``scripts/gpu_check.py --device``: what a one-GPU machine with torch preinstalled can check without vLLM.

Made for a machine that has torch and a CUDA GPU, reaches no package registry and takes at most 64 MiB of
carried files: vLLM's wheel (336 MB) cannot get there, the transformers/TRL/PEFT stack can (see
``--print-wheels``). In under 8 minutes, offline, it runs

1. ``generation``: the study's transformers backend (batched, its KV cache) on CUDA against Hugging Face's
   own ``generate`` one prompt at a time (no padding), greedy, on the committed v2 critic ``models/toy-409k``:
   float32 (TF32 off) texts must all be equal; bf16 texts at least 90% equal (bf16 numerics differ between
   a padded batch and a lone prompt, so a near-tie may flip); then bf16 tokens/s of both on a random-weight
   model of Qwen2.5-0.5B's shape (config only, nothing downloaded), peak memory of each;
2. ``lora_sft``: LoRA SFT steps through the study's own TRL + PEFT set-up (``pipeline.training.sft_config``,
   ``lora_config`` and ``to_dataset`` on ``configs/qwen2.5-1.5b.yaml``: r 64, all linear layers, bf16,
   gradient checkpointing) on the random Qwen2.5-0.5B-shaped model: finite losses, LoRA weights moved, base
   weights untouched, tokens/s over the steady steps and peak memory.

The JSON report (``--json-out``) has every number. Without a CUDA device it stops at once with exit status 2
and says so. ``--print-wheels`` lists the wheels such a machine lacks, their sizes and how to carry them: 18
(36.5 MiB) run everything with LoRA through PEFT; TRL's SFTTrainer needs 9 more (67 MiB: pyarrow alone is
52.5 MiB), so it runs only where pyarrow and pandas are installed already.
"""
from __future__ import annotations

import importlib.metadata as md
import math
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from gpu_check import check_requests, hf_greedy_ids, timed  # noqa: E402

TOY_CRITIC = REPO / "models" / "toy-409k"  # the v2 study's critic
TOKENIZER = REPO / "models" / "tokenizer"
PROFILE = REPO / "configs" / "qwen2.5-1.5b.yaml"  # the one-GPU LoRA profile: its training settings
# Qwen2.5-0.5B's config.json sizes (494M parameters, tied embeddings); weights are random, nothing is fetched
QWEN25_05B = dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                  num_key_value_heads=2, vocab_size=151936, max_position_embeddings=32768, rope_theta=1000000.0,
                  rms_norm_eps=1e-6, tie_word_embeddings=True)
CARRY_LIMIT = 64 * 2**20  # what such a machine takes in one transfer, the working tree included
# What the check imports beyond torch, at the project's pins: (distribution, version, wheel bytes, group).
# Found by running both stages in a venv holding only torch 2.13.0 plus these wheels (pip install --no-deps):
# "core" runs everything, LoRA through PEFT; "trl" adds what TRL's SFTTrainer imports (datasets -> pyarrow,
# pandas). Sizes of the Linux x86-64 / CPython 3.11 wheels as the registry served them (pip download, 2026-12-07).
# The other packages these declare (pydantic, rich, typer, hf-xet, ...) are not imported by the check.
WHEELS: tuple[tuple[str, str, int, str], ...] = (
    ("numpy", "2.4.6", 16918164, "core"), ("transformers", "5.20.2", 12844921, "core"),
    ("tokenizers", "0.23.3", 3396193, "core"), ("huggingface-hub", "2.4.0", 857021, "core"),
    ("peft", "0.21.2", 835427, "core"), ("pyyaml", "6.0.4", 828016, "core"), ("regex", "2026.12.2", 814336, "core"),
    ("safetensors", "0.8.0", 516040, "core"), ("accelerate", "1.15.0", 394295, "core"),
    ("psutil", "7.2.2", 155560, "core"), ("packaging", "26.4", 140049, "core"), ("anyio", "4.16.0", 134521, "core"),
    ("httpx2", "2.17.0", 100259, "core"), ("httpcore2", "2.17.0", 86100, "core"), ("tqdm", "4.70.1", 80199, "core"),
    ("idna", "3.21", 69750, "core"), ("h11", "0.16.0", 37515, "core"), ("truststore", "0.10.5", 19017, "core"),
    ("pyarrow", "26.0.1", 55016622, "trl"), ("pandas", "3.1.1", 12356904, "trl"), ("trl", "1.16.0", 948205, "trl"),
    ("datasets", "5.2.0", 608276, "trl"), ("xxhash", "4.1.0", 471448, "trl"), ("tzdata", "2026.6", 348210, "trl"),
    ("multiprocess", "0.70.19", 144457, "trl"), ("dill", "0.4.1", 120019, "trl"),
    ("python-dateutil", "4.0.0", 92853, "trl"),
)


def missing_wheels() -> list[tuple[str, str, int, str]]:
    """The table's wheels not installed here (a torch-only machine lacks all of them)."""
    out = []
    for w in WHEELS:
        try:
            md.distribution(w[0])
        except md.PackageNotFoundError:
            out.append(w)
    return out


def tree_bytes() -> int | None:
    """Bytes of the working tree that travels with carried files (tracked + untracked, not ignored)."""
    import subprocess

    try:
        names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                               capture_output=True, check=True, timeout=30).stdout.split(b"\0")
    except (OSError, subprocess.SubprocessError):
        return None
    return sum((REPO / n.decode()).stat().st_size for n in names if n and (REPO / n.decode()).is_file())


def print_wheels() -> None:
    mib = 2**20
    tree = tree_bytes()
    room = CARRY_LIMIT - (tree or 0)
    print(f"gpu_check --device needs, beyond torch ({CARRY_LIMIT // mib} MiB per transfer; working tree "
          f"{'unknown' if tree is None else f'{tree / mib:.1f} MiB'}, so {room / mib:.1f} MiB left for wheels):")
    for group, what in (("core", "generation + LoRA through PEFT"), ("trl", "TRL's SFTTrainer on top")):
        ws = [w for w in WHEELS if w[3] == group]
        size = sum(w[2] for w in ws)
        print(f"{group} ({what}): {len(ws)} wheels, {size / mib:.1f} MiB")
        for name, version, nbytes, _ in ws:
            print(f"  {name}=={version}  {nbytes / mib:6.2f} MiB")
    core = sum(w[2] for w in WHEELS if w[3] == "core")
    numpy = next(w[2] for w in WHEELS if w[0] == "numpy")
    print(f"core fits one transfer: {core <= room} ({core / mib:.1f} MiB; {(core - numpy) / mib:.1f} MiB where numpy "
          f"is installed). trl needs pyarrow ({55016622 / mib:.1f} MiB) alone: it runs only where pyarrow and pandas "
          "are installed already; elsewhere the check uses the PEFT loop.")
    plat = " ".join(f"--platform {p}" for p in ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64",
                                                "manylinux2014_x86_64", "manylinux_2_12_x86_64"))
    plan = transfers([w for w in WHEELS if w[3] == "core"], room)
    if plan is None:
        print(f"no plan: the working tree leaves {room / mib:.1f} MiB, less than the largest core wheel")
        return
    for k, ws in enumerate(plan, 1):
        pins = " ".join(f"{n}=={v}" for n, v, _, _ in ws)
        print(f"transfer {k} of {len(plan)} ({sum(w[2] for w in ws) / mib:.1f} MiB): pip download --no-deps "
              f"--only-binary=:all: --python-version 3.11 {plat} -d wheels-{k} {pins}")
    # .gpu-deps/ is ignored by git, so the machine keeps it between calls; each call carries one wheels-<k>/ dir
    for k in range(1, len(plan) + 1):
        last = k == len(plan)
        print(f"on the GPU machine, call {k} (carry wheels-{k}): pip install --no-index --no-deps --target .gpu-deps "
              f"wheels-{k}/*.whl" + (" && PYTHONPATH=.gpu-deps python scripts/gpu_check.py --device --json-out "
                                     "gpu_device.json" if last else ""))


def transfers(wheels: list, room: int) -> list[list] | None:
    """The wheels packed into as few transfers of at most ``room`` bytes as first-fit by size finds (largest
    first); None when one wheel alone does not fit."""
    bins: list[list] = []
    for w in sorted(wheels, key=lambda w: -w[2]):
        if w[2] > room:
            return None
        for b in bins:
            if sum(x[2] for x in b) + w[2] <= room:
                b.append(w)
                break
        else:
            bins.append([w])
    return bins


def _peak_mib(torch, device) -> float:
    return round(torch.cuda.max_memory_allocated() / 2**20, 1) if device.type == "cuda" else 0.0


def _reset_peak(torch, device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def random_qwen(shape: dict, device, dtype, seed: int = 0):
    """A random-weight Qwen2 with ``shape`` (Qwen2.5-0.5B's by default), built on ``device``."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    with torch.device(device):
        model = Qwen2ForCausalLM(Qwen2Config(**shape)).to(dtype)
    return model


def _compare(torch, device, backend, hf_model, tok, reqs, max_new: int) -> dict:
    """Backend (batched, KV cache) vs HF ``generate`` one prompt at a time: equal texts, tokens/s, peak MiB."""
    from scrit_utils.generation import SamplingParams

    params = SamplingParams(max_new_tokens=max_new)
    backend.generate(reqs[:2], params, progress=False)  # warm-up: CUDA context, kernels
    _reset_peak(torch, device)
    texts, be_s = timed(backend.generate, reqs, params, progress=False)
    be_peak = _peak_mib(torch, device)
    prompt_ids = backend.encode(reqs)
    _reset_peak(torch, device)
    ref_ids, hf_s = timed(hf_greedy_ids, hf_model, tok, prompt_ids, max_new, set(backend.eos_ids))
    hf_peak = _peak_mib(torch, device)
    ref = [tok.decode(g, skip_special_tokens=True) for g in ref_ids]
    n_tok = sum(len(g) for g in ref_ids)
    return {"requests": len(reqs), "max_new_tokens": max_new, "generated_tokens": n_tok,
            "equal": sum(a == b for a, b in zip(texts, ref)), "backend_s": be_s, "hf_generate_s": hf_s,
            "backend_tokens_per_s": round(n_tok / max(be_s, 1e-9), 1),
            "hf_generate_tokens_per_s": round(n_tok / max(hf_s, 1e-9), 1),
            "backend_peak_mib": be_peak, "hf_generate_peak_mib": hf_peak}


def generation_stage(report: dict, device: str = "cuda", n: int = 32, max_new: int = 48,
                     big_shape: dict | None = None, big_n: int = 16, big_max_new: int = 64) -> bool:
    import torch

    from scrit_utils.generation.transformers_backend import TransformersBackend, load_tokenizer

    dev = torch.device(device)
    reqs = check_requests(n)
    out = report["generation"] = {"model": str(TOY_CRITIC.relative_to(REPO)), "device": device}
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # the float32 comparison is exact, not TF32
        torch.backends.cudnn.allow_tf32 = False
    for dtype in ("float32", "bfloat16"):
        be = TransformersBackend(str(TOY_CRITIC), device=device, dtype=dtype, batch_size=n)
        out[dtype] = _compare(torch, dev, be, be.model, be.tokenizer, reqs, max_new)
        del be
    tok = load_tokenizer(TOKENIZER)
    shape = big_shape or QWEN25_05B
    t0 = time.perf_counter()
    big = random_qwen(shape, dev, torch.bfloat16).eval()
    out["qwen2.5-0.5b_shape"] = {"params": sum(p.numel() for p in big.parameters()),
                                 "build_s": round(time.perf_counter() - t0, 2), "dtype": "bfloat16",
                                 **_compare(torch, dev, TransformersBackend.from_objects(big, tok, batch_size=big_n),
                                            big, tok, check_requests(big_n, seed=1), big_max_new)}
    del big
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    f32, b16 = out["float32"], out["bfloat16"]
    return f32["equal"] == n and b16["equal"] >= 0.9 * n


def _sft_examples(n: int, target_tokens: int, tok) -> list:
    """``n`` toy critique prompts with a completion of about ``target_tokens`` tokens each."""
    from scrit_utils.core.records import SFTExample

    out = []
    for r in check_requests(n, seed=2):
        line = "Step 1 is correct. The arithmetic checks out, so the verdict stands. "
        per = max(1, len(tok(line, add_special_tokens=False)["input_ids"]))
        out.append(SFTExample(r.id, list(r.messages), line * max(1, target_tokens // per) + "Conclusion: correct",
                              label_correct=True))
    return out


def _trl_importable() -> str | None:
    """None when TRL (and datasets, pyarrow, pandas under it) imports; else why not."""
    try:
        import trl  # noqa: F401
        from trl import SFTTrainer  # noqa: F401 - imports datasets -> pyarrow, pandas
    except ImportError as e:
        return f"{type(e).__name__}: {e}"
    return None


def _peft_steps(model, tok, cfg, examples, steps: int, batch: int, seq_len: int, dev, on_step) -> tuple:
    """Where TRL cannot be imported: the same LoRA adapters (``training.lora_config``) through PEFT and a plain
    loop: AdamW at the profile's rate, loss on the completion tokens only, as TRL's completion_only_loss."""
    import torch
    from peft import get_peft_model

    from scrit_utils.critique import prompts
    from scrit_utils.pipeline import training

    if cfg.training.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    pm = get_peft_model(model, training.lora_config(cfg))
    opt = torch.optim.AdamW([p for p in pm.parameters() if p.requires_grad], lr=cfg.training.learning_rate)
    rows = []
    for ex in examples:
        p = tok(prompts.render_chat(tok, ex.prompt), add_special_tokens=False)["input_ids"]
        c = tok(ex.completion, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        p = p[-max(seq_len - len(c), seq_len // 2):]  # a long prompt keeps its end: the loss needs completion tokens
        ids = (p + c)[:seq_len]
        rows.append((ids, ([-100] * len(p) + c)[:seq_len]))
    losses, lens = [], []
    pm.train()
    for step in range(steps):
        chunk = rows[step * batch:(step + 1) * batch]
        width = max(len(i) for i, _ in chunk)
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        ids = torch.tensor([i + [pad] * (width - len(i)) for i, _ in chunk], device=dev)
        labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in chunk], device=dev)
        mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i, _ in chunk], device=dev)
        loss = pm(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(pm.parameters(), cfg.training.max_grad_norm)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.detach().item())
        lens += [len(i) for i, _ in chunk]
        on_step()
    return pm, losses, lens


def sft_stage(report: dict, workdir: Path, device: str = "cuda", steps: int = 20, batch: int = 8,
              seq_len: int = 512, shape: dict | None = None, bf16: bool = True, use_trl: bool | None = None) -> bool:
    """LoRA SFT steps with the study's TRL + PEFT settings on a random model of Qwen2.5-0.5B's shape (TRL's
    SFTTrainer where it imports, else PEFT with a plain loop: see :func:`_peft_steps`)."""
    import torch

    from scrit_utils.core import config as _config
    from scrit_utils.generation.transformers_backend import load_tokenizer
    from scrit_utils.pipeline import training

    dev = torch.device(device)
    no_trl = _trl_importable() if use_trl is None else None
    use_trl = no_trl is None if use_trl is None else use_trl
    cfg = _config.load(PROFILE, overrides={
        "training.max_steps": steps, "training.per_device_train_batch_size": batch,
        "training.gradient_accumulation_steps": 1, "training.logging_steps": 1, "training.max_length": seq_len,
        "training.bf16": bf16, "training.warmup_ratio": 0.0})
    tok = load_tokenizer(TOKENIZER)
    model = random_qwen(shape or QWEN25_05B, dev, torch.bfloat16 if bf16 else torch.float32)
    examples = _sft_examples(steps * batch, seq_len, tok)
    stamps: list[float] = []

    def clock():
        if dev.type == "cuda":
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    _reset_peak(torch, dev)
    t0 = time.perf_counter()
    if use_trl:
        from transformers import TrainerCallback
        from trl import SFTTrainer

        class StepClock(TrainerCallback):
            def on_step_end(self, args, state, control, **kw):
                clock()

        trainer = SFTTrainer(model=model, args=training.sft_config(cfg, workdir / "sft"),
                             train_dataset=training.to_dataset(examples), processing_class=tok,
                             peft_config=training.lora_config(cfg), callbacks=[StepClock()])
        pm = trainer.model
        named = dict(pm.named_parameters())
        base_name = next(k for k in named if "q_proj.base_layer.weight" in k)
        lora_name = next(k for k in named if "q_proj.lora_B" in k)
        base0, lora0 = named[base_name].detach().clone(), named[lora_name].detach().clone()
        _reset_peak(torch, dev)
        t0 = time.perf_counter()
        trainer.train()
        losses = [r["loss"] for r in trainer.state.log_history if "loss" in r]
        lens = [min(len(x), seq_len) for x in trainer.train_dataset["input_ids"]]
        done = int(trainer.state.global_step)
    else:
        base0 = model.model.layers[0].self_attn.q_proj.weight.detach().clone()
        pm, losses, lens = _peft_steps(model, tok, cfg, examples, steps, batch, seq_len, dev, clock)
        named = dict(pm.named_parameters())
        base_name = next(k for k in named if "q_proj.base_layer.weight" in k)
        lora_name = next(k for k in named if "q_proj.lora_B" in k)
        lora0 = torch.zeros_like(named[lora_name])  # PEFT starts LoRA B at zero
        done = len(losses)
    wall = time.perf_counter() - t0
    step_s = [b - a for a, b in zip(stamps, stamps[1:])]  # steady steps: the first (warm-up) is left out
    steady = sorted(step_s)[len(step_s) // 2] if step_s else wall / max(steps, 1)
    trainable = sum(p.numel() for p in pm.parameters() if p.requires_grad)
    total = sum(p.numel() for p in pm.parameters())
    only_lora = all("lora_" in n for n, p in pm.named_parameters() if p.requires_grad)
    mean_len = sum(lens) / len(lens)
    r = report["lora_sft"] = {
        "trainer": "trl.SFTTrainer" if use_trl else f"peft + plain loop (TRL not used: {no_trl or 'asked'})",
        "model": "random Qwen2.5-0.5B shape" if shape is None else f"random Qwen2 {shape}", "device": device,
        "profile": str(PROFILE.relative_to(REPO)), "lora_r": cfg.training.lora.r, "bf16": bf16,
        "gradient_checkpointing": cfg.training.gradient_checkpointing, "steps": done, "batch": batch,
        "mean_tokens_per_example": round(mean_len, 1), "train_s": round(wall, 2), "median_step_s": round(steady, 4),
        "tokens_per_s": round(batch * mean_len / steady, 1), "peak_mib": _peak_mib(torch, dev),
        "trainable_params": trainable, "total_params": total, "only_lora_trainable": only_lora,
        "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
        "base_weights_unchanged": bool(torch.equal(base0, named[base_name].detach())),
        "lora_weights_moved": not bool(torch.equal(lora0, named[lora_name].detach())),
    }
    del pm, model
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return (r["steps"] == steps and bool(losses) and all(math.isfinite(x) for x in losses)
            and r["base_weights_unchanged"] and r["lora_weights_moved"] and only_lora)


def run(args, report: dict, stage) -> bool:
    """The ``--device`` checks (``stage`` is gpu_check's exception-recording runner); needs CUDA."""
    import torch

    report.update(gpu=torch.cuda.get_device_name(0), cuda_version=torch.version.cuda,
                  wheels_missing=[f"{n}=={v}" for n, v, _, _ in missing_wheels()])
    ok = stage(report, "generation", generation_stage, report, "cuda", args.n, args.max_new_tokens)
    ok &= stage(report, "lora_sft", sft_stage, report, Path(args.workdir), "cuda", args.sft_steps)
    return ok

#!/usr/bin/env python
"""SFT of the critic on a self-training set, launched with ``accelerate`` (one or many processes).

A thin launcher over TRL's ``SFTTrainer`` that reuses the study's own training pieces
(:mod:`scrit_utils.pipeline.training`: dataset format, ``SFTConfig`` from the profile's
``training`` section, LoRA config, critic loading), so a multi-GPU run trains exactly what
notebook 04 trains on one device. What this script adds is multi-process care: only the main
process writes files, and the model is saved through ``trainer.save_model`` (which gathers
ZeRO-3 shards / FSDP state before writing safetensors).

Usage (the global batch is per_device_train_batch_size x gradient_accumulation_steps x processes)::

    # 8 GPUs, full fine-tune, DeepSpeed ZeRO-3
    accelerate launch --config_file configs/accelerate/deepspeed_zero3.yaml --num_processes 8 \\
        scripts/train_sft.py --profile configs/qwen2.5-7b.yaml --data artifacts/03_self_validation/<hash>/sft.jsonl \\
        --output-dir runs/qwen7b-scrit --set training.use_lora=false
    # CPU, 2 processes over gloo (what the test runs)
    accelerate launch --config_file configs/accelerate/cpu_2proc.yaml scripts/train_sft.py \\
        --profile configs/smoke.yaml --data sft.jsonl --output-dir /tmp/out --set training.max_steps=2

Writes ``<output-dir>/model`` (HF model dir: config, safetensors, tokenizer; with LoRA the merged
model, plus ``<output-dir>/adapter``) and ``<output-dir>/train_summary.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path


def parse_args(argv=None) -> argparse.Namespace:
    from scrit_utils.core.cli_args import OneLineParser, add_set_option

    doc = __doc__.split("\n\n")
    ap = OneLineParser(prog="train_sft.py", description=doc[0], epilog="\n\n".join(doc[1:]))
    ap.add_argument("--profile", required=True, metavar="YAML",
                    help="profile YAML: its training section and models.critic are used, e.g. configs/qwen2.5-7b.yaml")
    ap.add_argument("--data", required=True, metavar="JSONL",
                    help="SFT JSONL of SFTExample records (stage 03's artifacts/03_self_validation/<hash>/sft.jsonl)")
    ap.add_argument("--output-dir", required=True, metavar="DIR",
                    help="where model/ (and adapter/ with LoRA) and train_summary.json are written")
    ap.add_argument("--model", default=None, help="start from this model dir / hub id instead of models.critic")
    add_set_option(ap)  # --set a=1 b=2 or --set a=1 --set b=2, as in `scrit run`
    ap.add_argument("--max-examples", type=int, default=None, metavar="N", help="use only the first N examples")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from scrit_utils.core import config
    from scrit_utils.core.cli_args import fail

    overrides = list(args.overrides)
    if args.model:
        overrides.append(f"models.critic={args.model}")
    try:
        cfg = config.load(args.profile, overrides)
    except config.ConfigError as e:  # a bad profile or --set: one line, before torch and TRL are imported
        return fail("train_sft.py", e)

    import torch
    from trl import SFTTrainer

    from scrit_utils.pipeline import training
    from scrit_utils.core.records import SFTExample, read_jsonl, write_json

    threads = int(os.environ.get("OMP_NUM_THREADS", "0") or 0) or cfg.run.torch_threads
    if threads > 0 and not torch.cuda.is_available():
        torch.set_num_threads(threads)

    examples = read_jsonl(args.data, SFTExample)
    if args.max_examples is not None:
        examples = examples[: args.max_examples]
    if not examples:
        raise SystemExit(f"{args.data}: no SFT examples")

    out = Path(args.output_dir)
    model, tok = training.load_critic(cfg)
    sft_args = training.sft_config(cfg, out / "trainer")
    peft_cfg = training.lora_config(cfg) if cfg.training.use_lora else None
    trainer = SFTTrainer(model=model, args=sft_args, train_dataset=training.to_dataset(examples),
                         processing_class=tok, peft_config=peft_cfg)
    state = trainer.accelerator.state
    is_main = trainer.accelerator.is_main_process
    world = state.num_processes
    global_batch = cfg.training.per_device_train_batch_size * cfg.training.gradient_accumulation_steps * world
    if is_main:
        print(f"[train_sft] {world} process(es), {state.distributed_type}, global batch {global_batch}, "
              f"{len(examples)} examples, model {cfg.models.critic}", flush=True)

    t0 = time.time()
    result = trainer.train()
    wall = time.time() - t0

    if cfg.training.use_lora:
        trainer.save_model(str(out / "adapter"))  # adapter weights (gathered under ZeRO-3)
        if is_main:
            tok.save_pretrained(out / "adapter")
            if cfg.training.save_merged:
                merged = trainer.model.merge_and_unload() if hasattr(trainer.model, "merge_and_unload") else trainer.model
                merged.save_pretrained(out / "model", safe_serialization=True)
    else:
        trainer.save_model(str(out / "model"))  # full weights, safetensors; main process writes
    trainer.accelerator.wait_for_everyone()
    if is_main:
        model_dir = out / "model"
        if model_dir.exists():
            tok.save_pretrained(model_dir)
            gen_cfg = Path(config.model_ref(cfg.models.critic)) / "generation_config.json"
            if gen_cfg.exists() and not (model_dir / "generation_config.json").exists():
                shutil.copy(gen_cfg, model_dir / "generation_config.json")
        shutil.rmtree(out / "trainer", ignore_errors=True)
        losses = [r["loss"] for r in trainer.state.log_history if "loss" in r]
        write_json(out / "train_summary.json", {
            "profile": cfg.run.name, "model": cfg.models.critic, "examples": len(examples),
            "processes": world, "distributed_type": str(state.distributed_type),
            "global_batch": global_batch, "steps": int(trainer.state.global_step),
            "train_loss": float(result.training_loss), "logged_losses": losses,
            "train_seconds": round(wall, 2), "use_lora": cfg.training.use_lora,
        })
        print(json.dumps({"steps": int(trainer.state.global_step), "train_loss": float(result.training_loss),
                          "seconds": round(wall, 2)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

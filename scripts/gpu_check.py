#!/usr/bin/env python
"""GPU readiness check: the vLLM backend against the transformers backend (greedy, same prompts), timed.

Runs offline (nothing is downloaded) in well under 8 minutes on one GPU and writes a JSON report.

The model. vLLM's attention backends accept only some head sizes: its FlashAttention backend lists
32, 64, 96, 128, 160, 192, 224, 256 (fp16/bf16 only), FlashInfer 64, 128, 256, and on Hopper GPUs
vLLM picks FlashAttention 3. The committed toy models have head sizes 16, 20, 24 and 32
(hidden / 4 heads), so none is safe on every backend. The check therefore builds a random-weight
Qwen2 with head size 64 (hidden 128, 2 query heads, 1 KV head: grouped-query attention like
Qwen2.5) on the committed toy tokenizer and chat template (``models/tokenizer``), and asks the v2
study's critic toy-409k (head size 24) separately whether vLLM accepts it (informational; the study's
toy profile uses the transformers backend). Prompts are the toy world's compact critique prompts.

What is checked (GPU run):

1. the transformers backend on the GPU, greedy, float16: texts and time;
2. vLLM (``VLLMBackend``, float16, eager) on the same requests: engine start, texts and time;
   texts equal to (1) for at least 90% of the requests, and every vLLM token is the transformers
   model's own greedy choice up to ``--tie-tol`` logits (teacher-forced: a differing text is then a
   near-tie broken differently by other kernels, not a bug);
3. sampled vLLM texts do not depend on request order (per-request seeds) and differ from greedy;
4. toy-409k: whether vLLM starts on it, and if so how many greedy texts equal the transformers ones;
5. with ``--qwen PATH`` (local Qwen2.5 weights): our wrapper vs bare ``LLM.generate`` throughput.

``--cpu-only`` (no GPU, no vLLM; run by the tests): builds the check model, checks its head size,
runs the transformers backend on CPU (float32) and checks its greedy texts against Hugging Face's
own ``generate`` one prompt at a time, that they do not depend on batch order, and the teacher-forced
greedy check on them (0 gap) and on a corrupted copy (flagged).

    python scripts/gpu_check.py --json-out gpu_check.json                      # GPU machine
    python scripts/gpu_check.py --qwen /models/Qwen2.5-1.5B-Instruct --json-out gpu_check.json
    python scripts/gpu_check.py --cpu-only --n 16 --json-out /tmp/gpu_check_cpu.json
    python scripts/gpu_check.py --device --json-out gpu_device.json            # one GPU, torch, no vLLM
    python scripts/gpu_check.py --print-wheels                                 # what --device needs beyond torch

``--device`` (``scripts/gpu_device_check.py``) is the check for a machine with torch and one GPU but no vLLM
and no registry: the transformers backend on CUDA against Hugging Face ``generate`` and LoRA SFT steps with
TRL + PEFT on a random-weight model of Qwen2.5-0.5B's shape, with tokens/s and peak memory.

Exit status: 0 all checks passed, 1 a check failed, 2 nothing could run (no CUDA device / no vLLM).
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# head sizes every vLLM CUDA attention backend accepts (FlashAttention 2/3, FlashInfer, Triton, Flex)
VLLM_SAFE_HEAD_SIZES = (64, 128, 256)
CHECK_MODEL_SHAPE = {"hidden_size": 128, "num_attention_heads": 2, "num_key_value_heads": 1,
                     "num_hidden_layers": 2, "intermediate_size": 256}
TOY_MODEL = REPO / "models" / "toy-409k"  # the v2 study's critic
TOY_STAGE_DEADLINE_S = 300  # the toy-model stage (one more engine start) only when this much is left of 8 min


def build_check_model(out: Path, seed: int = 0) -> Path:
    """A random-weight Qwen2 (head size 64) on the committed toy tokenizer, saved like any checkpoint."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    from scrit_utils.generation.transformers_backend import load_tokenizer

    tok_dir = REPO / "models" / "tokenizer"
    tok = load_tokenizer(tok_dir)
    cfg = Qwen2Config(vocab_size=len(tok), max_position_embeddings=1024, tie_word_embeddings=False,
                      initializer_range=0.5,  # a wide init: texts differ between prompts, few near-ties
                      bos_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                      **CHECK_MODEL_SHAPE)
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(cfg)
    model.generation_config = GenerationConfig(eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                                               do_sample=False)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    for f in tok_dir.iterdir():  # the committed tokenizer files as they are (a custom tokenizer.json)
        shutil.copy(f, out / f.name)
    return out


def head_size(model_dir: Path) -> int:
    cfg = json.loads((model_dir / "config.json").read_text())
    return int(cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"])


def check_requests(n: int, seed: int = 0) -> list:
    """``n`` toy-world critique requests (compact prompts), half of them on a wrong solution."""
    from scrit_utils.critique import prompts
    from scrit_utils.generation import GenerationRequest, derive_seed
    from scrit_utils.worlds import arith

    rng = random.Random(seed)
    reqs = []
    for i, p in enumerate(arith.generate_problems(seed, n, "benchmark", stream="gpu_check")):
        sol = arith.reference_solution(p) if i % 2 == 0 else arith.inject_error(p, rng)
        reqs.append(GenerationRequest(f"q{i}", arith.direct_messages(p, prompts.format_solution(sol.steps)),
                                      seed=derive_seed(seed, "gpu_check", f"q{i}", 0)))
    return reqs


def timed(fn, *args, **kw):
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return out, round(time.perf_counter() - t0, 3)


def greedy_gaps(model, prompt_ids: list[list[int]], gen_ids: list[list[int]]) -> list[float]:
    """Teacher-forced: per request, the largest (max logit - logit of the generated token) over its
    generated tokens under ``model``. 0 means every token was the model's own greedy choice."""
    import torch

    dev = next(model.parameters()).device
    gaps = []
    with torch.no_grad():
        for p, g in zip(prompt_ids, gen_ids):
            if not g:
                gaps.append(0.0)
                continue
            ids = torch.tensor([list(p) + list(g)], device=dev)
            logits = model(input_ids=ids).logits[0, len(p) - 1:len(p) - 1 + len(g)].float()
            chosen = logits.gather(1, torch.tensor(g, device=dev).unsqueeze(1)).squeeze(1)
            gaps.append(float((logits.max(dim=1).values - chosen).max()))
    return gaps


def hf_greedy_ids(model, tok, prompt_ids: list[list[int]], max_new_tokens: int, eos: set[int]) -> list[list[int]]:
    """Hugging Face's own greedy ``generate``, one prompt at a time (no padding): the reference."""
    import torch

    dev = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for p in prompt_ids:
            ids = torch.tensor([p], device=dev)
            seq = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                 do_sample=False, eos_token_id=sorted(eos), pad_token_id=tok.pad_token_id)
            gen = seq[0, len(p):].tolist()
            while gen and gen[-1] in eos:
                gen.pop()
            out.append(gen)
    return out


def cpu_part(workdir: Path, n: int, max_new: int, tie_tol: float, report: dict) -> bool:
    """The checks that need no GPU: check model, transformers backend vs HF generate, gap check."""
    from scrit_utils.generation import SamplingParams
    from scrit_utils.generation.transformers_backend import TransformersBackend

    path = build_check_model(workdir / "check-model")
    hs = head_size(path)
    reqs = check_requests(n)
    be = TransformersBackend(str(path), device="cpu", dtype="float32", batch_size=n)
    params = SamplingParams(max_new_tokens=max_new)
    texts, secs = timed(be.generate, reqs, params, progress=False)
    rev = be.generate(list(reversed(reqs)), params, progress=False)[::-1]
    prompt_ids = be.encode(reqs)
    ref_ids = hf_greedy_ids(be.model, be.tokenizer, prompt_ids, max_new, set(be.eos_ids))
    ref_texts = [be.tokenizer.decode(g, skip_special_tokens=True) for g in ref_ids]
    gaps = greedy_gaps(be.model, prompt_ids, ref_ids)
    corrupt = [g[:1] + [(g[1] + 1) % len(be.tokenizer)] + g[2:] if len(g) > 1 else g for g in ref_ids]
    corrupt_gaps = greedy_gaps(be.model, prompt_ids, corrupt)
    n_params = sum(p.numel() for p in be.model.parameters())
    report["check_model"] = {"path": str(path), "head_size": hs, "params": n_params, **CHECK_MODEL_SHAPE,
                             "tokenizer": "models/tokenizer", "vllm_safe_head_size": hs in VLLM_SAFE_HEAD_SIZES}
    report["cpu"] = {
        "requests": n, "max_new_tokens": max_new, "transformers_s": secs,
        "equal_to_hf_generate": f"{sum(a == b for a, b in zip(texts, ref_texts))}/{n}",
        "batch_order_independent": texts == rev, "distinct_texts": len(set(texts)),
        "max_greedy_gap": max(gaps), "corrupted_flagged": sum(c > tie_tol for c in corrupt_gaps),
    }
    c = report["cpu"]
    return (hs in VLLM_SAFE_HEAD_SIZES and texts == ref_texts and c["batch_order_independent"]
            and c["distinct_texts"] > 1 and c["max_greedy_gap"] <= 1e-4
            and c["corrupted_flagged"] == sum(len(g) > 1 for g in ref_ids))


def vllm_vs_transformers(path: Path, n: int, max_new: int, tie_tol: float, report: dict) -> bool:
    """Greedy texts of VLLMBackend vs TransformersBackend on one GPU (float16), timed; sampled order check."""
    import torch
    import vllm

    from scrit_utils.generation import SamplingParams
    from scrit_utils.generation.transformers_backend import TransformersBackend
    from scrit_utils.generation.vllm_backend import VLLMBackend, sampling_kwargs

    reqs = check_requests(n)
    greedy = SamplingParams(max_new_tokens=max_new)
    tf = TransformersBackend(str(path), device="cuda", dtype="float16", batch_size=n)
    tf.generate(reqs[:4], greedy, progress=False)  # warm-up (CUDA context, kernels)
    tf_texts, tf_s = timed(tf.generate, reqs, greedy, progress=False)
    be, start_s = timed(VLLMBackend, str(path), dtype="float16", gpu_memory_utilization=0.25, enforce_eager=True,
                        max_model_len=1024)
    be.generate(reqs[:4], greedy, progress=False)
    v_texts, v_s = timed(be.generate, reqs, greedy, progress=False)
    prompt_ids = be.encode(reqs)
    outs = be.llm.generate([{"prompt_token_ids": x} for x in prompt_ids],
                           vllm.SamplingParams(**sampling_kwargs(greedy, 0)), use_tqdm=False)
    v_ids = [list(o.outputs[0].token_ids) for o in outs]  # the end-of-text token too: it is a greedy choice
    gaps = greedy_gaps(tf.model, prompt_ids, v_ids)
    sampled = SamplingParams(max_new_tokens=max_new, temperature=1.0, top_p=0.95)
    s1 = be.generate(reqs, sampled, progress=False)
    s2 = be.generate(list(reversed(reqs)), sampled, progress=False)[::-1]
    n_tokens = sum(len(g) for g in v_ids)
    n_wrapper_equal = sum(be.decode(g) == t for g, t in zip(v_ids, v_texts))
    equal = sum(a == b for a, b in zip(v_texts, tf_texts))
    report["vllm_vs_transformers"] = {
        "model": "check model (head size 64)", "dtype": "float16", "requests": n, "max_new_tokens": max_new,
        "generated_tokens": n_tokens, "transformers_s": tf_s, "vllm_engine_start_s": start_s, "vllm_s": v_s,
        "transformers_tokens_per_s": round(n_tokens / tf_s, 1), "vllm_tokens_per_s": round(n_tokens / v_s, 1),
        "greedy_texts_equal": f"{equal}/{n}", "max_teacher_forced_gap": round(max(gaps), 4), "tie_tol": tie_tol,
        "wrapper_equals_bare_llm_generate": f"{n_wrapper_equal}/{n}",
        "sampled_order_independent": s1 == s2, "sampled_differs_from_greedy": s1 != v_texts,
    }
    del be, tf
    torch.cuda.empty_cache()
    return equal >= 0.9 * n and max(gaps) <= tie_tol and s1 == s2 and s1 != v_texts


def toy_model_on_vllm(n: int, max_new: int, report: dict) -> None:
    """Informational: does vLLM start on the v2 study's critic toy-409k (head size 24)?"""
    from scrit_utils.generation import SamplingParams
    from scrit_utils.generation.transformers_backend import TransformersBackend
    from scrit_utils.generation.vllm_backend import VLLMBackend

    out = report["toy_model"] = {"model": str(TOY_MODEL.relative_to(REPO)), "head_size": head_size(TOY_MODEL)}
    reqs, params = check_requests(n), SamplingParams(max_new_tokens=max_new)
    try:
        be, out["vllm_engine_start_s"] = timed(VLLMBackend, str(TOY_MODEL), dtype="float16",
                                               gpu_memory_utilization=0.25, enforce_eager=True, max_model_len=1024)
    except Exception as e:  # noqa: BLE001 - the point is to record why vLLM refuses it
        out["vllm_accepts"] = False
        out["error"] = f"{type(e).__name__}: {str(e)[:500]}"
        return
    out["vllm_accepts"] = True
    v = be.generate(reqs, params, progress=False)
    t = TransformersBackend(str(TOY_MODEL), device="cuda", dtype="float16").generate(reqs, params, progress=False)
    out["greedy_texts_equal"] = f"{sum(a == b for a, b in zip(v, t))}/{n}"
    del be


def check_qwen(qwen: str, n: int, max_new_tokens: int, results: dict) -> bool:
    """Our wrapper vs bare ``LLM.generate`` on the same token ids and engine (local Qwen2.5 weights)."""
    import vllm

    from scrit_utils.critique import parsing, prompts
    from scrit_utils.generation import GenerationRequest, SamplingParams, derive_seed
    from scrit_utils.generation.vllm_backend import VLLMBackend, sampling_kwargs

    reqs = [GenerationRequest(f"q{i}", prompts.direct_critic_messages(
        f"A crate holds {3 + i % 17} boxes of {5 + i % 11} apples. How many apples are in the crate?",
        prompts.format_solution([f"{3 + i % 17} * {5 + i % 11} = {(3 + i % 17) * (5 + i % 11) + i % 2}"]), "full"),
        seed=derive_seed(0, "gpu_check", f"q{i}", 0)) for i in range(n)]
    params = SamplingParams(max_new_tokens=max_new_tokens)
    be, start_s = timed(VLLMBackend, qwen, max_model_len=4096, gpu_memory_utilization=0.85)
    be.generate(reqs[:8], params, progress=False)  # warm-up (CUDA graphs, prefix cache for the instructions)
    texts, wrapper_s = timed(be.generate, reqs, params, progress=False)
    ids = be.encode(reqs)
    bare_sp = vllm.SamplingParams(**sampling_kwargs(params, 0))
    outs, bare_s = timed(be.llm.generate, [{"prompt_token_ids": x} for x in ids], bare_sp, use_tqdm=False)
    bare_texts = [be.decode(o.outputs[0].token_ids) for o in outs]
    gen_tokens = sum(len(o.outputs[0].token_ids) for o in outs)
    parsed = [parsing.parse_critique(t) for t in texts]
    results["qwen"] = {
        "model": qwen, "requests": n, "generated_tokens": gen_tokens, "engine_start_s": start_s,
        "wrapper_s": wrapper_s, "bare_llm_generate_s": bare_s,
        "wrapper_tokens_per_s": round(gen_tokens / wrapper_s, 1), "bare_tokens_per_s": round(gen_tokens / bare_s, 1),
        "wrapper_overhead_pct": round(100 * (wrapper_s - bare_s) / bare_s, 1),
        "greedy_wrapper_equals_bare": f"{sum(a == b for a, b in zip(texts, bare_texts))}/{n}",
        "verdict_parsed": sum(getattr(p, "verdict", None) is not None for p in parsed),
    }
    return True


def _stage(report: dict, name: str, fn, *args) -> bool:
    """Run one check; an exception fails it and is recorded in the report instead of ending the run."""
    try:
        ok = bool(fn(*args))
    except Exception as e:  # noqa: BLE001
        report.setdefault("errors", {})[name] = f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=6)[-1500:]}"
        ok = False
    report.setdefault("passed", {})[name] = ok
    return ok


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="gpu_check.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--cpu-only", action="store_true", help="only the checks that need no GPU")
    ap.add_argument("--workdir", default="/tmp/scrit_gpu_check")
    ap.add_argument("--n", type=int, default=64, help="requests per comparison")
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--tie-tol", type=float, default=0.05, help="largest logit gap counted as a near-tie")
    ap.add_argument("--no-toy-model", action="store_true", help="skip asking vLLM about toy-409k")
    ap.add_argument("--qwen", default=None, help="local dir of Qwen2.5 weights (skipped when absent)")
    ap.add_argument("--qwen-n", type=int, default=256)
    ap.add_argument("--qwen-max-new-tokens", type=int, default=512)
    ap.add_argument("--device", action="store_true",
                    help="one GPU, no vLLM: transformers backend vs HF generate, LoRA SFT (scripts/gpu_device_check.py)")
    ap.add_argument("--sft-steps", type=int, default=20, help="--device: LoRA SFT steps")
    ap.add_argument("--print-wheels", action="store_true", help="the wheels --device needs beyond torch, then exit")
    ap.add_argument("--json-out", default=None)
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    if args.print_wheels:
        import gpu_device_check

        gpu_device_check.print_wheels()
        return 0

    import torch

    t0 = time.perf_counter()
    mode = "device" if args.device else "cpu-only" if args.cpu_only else "gpu"
    report: dict = {"mode": mode, "torch": torch.__version__, "cuda": torch.cuda.is_available()}
    if args.device:
        if not torch.cuda.is_available():
            print(f"gpu_check --device: no CUDA device (torch {torch.__version__} sees none); nothing was run. "
                  "It needs one GPU; --cpu-only runs the checks that need none.", file=sys.stderr)
            report.update(ok=False, error="no CUDA device")
            _write(args.json_out, report)
            return 2
        import gpu_device_check

        report["ok"] = bool(gpu_device_check.run(args, report, _stage))
        report["elapsed_s"] = round(time.perf_counter() - t0, 1)
        print(json.dumps(report, indent=2))
        _write(args.json_out, report)
        return 0 if report["ok"] else 1
    if not args.cpu_only:
        if not torch.cuda.is_available():
            print("no CUDA device visible: nothing to check on a GPU (--cpu-only runs the CPU part)", file=sys.stderr)
            return 2
        try:
            import vllm
        except ImportError:
            print("vllm is not installed (pip install -e '.[gpu]')", file=sys.stderr)
            return 2
        report.update(gpu=torch.cuda.get_device_name(0), vllm=vllm.__version__)
    workdir = Path(args.workdir)
    ok = _stage(report, "cpu_part", cpu_part, workdir, args.n, args.max_new_tokens, args.tie_tol, report)
    if args.cpu_only:
        report["vllm_vs_transformers"] = "not run (--cpu-only)"
    else:
        ok &= _stage(report, "vllm_vs_transformers", vllm_vs_transformers, workdir / "check-model", args.n,
                     args.max_new_tokens, args.tie_tol, report)
        if args.no_toy_model:
            pass
        elif time.perf_counter() - t0 > TOY_STAGE_DEADLINE_S:  # keep the whole run inside 8 minutes
            report["toy_model"] = f"skipped: {time.perf_counter() - t0:.0f} s used before it"
        else:
            _stage(report, "toy_model_informational", toy_model_on_vllm, 16, args.max_new_tokens, report)
        if args.qwen:
            if Path(args.qwen).is_dir():
                ok &= _stage(report, "qwen", check_qwen, args.qwen, args.qwen_n, args.qwen_max_new_tokens, report)
            else:
                report["qwen"] = f"skipped: {args.qwen} is not a local directory"
    report["ok"] = bool(ok)
    report["elapsed_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(report, indent=2))
    _write(args.json_out, report)
    return 0 if ok else 1


def _write(path: str | None, report: dict) -> None:
    if path:
        from scrit_utils.core.records import write_json

        write_json(path, report)


if __name__ == "__main__":
    sys.exit(main())

"""TransformersBackend on a real (tiny, random-init) Qwen2 checkpoint loaded from disk."""
from __future__ import annotations

import random

import pytest
import torch

from scrit_utils.generation import GenerationRequest, SamplingParams, get_backend, truncate_at_stop
from scrit_utils.generation.transformers_backend import NaiveTransformersBackend, TransformersBackend, counter_uniform, load_tokenizer

from .tiny_lm import build_tiny_lm

torch.set_num_threads(1)

PROMPTS = [
    "Q",
    "Solve.\n17+25*3",
    "Critique.\n117+25*3-40\nStudent:\nStep 1: 117+25=142\nStep 2: 142*3=426",
    "hi",
    "Critique with reference.\n5*5\nReference:\nStep 1: 5*5=25\nStudent:\nStep 1: 5*5=26",
    "a somewhat longer prompt, to force a lot of left padding on the short ones " * 2,
    "7-3",
    "Inject error.\n1+1\nSolution:\nStep 1: 1+1=2",
]


def reqs(seed_base: int = 0, prompts=PROMPTS) -> list[GenerationRequest]:
    return [
        GenerationRequest(id=f"r{i}", messages=[{"role": "user", "content": p}], seed=seed_base + 1000 * i)
        for i, p in enumerate(prompts)
    ]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return build_tiny_lm(tmp_path_factory.mktemp("tiny_lm"))


@pytest.fixture(scope="module")
def backend(model_dir):
    return TransformersBackend(model_dir, batch_size=3)


@pytest.fixture(scope="module")
def naive(backend):
    return NaiveTransformersBackend("tiny", _loaded=(backend.model, backend.tokenizer))


GREEDY = SamplingParams(max_new_tokens=24)
SAMPLED = SamplingParams(max_new_tokens=24, temperature=1.0, top_p=0.95)


def with_batch(backend: TransformersBackend, batch_size: int, max_batch_tokens=None) -> TransformersBackend:
    return TransformersBackend("tiny", batch_size=batch_size, max_batch_tokens=max_batch_tokens,
                               _loaded=(backend.model, backend.tokenizer))


def test_greedy_batched_equals_one_at_a_time_generate(backend, naive):
    rs = reqs()
    batched = backend.generate(rs, GREEDY, progress=False)
    single = naive.generate(rs, GREEDY, progress=False)
    assert batched == single
    assert len(set(batched)) > 1  # distinct prompts give distinct texts: the comparison is not vacuous
    assert all(batched)


def test_greedy_independent_of_batch_size_and_padding(backend):
    rs = reqs()
    ref = backend.generate(rs, GREEDY, progress=False)
    for bs in (1, 2, 8):
        assert with_batch(backend, bs).generate(rs, GREEDY, progress=False) == ref
    # the shortest prompt alone (no padding) and next to the longest one (lots of padding)
    short, long_ = rs[3], rs[5]
    alone = with_batch(backend, 1).generate([short], GREEDY, progress=False)[0]
    padded = with_batch(backend, 2).generate([long_, short], GREEDY, progress=False)[1]
    assert alone == padded == ref[3]


def test_results_in_request_order(backend):
    rs = reqs()
    ref = dict(zip([r.id for r in rs], with_batch(backend, 1).generate(rs, GREEDY, progress=False)))
    shuffled = rs[:]
    random.Random(3).shuffle(shuffled)
    out = backend.generate(shuffled, GREEDY, progress=False)
    assert out == [ref[r.id] for r in shuffled]


def test_sampled_independent_of_batch_composition(backend):
    rs = reqs(seed_base=7)
    full = backend.generate(rs, SAMPLED, progress=False)
    # other batch sizes, reversed order, and a "resumed" run over a subset
    assert with_batch(backend, 8).generate(rs, SAMPLED, progress=False) == full
    assert with_batch(backend, 1).generate(rs[::-1], SAMPLED, progress=False) == full[::-1]
    subset = [0, 2, 5, 7]
    assert with_batch(backend, 2).generate([rs[i] for i in subset], SAMPLED, progress=False) == [full[i] for i in subset]
    # the same request next to different neighbours
    other = reqs(seed_base=99, prompts=["x" * 40, "y", "zz"])
    mixed = backend.generate([other[0], rs[4], other[1], other[2]], SAMPLED, progress=False)
    assert mixed[1] == full[4]
    # sampling is really happening: it differs from greedy
    assert full != backend.generate(rs, GREEDY, progress=False)


def test_different_seeds_differ_same_seed_repeats(backend):
    msg = [{"role": "user", "content": "Solve.\n17+25*3"}]
    rs = [GenerationRequest(id=f"s{k}", messages=msg, seed=k) for k in range(6)]
    out = backend.generate(rs, SAMPLED, progress=False)
    assert len(set(out)) >= 5
    again = backend.generate(rs, SAMPLED, progress=False)
    assert again == out


def test_tiny_top_p_is_greedy(backend):
    rs = reqs(seed_base=3)
    nucleus = backend.generate(rs, SamplingParams(max_new_tokens=24, temperature=1.0, top_p=1e-9), progress=False)
    assert nucleus == backend.generate(rs, GREEDY, progress=False)


def test_stop_strings_cut_and_stop_generation(backend):
    rs = reqs()
    long_params = SamplingParams(max_new_tokens=40)
    full = backend.generate(rs, long_params, progress=False)
    i = max(range(len(full)), key=lambda k: len(full[k]))
    text = full[i]
    assert len(text) >= 20
    stop = text[10:12]
    first = text.find(stop)
    stopped = backend.generate([rs[i]], SamplingParams(max_new_tokens=40, stop=(stop,)), progress=False)[0]
    assert stopped == text[:first] == truncate_at_stop(text, [stop])
    # generation really stopped early: with a budget that ends right after the stop string the
    # output is the same, so nothing after it was needed
    n_tok = len(backend.tokenizer(text[: first + len(stop)], add_special_tokens=False)["input_ids"])
    short = backend.generate([rs[i]], SamplingParams(max_new_tokens=n_tok, stop=(stop,)), progress=False)[0]
    assert short == stopped
    # a stop string that never occurs changes nothing
    assert backend.generate(rs, SamplingParams(max_new_tokens=40, stop=("\x00never",)), progress=False) == full


def test_eos_ends_a_row(backend):
    rs = reqs()
    full = backend.generate(rs, GREEDY, progress=False)
    i = max(range(len(full)), key=lambda k: len(full[k]))
    ids = backend.tokenizer(full[i], add_special_tokens=False)["input_ids"]
    extra_eos = ids[5]
    b2 = with_batch(backend, 3)
    b2.eos_ids = backend.eos_ids | {extra_eos}
    out = b2.generate(rs, GREEDY, progress=False)
    assert out[i] == backend.tokenizer.decode(ids[: ids.index(extra_eos)], skip_special_tokens=True)
    for j, (a, b) in enumerate(zip(out, full)):
        assert b.startswith(a), j  # every row is a prefix of its unstopped text


def test_max_new_tokens_respected(backend):
    out = backend.generate(reqs(), SamplingParams(max_new_tokens=5), progress=False)
    for t in out:
        assert len(backend.tokenizer(t, add_special_tokens=False)["input_ids"]) <= 5


def test_plan_batches_limits(backend):
    b = with_batch(backend, 4, max_batch_tokens=100)
    lengths = [5, 40, 12, 3, 30, 30, 7, 1, 60]
    batches = b.plan_batches(lengths, max_new_tokens=10)
    assert sorted(i for bt in batches for i in bt) == list(range(len(lengths)))
    for bt in batches:
        assert len(bt) <= 4
        width = max(lengths[i] for i in bt) + 10
        assert len(bt) == 1 or len(bt) * width <= 100
    flat = [lengths[i] for bt in batches for i in bt]
    assert flat == sorted(lengths, reverse=True)  # sorted by length: minimal padding


def test_counter_uniform_properties():
    seeds = torch.arange(20000, dtype=torch.int64) * 7919
    u0, u1 = counter_uniform(seeds, 0), counter_uniform(seeds, 1)
    assert torch.equal(u0, counter_uniform(seeds, 0))
    assert bool(((u0 >= 0) & (u0 < 1)).all())
    assert abs(float(u0.mean()) - 0.5) < 0.01 and abs(float(u0.var()) - 1 / 12) < 0.005
    assert float((u0 == u1).float().mean()) < 1e-3
    # no correlation between consecutive steps of one seed
    assert abs(float(torch.corrcoef(torch.stack([u0, u1]))[0, 1])) < 0.03
    # a value depends only on its own seed, not the rest of the tensor
    assert torch.equal(counter_uniform(seeds[5:6], 3), counter_uniform(seeds, 3)[5:6])


def test_loader_keeps_custom_tokenizer_for_qwen2_checkpoint(model_dir, backend):
    # AutoTokenizer would swap in Qwen2Tokenizer (model_type qwen2) and change the encoding
    tok = load_tokenizer(model_dir)
    text = "<|im_start|>user\nA b\n<|im_end|>"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text
    assert len(ids) == len("user\nA b\n") + 2


def test_get_backend_and_validation(model_dir):
    b = get_backend("transformers", model=model_dir, batch_size=2)
    assert b.generate([], GREEDY) == []
    with pytest.raises(ValueError, match="no messages"):
        b.generate([GenerationRequest(id="x", messages=[])], GREEDY, progress=False)
    with pytest.raises(ValueError, match="max_new_tokens"):
        b.generate(reqs()[:1], SamplingParams(max_new_tokens=0), progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        TransformersBackend(model_dir, batch_size=0)


# --- the head-major KV cache (CPU default) ----------------------------------------------
def test_head_major_cache_is_the_cpu_default_and_matches_the_contiguous_cache(backend):
    assert backend.kv_head_major and backend.lean_decode and backend.prefill_rows == 32
    rs = reqs(seed_base=11)

    def run(head_major, bs, params, prefill_rows=32, lean=True):
        b = TransformersBackend("tiny", batch_size=bs, kv_head_major=head_major, prefill_rows=prefill_rows, lean_decode=lean,
                                _loaded=(backend.model, backend.tokenizer))
        return b.generate(rs, params, progress=False)
    for params in (GREEDY, SAMPLED):
        ref = run(False, 8, params)  # the contiguous cache, stock attention, one prefill, transformers' forward
        # prefill_rows 2/3: chunked prefill over several batches that share the storage pool (rows cut
        # to their chunk's longest prompt leave unwritten slots); lean off: the registered attention function
        for bs, prefill_rows, lean in ((8, 32, True), (3, 2, True), (8, 3, False), (8, 3, True)):
            assert run(True, bs, params, prefill_rows, lean) == ref, (bs, prefill_rows, lean, params)
    assert backend.model.config._attn_implementation == "sdpa"  # switched only for the duration of a call


def test_lean_decode_step_is_bitwise_the_models_forward(backend):
    from scrit_utils.generation.kv_cache import KV_CACHE_ATTENTION, _attention_implementation, _make_cache
    from scrit_utils.generation.lean_decode import _lean_decode_step

    ids = [backend.tokenizer(p)["input_ids"] for p in PROMPTS[:5]]
    width = max(map(len, ids))
    x = torch.full((5, width), backend.pad_id)
    mask = torch.zeros_like(x)
    for r, p in enumerate(ids):
        x[r, width - len(p):], mask[r, width - len(p):] = torch.tensor(p), 1
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    caches = [_make_cache(backend.model, width + 12, head_major=True) for _ in range(2)]
    with torch.inference_mode(), _attention_implementation(backend.model, KV_CACHE_ATTENTION):
        logits = [backend._forward(x, mask, pos, c) for c in caches]
        nxt = pos[:, -1:] + 1
        for _ in range(10):
            tok = logits[0].argmax(-1)
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
            logits = [backend._forward(tok[:, None], mask, nxt, caches[0]),
                      _lean_decode_step(backend.model, tok, nxt, caches[1], mask)]
            assert torch.equal(logits[0], logits[1])
            nxt = nxt + 1


def test_lean_decode_is_chosen_by_what_the_model_is_made_of(backend):
    """By its parts and settings, not its class name; and only where a probe gives bitwise its own logits."""
    import copy

    from scrit_utils.generation.lean_decode import _lean_decode_matches, _supports_lean_decode

    def variant(change):
        m = copy.deepcopy(backend.model)
        change(m)
        return m
    renamed = variant(lambda m: setattr(m, "__class__", type("SomeDecoderForCausalLM", (type(m),), {})))
    assert _supports_lean_decode(backend.model) and _supports_lean_decode(renamed)
    # a part the lean step would skip (Qwen3's q-norm), a setting it does not implement
    assert not _supports_lean_decode(variant(lambda m: setattr(m.model.layers[1].self_attn, "q_norm",
                                                               torch.nn.Identity())))
    assert not _supports_lean_decode(variant(lambda m: setattr(m.config, "final_logit_softcapping", 30.0)))

    def scale_in_forward(m):  # arithmetic no attribute shows (as Gemma scales its embeddings in code)
        def hook(module, args, out):
            out.last_hidden_state = out.last_hidden_state * 1.5
            return out
        m.model.register_forward_hook(hook)
    hidden = variant(scale_in_forward)
    assert _supports_lean_decode(hidden) and not _lean_decode_matches(hidden)
    assert _lean_decode_matches(backend.model)
    assert not TransformersBackend("tiny", _loaded=(hidden, backend.tokenizer)).lean_decode
    assert TransformersBackend("tiny", _loaded=(renamed, backend.tokenizer)).lean_decode


def test_head_major_attention_equals_sdpa_on_the_same_cache():
    from transformers.integrations.sdpa_attention import repeat_kv

    from scrit_utils.generation.kv_cache import _HeadMajorLayer, _kv_cache_attention

    torch.manual_seed(0)
    b, h, hkv, d, prompt, steps = 3, 4, 2, 8, 11, 9

    class Module:  # what the attention function reads from the calling layer
        num_key_value_groups = h // hkv
        is_causal = True

    layer = _HeadMajorLayer(capacity=prompt + steps + 1)
    k0, v0 = torch.randn(b, hkv, prompt, d), torch.randn(b, hkv, prompt, d)
    first = layer.update(k0, v0)
    assert first[0] is k0  # the prefill attends over its own states
    keys, values = [k0], [v0]
    pad = torch.tensor([0, 3, 6])  # left padding per row
    for step in range(steps):
        k1, v1 = torch.randn(b, hkv, 1, d), torch.randn(b, hkv, 1, d)
        kb, vb = layer.update(k1, v1)
        keys.append(k1), values.append(v1)
        n = prompt + step + 1
        assert kb.shape == (b, hkv, 1, d, n) and vb.shape == (b, hkv, 1, n, d)
        mask = (torch.arange(n)[None, :] >= pad[:, None]).reshape(b, 1, 1, n)
        q = torch.randn(b, h, 1, d)
        got, _ = _kv_cache_attention(Module(), q, kb, vb, mask, scaling=0.3)
        k, v = torch.cat(keys, 2), torch.cat(values, 2)
        want = torch.nn.functional.scaled_dot_product_attention(q, repeat_kv(k, 2), repeat_kv(v, 2), attn_mask=mask,
                                                                scale=0.3).transpose(1, 2)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    # dropping rows keeps the survivors' states (twice: the second selection reuses the first's storage)
    for keep, rows in (([2, 0], [2, 0]), ([1], [0])):
        layer.batch_select_indices(torch.tensor(keep))
        kb, vb = layer.update(torch.zeros(len(keep), hkv, 0, d), torch.zeros(len(keep), hkv, 0, d))
        torch.testing.assert_close(kb[:, :, 0].transpose(-1, -2), torch.cat(keys, 2)[rows])
        torch.testing.assert_close(vb[:, :, 0], torch.cat(values, 2)[rows])
    # released storages go to the pool and the next layer takes them instead of new memory
    pool = layer.pool
    layer.release()
    assert len(pool) == 4 and layer.kbuf is None
    ptrs = {t.data_ptr() for t in pool}
    again = _HeadMajorLayer(capacity=prompt + steps + 1, pool=pool)
    again.update(k0, v0)
    assert {again.kbuf.data_ptr(), again.vbuf.data_ptr()} <= ptrs and len(pool) == 2


def test_a_chunked_prefill_zeroes_the_slots_its_rows_never_write():
    """Rows cut to their chunk's longest prompt leave slots unwritten; reused storage must not leak into them."""
    from scrit_utils.generation.kv_cache import _HeadMajorLayer

    pool = [torch.full((2 * 2 * 4 * 8,), float("nan")) for _ in range(2)]  # storage left over from a batch
    layer = _HeadMajorLayer(capacity=8, pool=pool)
    layer.prefill_rows = (1, 2, 3, 2)  # the chunk of row 1 starts at slot 3
    layer.update(torch.ones(1, 2, 5, 4), torch.ones(1, 2, 5, 4))
    assert torch.equal(layer.kbuf[1, :, :, :3], torch.zeros(2, 4, 3))
    assert torch.equal(layer.vbuf[1, :, :3], torch.zeros(2, 3, 4))
    assert torch.equal(layer.kbuf[1, :, :, 3:], torch.ones(2, 4, 5))


def test_attention_implementation_restored_after_a_failed_call(backend, monkeypatch):
    b = TransformersBackend("tiny", batch_size=4, _loaded=(backend.model, backend.tokenizer))

    def boom(*a, **k):
        assert backend.model.config._attn_implementation == "scrit_kv_head_major"
        raise RuntimeError("boom")
    monkeypatch.setattr(b, "_generate_batch", boom)
    with pytest.raises(RuntimeError, match="boom"):
        b.generate(reqs(), GREEDY, progress=False)
    assert backend.model.config._attn_implementation == "sdpa"

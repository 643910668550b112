"""Continuous batching (generation/continuous.py, TransformersBackend(max_num_seqs=...)): a request's text is the
one a static batch and the one-prompt loop give it (up to float rounding: at study scale a rare sampled token
differs, so the key is hashed), while finished rows are refilled from the call's queue."""
from __future__ import annotations

import pytest
import torch

from scrit_utils.core.records import ResumableJsonl
from scrit_utils.generation import GenerationRequest, SamplingParams, derive_seed
from scrit_utils.generation import continuous
from scrit_utils.generation.transformers_backend import NaiveTransformersBackend, TransformersBackend, counter_uniform
from scrit_utils.pipeline import common

from .tiny_lm import build_tiny_lm

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def static(tmp_path_factory):
    return TransformersBackend(build_tiny_lm(tmp_path_factory.mktemp("cb") / "tiny", hidden=32, layers=2), batch_size=8)


def live(static: TransformersBackend, rows: int) -> TransformersBackend:
    return TransformersBackend("tiny", batch_size=8, max_num_seqs=rows, _loaded=(static.model, static.tokenizer))


def requests(n: int = 41) -> list[GenerationRequest]:
    # prompt lengths 4-40 characters in no order, so rows of very different ages share the batch
    return [GenerationRequest(id=f"r{i}", messages=[{"role": "user", "content": "ab c" * (1 + (i * 7) % 10) + str(i)}],
                              seed=derive_seed(3, "cb", i, 0)) for i in range(n)]


PARAMS = {"greedy": SamplingParams(max_new_tokens=20),
          "sampled": SamplingParams(max_new_tokens=20, temperature=1.0, top_p=0.9),
          "stop": SamplingParams(max_new_tokens=20, temperature=1.0, stop=("c",))}


@pytest.mark.parametrize("mode", list(PARAMS))
@pytest.mark.parametrize("rows", [1, 3, 10, 64])
def test_texts_equal_static_batches(static, mode, rows, monkeypatch):
    admitted = []
    admit = continuous._LiveBatch.admit
    monkeypatch.setattr(continuous._LiveBatch, "admit", lambda self, new: admitted.append(len(new)) or admit(self, new))
    reqs, params = requests(), PARAMS[mode]
    want = static.generate(reqs, params, progress=False)
    assert live(static, rows).generate(reqs, params, progress=False) == want
    assert sum(admitted) == len(reqs) and max(admitted) <= rows
    if rows < len(reqs):
        assert len(admitted) > 1  # finished rows were refilled
    assert len(set(want)) > 20


@pytest.mark.parametrize("mode", ["greedy", "sampled"])
def test_attention_in_row_blocks_changes_no_text(static, mode, monkeypatch):
    cuts = []
    cut = continuous._LiveBatch._cut_blocks
    monkeypatch.setattr(continuous, "BLOCK_ROWS", 2)
    monkeypatch.setattr(continuous, "BLOCK_COST", 0)  # every 2 rows a block of their own columns
    monkeypatch.setattr(continuous._LiveBatch, "_cut_blocks", lambda self: cut(self) or cuts.append(self.blocks))
    reqs, params = requests(), PARAMS[mode]
    assert live(static, 9).generate(reqs, params, progress=False) == static.generate(reqs, params, progress=False)
    assert max(len(b) for b in cuts) >= 4 and any(len({c0 for _, _, c0 in b}) > 1 for b in cuts)


def test_greedy_equals_the_one_prompt_loop(static):
    reqs = requests(12)
    naive = NaiveTransformersBackend("tiny", _loaded=(static.model, static.tokenizer))
    assert live(static, 4).generate(reqs, PARAMS["greedy"], progress=False) == naive.generate(reqs, PARAMS["greedy"],
                                                                                               progress=False)


def test_max_new_tokens_respected(static):
    for t in live(static, 5).generate(requests(), SamplingParams(max_new_tokens=3, temperature=1.0), progress=False):
        assert len(static.tokenizer(t, add_special_tokens=False)["input_ids"]) <= 3


def test_per_row_steps_draw_what_a_shared_step_draws():
    seeds = torch.arange(50, dtype=torch.int64) * 104729
    steps = torch.arange(50) % 7
    mixed = counter_uniform(seeds, steps)
    for s in range(7):
        assert torch.equal(mixed[steps == s], counter_uniform(seeds[steps == s], s))


def test_resumable_stage_takes_several_chunks_per_call_and_resumes(static, tmp_path):
    be = live(static, 4)
    assert be.parallel == -(-8 * 4 // 8)  # chunks of batch_size per call: a queue of 8 requests per live row
    reqs, params = requests(), PARAMS["sampled"]

    def run(backend, path, items):
        out = ResumableJsonl(path)
        common.generate_resumable(backend, out, items, item_id=lambda r: r.id, request=lambda r: r,
                                  record=lambda r, t: {"id": r.id, "text": t}, params=params, chunk_size=8)
        return {r["id"]: r["text"] for r in out.records()}

    want = run(static, tmp_path / "static.jsonl", reqs)
    assert run(be, tmp_path / "live.jsonl", reqs) == want
    partial = tmp_path / "partial.jsonl"
    run(be, partial, reqs[:8])  # a run stopped after its first chunk
    assert run(be, partial, reqs) == want


def test_a_decode_hook_keeps_static_batches(static):
    calls = []

    class Hook:  # the DecodeHook protocol, changing nothing
        tail_chars = 0

        def __call__(self, tok_list, tails, logits):
            calls.append(len(tok_list))

    be = live(static, 3)
    be.decode_hook = Hook()
    reqs = requests(10)
    assert be.generate(reqs, PARAMS["greedy"], progress=False) == static.generate(reqs, PARAMS["greedy"], progress=False)
    assert calls and max(calls) == 8  # static batches of batch_size rows, where the hook runs


def test_bad_max_num_seqs(static):
    with pytest.raises(ValueError, match="max_num_seqs"):
        live(static, 0)


def test_the_profile_keys_reach_the_backend_and_key_every_generating_stage_only_when_set(static, tmp_path):
    from scrit_utils.core import config, inputs

    plain = config.load("configs/smoke.yaml")
    assert "max_num_seqs" not in config.to_dict(plain)["generation"]  # hashed when set
    # at their defaults the keys are left out of a generating stage's slice (the keys of earlier runs stay) ...
    assert set(config.config_slice(plain, common.BACKEND_KEYS)) == set(common.BACKEND_KEYS) - {
        "generation.max_num_seqs", "run.generation_workers"}
    # ... and set, they are in it: they change batch composition and rounding, so a few sampled texts
    fast = config.load("configs/smoke.yaml", ["generation.max_num_seqs=6", "run.generation_workers=2"])
    sl = config.config_slice(fast, common.BACKEND_KEYS)
    assert sl["generation.max_num_seqs"] == 6 and sl["run.generation_workers"] == 2
    assert config.load("configs/toy-v3-full.yaml").generation.max_num_seqs == 512
    assert config.load("configs/toy-v3.yaml").generation.max_num_seqs is None  # the core reproduces its committed run
    cfg = config.load("configs/smoke.yaml", [f"run.artifacts_dir={tmp_path}", "generation.max_num_seqs=6"])
    rec = inputs.Recorder()
    be = common.make_backend(inputs.ConfigView(cfg, rec), static.model_name, cache=False)
    assert be.max_num_seqs == 6 and be.parallel > 1
    assert {"generation.max_num_seqs", "run.generation_workers"} <= rec.keys
    assert not [k for k in rec.keys if not inputs.key_covered(k, common.BACKEND_KEYS + ("run.seed",))]


def test_several_files_share_one_queue_and_resume(static, tmp_path):
    """common.generate_files_resumable: each file's chunks are cut as alone, the backend takes `parallel` of them
    per call whichever file they belong to; a finalized file is left alone, a partial one completed."""
    be, params = live(static, 4), PARAMS["sampled"]  # parallel 4
    reqs = requests(27)
    parts = {"a": reqs[:5], "b": reqs[5:18], "c": reqs[18:]}  # 1 + 2 + 2 chunks of 8

    def files(root, names=parts):
        return [common.ResumableSet(ResumableJsonl(root / f"{n}.jsonl"), parts[n], lambda r: r.id, lambda r: r,
                                    lambda r, t: {"id": r.id, "text": t}, 8) for n in names]

    def texts(root, n):
        return {r["id"]: r["text"] for r in ResumableJsonl(root / f"{n}.jsonl").records()}

    (tmp_path / "one").mkdir()
    for f in files(tmp_path / "one"):  # each file alone, static batches
        common.generate_resumable(static, f.out, f.items, f.item_id, f.request, f.record, params, 8)
    calls = []
    many = be.generate_many
    be.generate_many = lambda groups, p: calls.append([len(g) for g in groups]) or many(groups, p)
    (tmp_path / "all").mkdir()
    assert common.generate_files_resumable(be, files(tmp_path / "all"), params) == 27
    assert calls == [[5, 8, 5, 8], [1]]  # chunks of a, b and c (8 + 1) in file order, 4 per call
    assert all(texts(tmp_path / "all", n) == texts(tmp_path / "one", n) for n in parts)
    (tmp_path / "resume").mkdir()
    done = files(tmp_path / "resume", ["a"])[0]
    common.generate_resumable(be, done.out, done.items, done.item_id, done.request, done.record, params, 8)
    done.out.finalize()
    half = files(tmp_path / "resume", ["b"])[0]
    common.generate_resumable(be, half.out, half.items[:8], half.item_id, half.request, half.record, params, 8)
    calls.clear()
    assert common.generate_files_resumable(be, files(tmp_path / "resume"), params) == 5 + 9
    assert calls == [[5, 8, 1]]  # b's second chunk and c's two; a is finalized
    assert all(texts(tmp_path / "resume", n) == texts(tmp_path / "one", n) for n in parts)

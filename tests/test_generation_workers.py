"""Generation in worker processes (run.generation_workers; scrit_utils/generation/process_pool.py): the stage
files hold exactly the texts one process writes, greedy and sampled, through the greedy memo too."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiny_lm import build_tiny_lm  # noqa: E402

from scrit_utils.core import config  # noqa: E402
from scrit_utils.core.records import ResumableJsonl  # noqa: E402
from scrit_utils.generation import GenerationRequest, SamplingParams, derive_seed  # noqa: E402
from scrit_utils.generation.process_pool import ProcessPoolBackend  # noqa: E402
from scrit_utils.generation.transformers_backend import TransformersBackend  # noqa: E402
from scrit_utils.pipeline import common  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return str(build_tiny_lm(tmp_path_factory.mktemp("m") / "tiny", hidden=32, layers=2))


def _requests(n: int) -> list[GenerationRequest]:
    # prompts of different lengths (padding inside a batch); every fifth repeats an earlier prompt (the memo)
    out = []
    for i in range(n):
        j = i - 3 if i % 5 == 4 else i
        out.append(GenerationRequest(id=f"r{i}", messages=[{"role": "user", "content": "x" * (3 + j % 7) + str(j)}],
                                     seed=derive_seed(0, "test", f"r{i}", 0)))
    return out


def _run(backend, path: Path, reqs, params, chunk: int) -> list[str]:
    out = ResumableJsonl(path)
    common.generate_resumable(backend, out, reqs, item_id=lambda r: r.id, request=lambda r: r,
                              record=lambda r, t: {"id": r.id, "text": t}, params=params, chunk_size=chunk)
    texts = {r["id"]: r["text"] for r in out.records()}
    return [texts[r.id] for r in reqs]


@pytest.mark.parametrize("params", [SamplingParams(max_new_tokens=12),
                                    SamplingParams(max_new_tokens=12, temperature=1.0, top_p=0.9)],
                         ids=["greedy", "sampled"])
def test_worker_processes_write_the_texts_of_one_process(tiny, tmp_path, params):
    reqs = _requests(23)  # 6 chunks of 4, the last short: groups of 2 chunks and a lone one
    one = common.GreedyMemoBackend(TransformersBackend(tiny, batch_size=4))
    pool = ProcessPoolBackend("transformers", {"model": tiny, "batch_size": 4}, workers=2)
    try:
        many = common.GreedyMemoBackend(pool)
        assert many.parallel == 2
        a = _run(one, tmp_path / "one.jsonl", reqs, params, chunk=4)
        b = _run(many, tmp_path / "many.jsonl", reqs, params, chunk=4)
        assert a == b and len(set(a)) > 3
        assert many.reused == one.reused  # the memo answers the same repeats
        if params.greedy:
            assert one.reused > 0
        assert pool.generate(reqs[:5], params) == TransformersBackend(tiny, batch_size=4).generate(reqs[:5], params)
    finally:
        pool.shutdown()


def test_worker_processes_with_continuous_batching_write_the_texts_of_one_process(tiny, tmp_path):
    reqs, params = _requests(37), SamplingParams(max_new_tokens=12, temperature=1.0)
    pool = ProcessPoolBackend("transformers", {"model": tiny, "batch_size": 4, "max_num_seqs": 3}, workers=2)
    try:
        assert pool.per_worker == 6 and pool.parallel == 12  # 8 queued requests per live row, in chunks of 4
        a = _run(TransformersBackend(tiny, batch_size=4), tmp_path / "one.jsonl", reqs, params, chunk=4)
        assert _run(pool, tmp_path / "many.jsonl", reqs, params, chunk=4) == a
    finally:
        pool.shutdown()


def test_the_profile_key_makes_a_worker_pool_and_refuses_a_decode_rule(tiny, tmp_path):
    cfg = config.load("configs/smoke.yaml", [f"run.artifacts_dir={tmp_path}", "run.generation_workers=2",
                                             "run.torch_threads=2"])
    assert "generation_workers" not in config.to_dict(config.load("configs/smoke.yaml"))["run"]  # hashed when set
    be = common.make_backend(cfg, tiny, cache=False)
    try:
        assert isinstance(be, ProcessPoolBackend) and be.parallel == 2
    finally:
        be.shutdown()
    ruled = config.load("configs/smoke.yaml", ["run.generation_workers=2", "world.arith.verdict_rule=compared_values"])
    with pytest.raises(ValueError, match="run.generation_workers = 2: worker processes serve the transformers backend "
                                         "without a decode rule"):
        common.make_backend(ruled, tiny, cache=False)


def test_one_pool_serves_every_backend_and_a_rewritten_model_is_reloaded(tiny, tmp_path):
    from scrit_utils.generation import process_pool

    a = ProcessPoolBackend("transformers", {"model": tiny, "batch_size": 4}, workers=2)
    b = ProcessPoolBackend("transformers", {"model": tiny, "batch_size": 8}, workers=2)
    assert a._pool is b._pool  # no second start of the processes
    # a worker's model cache (run here, in this process): the same folder is loaded once, a folder written again anew
    path = build_tiny_lm(tmp_path / "m", hidden=32, layers=2, seed=1)
    first = process_pool._backend("transformers", {"model": str(path), "batch_size": 4})
    assert process_pool._backend("transformers", {"model": str(path), "batch_size": 4}) is first
    for f in path.iterdir():  # the same folder, new weights (and file times)
        if f.is_file():
            f.unlink()
    build_tiny_lm(path, hidden=32, layers=2, seed=2)
    again = process_pool._backend("transformers", {"model": str(path), "batch_size": 4})
    assert again is not first
    assert not torch.equal(again.model.lm_head.weight, first.model.lm_head.weight)
    process_pool._WORKER_BACKENDS.clear()

"""Ray-sharded generation equals the unsharded run (local Ray cluster, 2 CPUs, transformers backend)."""
from __future__ import annotations

import pytest

from scrit_utils.critique import prompts
from scrit_utils.generation.distributed import RayGenerator, WorkerSpec, chunk_indices
from scrit_utils.generation import GenerationRequest, SamplingParams, derive_seed

from .scaleout_tiny import build_tiny_chat_model

# subprocesses, servers or whole real-data sets: `make test` runs them, `make test-fast` does not
pytestmark = pytest.mark.slow


def test_chunk_indices_cover_in_order():
    assert [list(r) for r in chunk_indices(7, 3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert chunk_indices(0, 3) == []
    with pytest.raises(ValueError, match="chunk_size"):
        WorkerSpec("transformers", chunk_size=0)


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="Ray is in the `distributed` extra: pip install -e '.[distributed]'")
    from scrit_utils.generation.distributed import init_ray

    init_ray(num_cpus=2, object_store_memory=80 * 1024 * 1024)
    yield ray
    ray.shutdown()


def test_sharded_generation_matches_unsharded(ray_cluster, tmp_path):
    from scrit_utils.generation.transformers_backend import TransformersBackend

    model = str(build_tiny_chat_model(tmp_path / "tiny"))
    reqs = [
        GenerationRequest(f"p{i}", prompts.direct_critic_messages(f"{i}+{i % 3}", f"Step 1: {i}+{i % 3}={2 * i}", "compact"),
                          seed=derive_seed(0, "critique", f"p{i}", 0))
        for i in range(10)
    ]
    greedy = SamplingParams(max_new_tokens=12)
    sampled = SamplingParams(max_new_tokens=12, temperature=1.0, top_p=0.95)
    local = TransformersBackend(model, device="cpu", batch_size=10)
    want_g = local.generate(reqs, greedy, progress=False)
    want_s = local.generate(reqs, sampled, progress=False)
    assert want_s != want_g

    spec = WorkerSpec("transformers", {"model": model, "device": "cpu", "batch_size": 2}, num_workers=2, chunk_size=3)
    with RayGenerator(spec) as gen:
        got_g = gen.generate(reqs, greedy, progress=False)
        pids = gen.last_run["requests_per_worker_pid"]
        got_s = gen.generate(reqs, sampled, progress=False)
        # a different chunking: same texts
        got_s2 = RayGenerator.generate(gen, list(reversed(reqs)), sampled, progress=False)[::-1]
    assert len(pids) == 2 and sum(pids.values()) == 10, f"both workers should take chunks: {pids}"
    assert got_g == want_g
    assert got_s == want_s
    assert got_s2 == want_s

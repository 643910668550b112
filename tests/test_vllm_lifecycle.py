"""One vLLM engine alive at a time, shut down through vLLM's API before the next model and on release.

vLLM is not installed on CPU, so a stand-in engine takes its place in the backend's EngineAPI: a tiny class
with vLLM 0.33.0's shape (``LLM(**kw)``, ``.generate(inputs, sampling_params, use_tqdm=)``,
``.llm_engine.engine_core.shutdown()``) that records every call. Everything else is the real code: the
backend, the toy tokenizer, ``pipeline.common.make_backend`` / ``release_backends`` and a GPU profile.
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from scrit_utils.core import config as _config
from scrit_utils.generation import GenerationRequest, SamplingParams
from scrit_utils.generation import vllm_backend as vb
from scrit_utils.pipeline import common

TOY_A, TOY_B = "models/toy-409k", "models/toy-150k"


class Recorder:
    def __init__(self):
        self.calls: list[tuple] = []


def fake_api(rec: Recorder) -> vb.EngineAPI:
    class FakeCore:
        def __init__(self, model):
            self.model = model

        def shutdown(self, timeout=None):
            rec.calls.append(("shutdown", self.model))

    class FakeLLM:
        def __init__(self, **kw):
            self.model = kw["model"].rsplit("/", 1)[-1]
            rec.calls.append(("start", self.model))
            self.llm_engine = SimpleNamespace(engine_core=FakeCore(self.model))

        def generate(self, inputs, sampling_params, use_tqdm=True):
            rec.calls.append(("generate", self.model, len(inputs)))
            # "generates" the prompt's last three tokens: a deterministic text the real tokenizer decodes
            return [SimpleNamespace(outputs=[SimpleNamespace(token_ids=x["prompt_token_ids"][-3:])]) for x in inputs]

    return vb.EngineAPI(FakeLLM, lambda **kw: kw, lambda: rec.calls.append(("cleanup",)))


@pytest.fixture
def rec(monkeypatch):
    r = Recorder()
    monkeypatch.setattr(vb, "ENGINE_API", fake_api(r))
    yield r
    vb.shutdown_live_engine()
    common.release_backends()


REQS = [GenerationRequest("q0", [{"role": "user", "content": "2 + 3 = ?"}], seed=1)]


def test_a_new_engine_shuts_the_previous_one_down_first(rec):
    a = vb.VLLMBackend(TOY_A)
    assert a.generate(REQS, SamplingParams(max_new_tokens=8)) and vb.live_engine() is a
    b = vb.VLLMBackend(TOY_B)
    # the old engine's core is shut down and vLLM's cleanup runs before the new engine starts
    assert rec.calls == [("start", "toy-409k"), ("generate", "toy-409k", 1), ("shutdown", "toy-409k"), ("cleanup",),
                         ("start", "toy-150k")]
    assert vb.live_engine() is b and not a.alive and b.alive and "shut down" in repr(a)
    with pytest.raises(RuntimeError, match=r"VLLMBackend\('models/toy-409k'.*shut down.*build a new backend"):
        a.generate(REQS, SamplingParams(max_new_tokens=8))
    b.shutdown()
    b.shutdown()  # idempotent: nothing is shut down twice
    assert rec.calls[-2:] == [("shutdown", "toy-150k"), ("cleanup",)] and vb.live_engine() is None


def test_context_manager_and_cleanup_after_a_failing_shutdown(rec):
    with vb.VLLMBackend(TOY_A) as a:
        a.generate(REQS, SamplingParams(max_new_tokens=8))
    assert rec.calls[-2:] == [("shutdown", "toy-409k"), ("cleanup",)]

    b = vb.VLLMBackend(TOY_B)

    def broken(timeout=None):
        raise RuntimeError("engine core died")

    b.llm.llm_engine.engine_core.shutdown = broken
    with pytest.raises(RuntimeError, match="engine core died"):
        b.shutdown()
    assert rec.calls[-1] == ("cleanup",) and not b.alive and vb.live_engine() is None  # cleaned up anyway


def test_pipeline_cache_keeps_one_engine_and_release_shuts_it_down(rec):
    cfg = _config.load("configs/qwen2.5-1.5b.yaml")  # generation.backend: vllm
    assert cfg.generation.backend == "vllm"
    a = common.make_backend(cfg, TOY_A)
    assert common.make_backend(cfg, TOY_A) is a  # cached while alive
    b = common.make_backend(cfg, TOY_B)  # another model: the first engine is shut down before it starts
    a2 = common.make_backend(cfg, TOY_A)  # the cached one is dead: rebuilt (after b is shut down)
    assert a2 is not a and a2.alive and not a.alive and not b.alive
    assert [c for c in rec.calls if c[0] != "cleanup"] == [
        ("start", "toy-409k"), ("shutdown", "toy-409k"), ("start", "toy-150k"),
        ("shutdown", "toy-150k"), ("start", "toy-409k")]
    common.release_backends()  # between generators and before training (pipeline.training.run_train)
    assert rec.calls[-2:] == [("shutdown", "toy-409k"), ("cleanup",)] and vb.live_engine() is None
    outside = vb.VLLMBackend(TOY_B)  # an engine built outside the cache is released too
    common.release_backends()
    assert not outside.alive and rec.calls[-2:] == [("shutdown", "toy-150k"), ("cleanup",)]

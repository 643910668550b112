"""Stage cache: hash keys, manifest written last, skip when finished, resumable files."""
from __future__ import annotations

import json

import pytest

from scrit_utils.core import artifacts, config
from scrit_utils.core.records import Problem


@pytest.fixture()
def cfg(tmp_path):
    return config.load("configs/smoke.yaml", [f"run.artifacts_dir={tmp_path / 'art'}"])


def _st(cfg, keys=("world", "data"), version="1", upstream=(), name="01_data"):
    return artifacts.stage(name, cfg, keys, version, upstream=upstream)


def test_hash_depends_on_slice_not_other_keys(cfg):
    base = _st(cfg)
    other_key = config.load("configs/smoke.yaml", [f"run.artifacts_dir={cfg.run.artifacts_dir}", "training.max_steps=99"])
    in_slice = config.load("configs/smoke.yaml", [f"run.artifacts_dir={cfg.run.artifacts_dir}", "data.cap_correct_per_generator=3"])
    assert _st(other_key).hash == base.hash
    assert _st(in_slice).hash != base.hash
    assert base.dir == config.resolve_path(cfg.run.artifacts_dir) / "01_data" / base.hash


def test_hash_depends_on_version_and_upstream(cfg):
    up1 = _st(cfg, name="01_data")
    up2 = _st(config.load("configs/smoke.yaml", ["world.arith.n_problems=7"]), name="01_data")
    assert up1.hash != up2.hash
    a = _st(cfg, keys=("validation",), name="03", upstream=[up1])
    b = _st(cfg, keys=("validation",), name="03", upstream=[up2])
    c = _st(cfg, keys=("validation",), name="03", upstream=[up1], version="2")
    assert len({a.hash, b.hash, c.hash}) == 3
    assert a.upstream == {"01_data": up1.hash}


def test_artifacts_dir_does_not_change_hash(tmp_path):
    a = config.load("configs/smoke.yaml", [f"run.artifacts_dir={tmp_path}/x"])
    b = config.load("configs/smoke.yaml", [f"run.artifacts_dir={tmp_path}/y"])
    assert _st(a).hash == _st(b).hash and _st(a).dir != _st(b).dir


def test_manifest_written_last_and_provenance(cfg):
    st = _st(cfg)
    assert not st.done
    out = st.jsonl("problems.jsonl", Problem)
    out.append([Problem(id="a", question="q", answer="1")])
    with pytest.raises(RuntimeError, match="unfinalized"):
        st.finish()  # a .partial file left means the stage is not finished
    assert not st.done
    out.finalize()
    order = []
    real_write = artifacts.write_json

    def spy(path, obj):
        order.append(path.name)
        real_write(path, obj)

    artifacts.write_json = spy
    try:
        m = st.finish(counts={"problems": 1})
    finally:
        artifacts.write_json = real_write
    assert order == ["config_slice.json", "manifest.json"]
    assert st.done
    disk = json.loads(st.manifest_path.read_text())
    assert disk == json.loads(json.dumps(m, default=str))
    for k in ("counts", "wall_time_s", "git_sha", "versions", "profile", "config_hash", "device", "files", "upstream"):
        assert k in disk, k
    assert disk["profile"] == "smoke"
    assert disk["files"]["problems.jsonl"] > 0 and "config_slice.json" in disk["files"]
    assert json.loads((st.dir / "config_slice.json").read_text()) == st.config_slice
    assert "torch" in disk["versions"] or "python" in disk["versions"]


def test_finished_stage_is_done_on_reload(cfg):
    st = _st(cfg)
    st.finish(counts={"n": 0})
    again = _st(cfg)
    assert again.done and again.manifest["counts"] == {"n": 0}
    assert artifacts.previous_wall_times(config.resolve_path(cfg.run.artifacts_dir), "01_data")


def test_interrupted_stage_resumes_items(cfg):
    st = _st(cfg)
    w = st.jsonl("x.jsonl", Problem)
    w.append([Problem(id=str(i), question="q", answer="1") for i in range(3)])
    # simulate a crash mid-line
    with open(w.partial, "a") as f:
        f.write('{"id": "3", "quest')
    st2 = _st(cfg)
    assert not st2.done
    w2 = st2.jsonl("x.jsonl", Problem)
    assert w2.done_ids == {"0", "1", "2"}
    w2.append([Problem(id=str(i), question="q", answer="1") for i in range(5)])
    w2.finalize()
    ids = [p.id for p in w2.records()]
    assert ids == ["0", "1", "2", "3", "4"]


def test_upstream_must_be_finished(cfg):
    up = _st(cfg)
    down = _st(cfg, keys=("validation",), name="03", upstream=[up])
    with pytest.raises(RuntimeError, match="has not finished"):
        down.up("01_data")
    up.finish()
    assert down.up("01_data").done


def test_rebuilt_weights_under_the_same_path_change_the_hash(tmp_path):
    model = tmp_path / "critic"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"weights v1")
    (model / "config.json").write_text("{}")
    cfg = config.load(config.REPO_ROOT / "configs" / "smoke.yaml",
                      overrides={"models.critic": str(model), "run.artifacts_dir": str(tmp_path / "a")})
    a = artifacts.stage("s", cfg, ["models.critic"], "1")
    assert a.config_slice["_models"] == {str(model): artifacts.model_digest(model)}
    assert artifacts.stage("s", cfg, ["models.critic"], "1").hash == a.hash
    (model / "model.safetensors").write_bytes(b"weights v2")
    assert artifacts.stage("s", cfg, ["models.critic"], "1").hash != a.hash
    assert artifacts.stage("s", cfg, ["run.seed"], "1").config_slice.get("_weights") is None


# --- recorded inputs (scrit_utils.core.inputs) -------------------------------------------------------
def test_view_records_leaves_and_whole_tuples(cfg):
    st = artifacts.stage("s", cfg, ["run.seed"], "1")
    v = st.record(cfg)
    assert v.generation.solve.temperature == cfg.generation.solve.temperature
    assert [g.name for g in v.models.generators] == ["toy-0.1m", "toy-0.3m"]
    assert config.get(v, "data.require_mixed") is True
    _ = v.source, v.run.torch_threads  # the file name and an inert key
    assert st.recorded["keys"] == ["data.require_mixed", "generation.solve.temperature", "models.generators",
                                   "run.torch_threads"]
    assert st.unrecorded() == ["config key data.require_mixed", "config key generation.solve.temperature",
                               "config key models.generators"]
    with pytest.raises(artifacts.inputs.UnrecordedInputError, match="models.generators"):
        st.finish()
    assert not st.done


def test_view_records_a_whole_section_when_converted(cfg):
    st = artifacts.stage("s", cfg, ["world"], "1")
    v = st.record(cfg)
    assert config.to_dict(v.world) == config.to_dict(cfg.world)
    config.to_dict(v.evaluation.bootstrap)
    assert st.recorded["keys"] == ["evaluation.bootstrap", "world"]
    assert st.unrecorded() == ["config key evaluation.bootstrap"]


def test_declared_prefix_covers_and_manifest_lists_inputs(cfg):
    st = artifacts.stage("s", cfg, ["world", "run.seed"], "1")
    v = st.record(cfg)
    _ = v.world.arith.max_steps, v.run.seed
    m = st.finish()
    assert m["inputs"]["keys"] == ["run.seed", "world.arith.max_steps"]


def test_opened_models_must_be_covered(cfg, tmp_path):
    from scrit_utils.core import inputs

    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text("{}")
    c = config.load("configs/smoke.yaml", {"models.critic": str(model), "run.artifacts_dir": str(tmp_path / "a")})
    up = artifacts.stage("up", c, ["run.seed"], "1")
    covered = artifacts.stage("s", c, ["models.critic"], "1", upstream=[up])
    covered.record(c)
    inputs.record_model(str(model))  # digested through models.critic
    inputs.record_model(str(up.dir / "model"))  # inside an upstream stage: its hash is in the key
    inputs.record_model("Qwen/Qwen2.5-7B-Instruct")  # a hub id no declared key names
    assert covered.unrecorded() == ["model Qwen/Qwen2.5-7B-Instruct"]
    covered.stop_recording()
    inputs.record_model("other")  # no stage recording: ignored
    assert "other" not in covered.recorded["models"]


def test_eval_base_stage_keys_the_benchmark_generators(tmp_path):
    """The toy benchmark's wrong items are natural errors of ``world.arith.benchmark_generators`` (#24): the eval
    stage reads them under its declared ``world`` key, their model dirs are digested into its key, and another
    benchmark generator is another stage."""
    from scrit_utils import worlds
    from scrit_utils.pipeline import training

    cfg = config.load("configs/smoke.yaml", {"run.artifacts_dir": str(tmp_path / "a"), "evaluation.n_items": 2})
    new = training.eval_base_stage(cfg)
    worlds.get(new.record(cfg)).build_benchmarks(new.path("bench"))
    assert new.unrecorded() == [] and "world.arith" in new.recorded["keys"]
    # the critic and the benchmark generator; the study's generators are no input of the evaluation (since #24)
    assert set(new.config_slice["_models"]) == {"models/toy-0.3m", "models/toy-0.6m"}
    other = config.load("configs/smoke.yaml", {"run.artifacts_dir": str(tmp_path / "a"), "evaluation.n_items": 2,
                                               "world.arith.benchmark_generators": [{"name": "g", "path": "models/toy-66k"}]})
    assert training.eval_base_stage(other).hash != new.hash


def test_model_digest_covers_tokenizer_and_template_not_logs(tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    for name, text in {"model.safetensors": "w", "config.json": "{}", "tokenizer.json": "t",
                       "chat_template.jinja": "c", "generation_config.json": "g", "train_log.json": "[]"}.items():
        (model / name).write_text(text)
    d0 = artifacts.model_digest(model)
    (model / "train_log.json").write_text("[1]")
    assert artifacts.model_digest(model) == d0
    for name in ("tokenizer.json", "chat_template.jinja", "generation_config.json", "model.safetensors"):
        (model / name).write_text("edited")
        d1 = artifacts.model_digest(model)
        assert d1 != d0, name
        d0 = d1

"""Stage cache: hash keys, manifest written last, skip when finished, resumable files."""
from __future__ import annotations

import json

import pytest

from scrit_utils import artifacts, config
from scrit_utils.records import Problem


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
    cfg = config.load(config.REPO_ROOT / "configs" / "smoke.yaml",
                      overrides={"models.critic": str(model), "run.artifacts_dir": str(tmp_path / "a")})
    a = artifacts.stage("s", cfg, ["models.critic"], "1")
    assert a.config_slice["_weights"] == {str(model): artifacts.weights_digest(model)}
    assert artifacts.stage("s", cfg, ["models.critic"], "1").hash == a.hash
    (model / "model.safetensors").write_bytes(b"weights v2")
    assert artifacts.stage("s", cfg, ["models.critic"], "1").hash != a.hash
    assert artifacts.stage("s", cfg, ["run.seed"], "1").config_slice.get("_weights") is None

"""Profiles load into typed frozen dataclasses; bad keys and types are errors naming the key and file."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from scrit_utils.core import config
from scrit_utils.core.config import ConfigError

REPO = config.REPO_ROOT

PROFILES = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def _write(tmp_path, data, name="p.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data))
    return p


def _smoke() -> dict:
    return config.profile_tree(config.REPO_ROOT / "configs" / "smoke.yaml")[0]


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.name)
def test_every_profile_loads(path):
    cfg = config.load(path)
    assert cfg.run.name
    assert cfg.source.endswith(path.name)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.run.seed = 3  # type: ignore[misc]


OWN_PROFILES = [p for p in PROFILES if p.name in ("smoke.yaml", "toy.yaml")]


@pytest.mark.parametrize("path", OWN_PROFILES, ids=lambda p: p.name)
def test_every_key_has_a_comment(path):
    for i, line in enumerate(path.read_text().splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("- {") or stripped.endswith(":"):
            # a list item of mappings / a section header: comments optional on sections
            continue
        assert "#" in line, f"{path.name}:{i}: key without a comment: {line!r}"


def test_types_are_converted():
    cfg = config.load("configs/smoke.yaml")
    assert isinstance(cfg.training.learning_rate, float)
    assert isinstance(cfg.generation.solve.max_new_tokens, int)
    assert isinstance(cfg.models.generators, tuple) and cfg.models.generators[0].name
    assert isinstance(cfg.evaluation.scenarios, tuple)


def test_unknown_key_names_dotted_key_and_file(tmp_path):
    d = _smoke()
    d["training"]["learnig_rate"] = 1e-3
    p = _write(tmp_path, d, "typo.yaml")
    with pytest.raises(ConfigError) as e:
        config.load(p)
    msg = str(e.value)
    assert "training.learnig_rate" in msg and "typo.yaml" in msg and "unknown key" in msg


def test_unknown_nested_key(tmp_path):
    d = _smoke()
    d["training"]["lora"]["rank"] = 4
    with pytest.raises(ConfigError, match=r"training\.lora\.rank: unknown key"):
        config.load(_write(tmp_path, d))


def test_unknown_section(tmp_path):
    d = _smoke()
    d["trainer"] = {}
    with pytest.raises(ConfigError, match=r"trainer: unknown key"):
        config.load(_write(tmp_path, d))


@pytest.mark.parametrize(
    "dotted, bad, expected",
    [
        ("training.learning_rate", "fast", "expected float"),
        ("training.max_steps", 2.5, "expected int"),
        ("training.use_lora", "yes", "expected bool"),
        ("generation.solve.temperature", [1], "expected float"),
        ("generation.backend", "torch", "expected one of"),
        ("evaluation.scenarios", ["wrong", "bogus"], "expected one of"),
        ("run.seed", True, "expected int"),
        ("models.generators", {"name": "x"}, "expected list of"),
    ],
)
def test_wrong_type_names_dotted_key_and_file(tmp_path, dotted, bad, expected):
    d = _smoke()
    node = d
    *parents, last = dotted.split(".")
    for k in parents:
        node = node[k]
    node[last] = bad
    p = _write(tmp_path, d, "bad.yaml")
    with pytest.raises(ConfigError) as e:
        config.load(p)
    msg = str(e.value)
    assert dotted in msg and "bad.yaml" in msg and expected in msg, msg


def test_error_inside_list_item_names_index(tmp_path):
    d = _smoke()
    d["models"]["generators"][1]["path"] = 3
    with pytest.raises(ConfigError, match=r"models\.generators\[1\]\.path: expected str"):
        config.load(_write(tmp_path, d))


def test_missing_required_key(tmp_path):
    d = _smoke()
    del d["models"]["critic"]
    with pytest.raises(ConfigError, match=r"models\.critic: required key is missing"):
        config.load(_write(tmp_path, d))


def test_overrides_as_strings_and_dict():
    a = config.load("configs/smoke.yaml", ["training.max_steps=7", "evaluation.scenarios=[mix]", "models.critic=x/y"])
    assert a.training.max_steps == 7 and a.evaluation.scenarios == ("mix",) and a.models.critic == "x/y"
    b = config.load("configs/smoke.yaml", {"training": {"max_steps": 7}, "validation.correct_ratio": 0.25})
    assert b.training.max_steps == 7 and b.validation.correct_ratio == 0.25
    base = config.load("configs/smoke.yaml")
    assert base.training.max_steps != 7  # overrides never leak into the file's config


def test_bad_override_names_key():
    with pytest.raises(ConfigError, match=r"training\.max_stepz: unknown key"):
        config.load("configs/smoke.yaml", ["training.max_stepz=3"])
    with pytest.raises(ConfigError, match=r"training\.max_steps: expected int.*override"):
        config.load("configs/smoke.yaml", ["training.max_steps=lots"])
    with pytest.raises(ConfigError, match="expected 'dotted.key=value'"):
        config.load("configs/smoke.yaml", ["training.max_steps"])


def test_base_models_section_checked_against_toy_build_config(tmp_path):
    d = _smoke()
    d["base_models"] = {"sizes": ["toy-0.1m"], "stepz": 3}
    with pytest.raises(ConfigError, match=r"base_models\.stepz: unknown key"):
        config.load(_write(tmp_path, d))


def test_real_models_expressible(tmp_path):
    d = _smoke()
    d["models"] = {"critic": "Qwen/Qwen2.5-7B-Instruct",
                   "generators": [{"name": "qwen-math-1.5b", "path": "Qwen/Qwen2.5-Math-1.5B-Instruct"}]}
    d["generation"]["backend"] = "vllm"
    d["generation"]["prompt_variant"] = "full"
    d["training"]["use_lora"] = True
    d["training"]["lora"]["target_modules"] = ["q_proj", "v_proj"]
    d["world"] = {"kind": "real", "real_sources": [{"name": "gsm8k", "path": "openai/gsm8k", "split": "train", "n": 100}]}
    cfg = config.load(_write(tmp_path, d))
    assert cfg.training.lora.target_modules == ("q_proj", "v_proj")
    assert cfg.world.real_sources[0].n == 100
    assert config.model_ref("Qwen/Qwen2.5-7B-Instruct") == "Qwen/Qwen2.5-7B-Instruct"


def test_config_slice_and_hash():
    a = config.load("configs/smoke.yaml")
    b = config.load("configs/smoke.yaml", ["training.max_steps=9"])
    keys = ["world", "data"]
    assert config.config_slice(a, keys) == config.config_slice(b, keys)
    assert config.config_hash(a) != config.config_hash(b)
    assert config.get(a, "generation.solve.temperature") == a.generation.solve.temperature
    with pytest.raises(KeyError):
        config.get(a, "generation.nope")


def test_world_arith_is_the_worlds_config_one_set_of_defaults():
    from scrit_utils.worlds.arith import ArithConfig

    cfg = config.load_dict({"run": {"name": "x"}, "models": {"critic": "c"}})
    assert cfg.world.arith == ArithConfig() and type(cfg.world.arith) is ArithConfig
    toy = config.load("configs/toy.yaml").world.arith  # the committed study's world, value for value
    assert (toy.n_problems, toy.split, toy.min_steps, toy.max_steps, toy.max_start, toy.max_addend, toy.max_factor,
            toy.max_value, toy.ops) == (4000, "train", 2, 5, 50, 30, 5, 299, ("+", "-", "*"))
    assert (toy.world_solutions, toy.injector, toy.verdict_rule) == (False, "world", None)
    assert [g.path for g in toy.benchmark_generators] == ["models/seed1/toy-409k", "models/seed1/toy-709k"]


@pytest.mark.parametrize("old,new,value", [
    ("generation.verdict_rule", "world.arith.verdict_rule", "compared_values"),
    ("data.world_solutions", "world.arith.world_solutions", True),
    ("self_critique.injector", "world.arith.injector", "world"),
])
def test_moved_toy_knobs_name_their_new_key(old, new, value, tmp_path):
    with pytest.raises(ConfigError, match=rf"{old}: moved to {new}.*set by override"):
        config.load("configs/smoke.yaml", [f"{old}={value}"])
    d = config.profile_tree(config.REPO_ROOT / "configs" / "smoke.yaml")[0]
    section, name = old.split(".")
    d[section][name] = value
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(d))
    with pytest.raises(ConfigError, match=rf"p.yaml: {old}: moved to {new}"):
        config.load(tmp_path / "p.yaml")
    assert config.get(config.load("configs/smoke.yaml", [f"{new}={value}"]), new) == value


def test_world_section_check_is_a_config_error():
    with pytest.raises(ConfigError, match="world.arith: ArithConfig: need 1 <= min_steps <= max_steps"):
        config.load("configs/smoke.yaml", ["world.arith.min_steps=9"])


def test_no_world_kind_branch_outside_worlds():
    import re

    hits = [f"{p.relative_to(config.REPO_ROOT)}:{i}" for p in (config.REPO_ROOT / "scrit_utils").rglob("*.py")
            if "worlds" not in p.parts
            for i, line in enumerate(p.read_text().splitlines(), 1) if re.search(r"world\.kind|kind\s*==\s*\"(arith|real)\"", line)]
    assert hits == []


def test_full_toy_profile_differs_from_the_core_only_where_it_says_so():
    """configs/toy-full.yaml is the core profile plus the full study's keys (each marked "full:" there)."""
    core, full = config.to_dict(config.load("configs/toy.yaml")), config.to_dict(config.load("configs/toy-full.yaml"))

    def flat(d, pre=""):
        out = {}
        for k, v in d.items():
            out.update(flat(v, f"{pre}{k}.") if isinstance(v, dict) else {f"{pre}{k}": v})
        return out

    a, b = flat(core), flat(full)
    diff = {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
    assert diff == {"run.name", "validation.direct_check_scope", "sweeps.baseline_data_sizes", "sweeps.rounds", "sweeps.readme", "sweeps.timing",
                    "sweeps.compare_runs", "ablations.variants", "ablations.single_generators"}
    text = (config.REPO_ROOT / "configs" / "toy-full.yaml").read_text()
    assert text.count("# full:") == len(diff)


def test_seed1_toy_profile_differs_from_the_core_only_in_its_models_and_names():
    """configs/toy-seed1.yaml (issue #14's robustness run) is the core design on the models/seed1/ bases."""
    core, rep = config.to_dict(config.load("configs/toy.yaml")), config.to_dict(config.load("configs/toy-seed1.yaml"))

    def flat(d, pre=""):
        out = {}
        for k, v in d.items():
            out.update(flat(v, f"{pre}{k}.") if isinstance(v, dict) else {f"{pre}{k}": v})
        return out

    a, b = flat(core), flat(rep)
    diff = {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
    assert diff == {"run.name", "models.critic", "models.generators", "sweeps.model_sizes", "sweeps.readme",
                    "sweeps.timing", "sweeps.compare_runs", "world.arith.benchmark_generators"}
    # the benchmark's natural errors come from the other build: seed 1's for the core, seed 0's here
    assert [g["path"].replace("models/", "models/seed1/") for g in b["world.arith.benchmark_generators"]] == \
        [g["path"] for g in a["world.arith.benchmark_generators"]]
    assert b["models.critic"] == a["models.critic"].replace("models/", "models/seed1/")
    assert [g["path"] for g in b["models.generators"]] == [g["path"].replace("models/", "models/seed1/") for g in a["models.generators"]]
    assert [g["name"] for g in b["models.generators"]] == [g["name"] for g in a["models.generators"]]
    assert list(b["sweeps.model_sizes"]) == [m.replace("models/", "models/seed1/") for m in a["sweeps.model_sizes"]]
    assert a["sweeps.compare_runs"] == [b["run.name"]] and b["sweeps.compare_runs"] == [a["run.name"]]
    text = (config.REPO_ROOT / "configs" / "toy-seed1.yaml").read_text()
    assert text.count("# seed1:") == len(diff) + 3  # the two generator lists mark both entries


# --- profiles as diffs (include:) ---------------------------------------------------------------------
def test_include_merges_sections_key_by_key_and_lists_replace(tmp_path):
    (tmp_path / "base.yaml").write_text((REPO / "configs" / "smoke.yaml").read_text().replace(
        "include: toy.yaml", f"include: {REPO / 'configs' / 'toy.yaml'}"))
    (tmp_path / "child.yaml").write_text("include: base.yaml\ntraining:\n  learning_rate: 0.5\n"
                                         "sweeps:\n  seeds: [7]\n")
    base, child = config.load(tmp_path / "base.yaml"), config.load(tmp_path / "child.yaml")
    assert child.training.learning_rate == 0.5 and child.sweeps.seeds == (7,)
    assert child.training.max_steps == base.training.max_steps  # the rest of the section is inherited
    tree, chain = config.profile_tree(tmp_path / "child.yaml")
    assert "include" not in tree and len(chain) == 3


def test_include_errors_name_the_file_and_key(tmp_path):
    (tmp_path / "a.yaml").write_text("include: b.yaml\n")
    (tmp_path / "b.yaml").write_text("include: a.yaml\n")
    with pytest.raises(ConfigError, match=r"include: circle .*a\.yaml -> .*b\.yaml -> .*a\.yaml"):
        config.load(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("include: missing.yaml\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: include: profile not found: missing\.yaml"):
        config.load(tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text(f"include: {REPO / 'configs' / 'toy.yaml'}\ntraining:\n  learning_rat: 1\n")
    with pytest.raises(ConfigError, match=r"d\.yaml: training\.learning_rat: unknown key"):
        config.load(tmp_path / "d.yaml")


def test_profiles_that_include_a_base_state_only_what_differs():
    for name in ("smoke", "toy-seed1", "toy-full", "qwen2.5-1.5b", "qwen2.5-32b", "qwen2.5-72b-instruct"):
        own = yaml.safe_load((REPO / "configs" / f"{name}.yaml").read_text())
        base_tree, _ = config.profile_tree(REPO / "configs" / own["include"])

        def same(a, b, path=""):
            for k, v in a.items():
                if k == "include":
                    continue
                if isinstance(v, dict) and isinstance(b.get(k), dict):
                    yield from same(v, b[k], f"{path}{k}.")
                elif k in b and b[k] == v:
                    yield f"{path}{k}"
        assert not list(same(own, base_tree)), f"{name}.yaml repeats its base's values: {list(same(own, base_tree))}"


def test_profile_not_found_lists_the_profiles():
    with pytest.raises(ConfigError, match=r"profile not found: nope\.yaml .*profiles: .*configs/toy\.yaml"):
        config.load("nope.yaml")

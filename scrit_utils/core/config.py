"""Study profiles: one YAML file -> frozen, typed dataclasses shared by every notebook.

A profile (``configs/*.yaml``) has one section per concern (``run``, ``world``, ``models``,
``generation``, ``data``, ``self_critique``, ``validation``, ``training``, ``evaluation``).
:func:`load` reads it, applies overrides and checks every key against the dataclasses below:
an unknown key or a value of the wrong type raises :class:`ConfigError` naming the file and
the dotted key (``configs/toy.yaml: training.learning_rate: expected float, got str 'fast'``).

Usage::

    from scrit_utils.core import config
    cfg = config.load("configs/smoke.yaml", ["training.max_steps=5", "data.max_problems=20"])
    cfg.training.learning_rate          # typed attribute access
    config.get(cfg, "generation.solve.temperature")
    config.to_dict(cfg)                 # plain dict (for hashing / provenance)

A profile may start with ``include: toy.yaml``: it then states only what it changes over that base
profile (sections merge key by key; a list or value replaces), and unknown keys are errors as in any
profile. ``scrit run`` freezes the resolved tree as ``results/runs/<name>/profile.yaml``.

Overrides are either a list of ``"dotted.key=value"`` strings (the value is parsed as YAML,
so ``x=3`` is an int and ``x=[a, b]`` a list) or a dict (nested or with dotted keys).
Relative paths inside a profile are resolved by the code that uses them against
:data:`REPO_ROOT`, so notebooks work both from the repo root (papermill) and ``notebooks/``.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import yaml

from scrit_utils.core.config_schema import HASHED_WHEN_SET, ConfigError, build as _build
from scrit_utils.core.arith_config import ArithConfig, benchmark_generator_clashes
from scrit_utils.core.arms import ARMS
from scrit_utils.core.study_config import AblationsConfig, SweepsConfig  # noqa: F401 (sections of StudyConfig)
from scrit_utils.core.inputs import ConfigView
from scrit_utils.core.inputs import unwrap

REPO_ROOT = Path(__file__).resolve().parents[2]  # scrit_utils/core/config.py -> the repository


# --- schema ----------------------------------------------------------------------
@dataclass(frozen=True)
class RunConfig:
    name: str  # profile name; executed notebooks go to results/runs/<name>/
    seed: int = 0
    artifacts_dir: str = "artifacts"
    results_dir: str = "results"
    torch_threads: int = 0  # 0 = leave torch's default
    notebooks: tuple[str, ...] = ()  # notebook numbers `scrit run` executes, in order (empty = all)
    # generation in this many worker processes, the threads split between them (hashed: one thread per process
    # rounds differently, and with continuous batching each worker has its own queue)
    generation_workers: int = field(default=1, metadata={HASHED_WHEN_SET: True})
    # sweeps' SFT: this many points at once, one thread each (hashed: rounds differently; study/train_workers.py)
    training_workers: int = field(default=1, metadata={HASHED_WHEN_SET: True})


@dataclass(frozen=True)
class RealSourceConfig:
    name: str  # e.g. "gsm8k"
    path: str  # local file / folder or hub id
    split: str = "train"
    n: int | None = None  # cap on problems from this source


@dataclass(frozen=True)
class WorldConfig:
    kind: Literal["arith", "real"] = "arith"  # scrit_utils.worlds.KINDS
    arith: ArithConfig = field(default_factory=ArithConfig)  # the toy world's config, its own knobs included
    real_sources: tuple[RealSourceConfig, ...] = ()


@dataclass(frozen=True)
class GeneratorModelConfig:
    name: str  # short label recorded on every solution
    path: str  # model dir or hub id
    revision: str | None = None


@dataclass(frozen=True)
class ModelsConfig:
    critic: str  # the model being improved (dir or hub id)
    generators: tuple[GeneratorModelConfig, ...] = ()
    critic_revision: str | None = None


@dataclass(frozen=True)
class StageSampling:
    max_new_tokens: int = 512
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    n: int = 1  # samples per item


@dataclass(frozen=True)
class GenerationConfig:
    backend: Literal["transformers", "vllm", "openai"] = "transformers"
    prompt_variant: Literal["full", "compact"] = "full"
    batch_size: int = 32
    dtype: str = "auto"
    device: str = "auto"
    base_url: str | None = None  # openai backend only
    tensor_parallel_size: int = 1  # vllm backend only
    # continuous batching (transformers backend): live rows, refilled as rows finish (hashed: other batch
    # compositions, so the texts of static batches up to float rounding, as generation.batch_size)
    max_num_seqs: int | None = field(default=None, metadata={HASHED_WHEN_SET: True})
    solve: StageSampling = field(default_factory=lambda: StageSampling(temperature=0.7))
    critique: StageSampling = field(default_factory=lambda: StageSampling(temperature=0.7))
    validation: StageSampling = field(default_factory=StageSampling)
    evaluation: StageSampling = field(default_factory=StageSampling)


@dataclass(frozen=True)
class DataConfig:
    max_problems: int | None = None  # problems kept after filtering (None = all)
    cap_correct_per_generator: int | None = None
    cap_incorrect_per_generator: int | None = None
    require_mixed: bool = True  # keep problems with >=1 correct and >=1 incorrect solution


@dataclass(frozen=True)
class SelfCritiqueConfig:
    mode: str = "contrastive"  # a row of scrit_utils.core.arms.ARMS
    max_pairs: int | None = None
    examples_shown: int = 3  # worked examples printed in notebook 02


@dataclass(frozen=True)
class ValidationConfig:
    direct_critic_approves: bool = True
    answer_matches_reference: bool = True
    verdict_matches_label: bool = True
    # all: check (i) on every critique (its own pass rate; the only_direct_critic ablation);
    # gated: only where the other enabled checks passed (the kept set is the same; ~1/4 of the generations)
    direct_check_scope: Literal["all", "gated"] = "all"
    correct_ratio: float = 0.5  # share of critiques of correct solutions in the SFT set
    max_examples: int | None = None


@dataclass(frozen=True)
class LoraConfig:
    r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] | str = "all-linear"
    bias: Literal["none", "all", "lora_only"] = "none"


@dataclass(frozen=True)
class TrainingConfig:
    use_lora: bool = False
    learning_rate: float = 5e-6
    num_train_epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides num_train_epochs
    per_device_train_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    warmup_ratio: float = 0.03
    lr_scheduler_type: str = "cosine"
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    max_length: int = 1024
    logging_steps: int = 10
    seed: int = 0
    bf16: bool = False
    gradient_checkpointing: bool = False
    save_merged: bool = True  # LoRA: also save the merged full model
    padding_free: bool = field(default=False, metadata={HASHED_WHEN_SET: True})  # TRL's; CPU: pipeline/sft_fast.py
    # false, padding-free on CPU: the loss from the logits, not TRL's fused LM head (same loss to rounding; sft_fast.py)
    fused_lm_head: bool = field(default=True, metadata={HASHED_WHEN_SET: True})
    lora: LoraConfig = field(default_factory=LoraConfig)


@dataclass(frozen=True)
class BootstrapConfig:
    n_resamples: int = 1000
    confidence: float = 0.95
    seed: int = 0


@dataclass(frozen=True)
class EvaluationConfig:
    benchmarks: tuple[str, ...] = ()  # toy: world benchmark names; real: task names / paths
    scenarios: tuple[Literal["wrong", "mix", "own"], ...] = ("wrong", "mix", "own")
    processbench: tuple[str, ...] = ()  # EI-F1 sets (toy: "arith"; real: gsm8k, math, ...)
    n_items: int | None = None  # cap per benchmark task and scenario
    realcritic_path: str = "../shared/data/realcritic"  # real world: RealCritic root (local dir or hub id)
    processbench_path: str = "../shared/data/processbench"  # real world: ProcessBench root (local dir or hub id)
    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)


@dataclass(frozen=True)
class StudyConfig:
    run: RunConfig
    models: ModelsConfig
    world: WorldConfig = field(default_factory=WorldConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    data: DataConfig = field(default_factory=DataConfig)
    self_critique: SelfCritiqueConfig = field(default_factory=SelfCritiqueConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    # toy world only: settings for `scrit build-base-models` (scrit_utils.toy_models.build.BuildConfig keys)
    base_models: dict = field(default_factory=dict)
    sweeps: SweepsConfig = field(default_factory=SweepsConfig)  # notebook 05 (Study)
    ablations: AblationsConfig = field(default_factory=AblationsConfig)  # notebook 06 (Study)
    source: str = field(default="", compare=False)  # the profile file it came from


# --- overrides ---------------------------------------------------------------------
def _set_dotted(tree: dict, dotted: str, value: Any, src: str) -> None:
    parts = dotted.split(".")
    node = tree
    for i, p in enumerate(parts[:-1]):
        nxt = node.get(p)
        if nxt is None:
            nxt = node[p] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(f"{src}: {'.'.join(parts[: i + 1])}: is not a section, cannot set {dotted}")
        node = nxt
    node[parts[-1]] = value


def parse_overrides(overrides: Sequence[str] | Mapping[str, Any] | None) -> dict[str, Any]:
    """Normalise overrides to ``{dotted_key: value}``."""
    if not overrides:
        return {}
    if isinstance(overrides, str):
        overrides = [overrides]
    out: dict[str, Any] = {}
    if isinstance(overrides, Mapping):
        def walk(d: Mapping, prefix: str) -> None:
            for k, v in d.items():
                key = f"{prefix}.{k}" if prefix else str(k)
                if isinstance(v, Mapping) and v:
                    walk(v, key)
                else:
                    out[key] = v
        walk(overrides, "")
        return out
    for item in overrides:
        if not isinstance(item, str) or "=" not in item:
            raise ConfigError(f"override {item!r}: expected 'dotted.key=value'")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"override {item!r}: empty key")
        try:
            out[key] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as e:
            raise ConfigError(f"override {item!r}: the value is not valid YAML ({yaml_problem(e)}); "
                              "quote the whole KEY=VALUE for the shell, e.g. 'run.notebooks=[\"01\", \"02\"]'") from None
    return out


def yaml_problem(e: yaml.YAMLError) -> str:
    """One line for a YAML error: what is wrong and where (PyYAML's own text spans several lines)."""
    mark = getattr(e, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{getattr(e, 'problem', None) or str(e).splitlines()[0]}{where}"


# --- public API -------------------------------------------------------------------
def resolve_profile(path: str | os.PathLike) -> Path:
    """Find a profile given relative to the cwd or to the repo root."""
    p = Path(path)
    if p.exists():
        return p.resolve()
    alt = REPO_ROOT / p
    if not p.is_absolute() and alt.exists():
        return alt.resolve()
    where = sorted({Path.cwd().resolve(), REPO_ROOT})  # one folder when run from the repo root
    names = sorted(str(q.relative_to(REPO_ROOT)) for q in (REPO_ROOT / "configs").glob("*.yaml"))
    stems = {Path(n).stem: n for n in names}  # compare names, not paths: every path shares "configs/"
    near = difflib.get_close_matches(p.stem, sorted(stems), n=1)
    hint = f"did you mean {stems[near[0]]}? " if near else ""
    raise ConfigError(f"profile not found: {path} (looked in {' and '.join(map(str, where))}); {hint}"
                      f"profiles: {', '.join(names)}")


#: keys that moved (old -> new); a profile or override still using the old one gets an error naming both
MOVED_KEYS = {
    "generation.verdict_rule": "world.arith.verdict_rule",
    "data.world_solutions": "world.arith.world_solutions",
    "self_critique.injector": "world.arith.injector",
    "evaluation.natural_errors": "world.arith.benchmark_generators",  # natural errors only since #24
}


def _check_moved(tree: Mapping, ov: Mapping, src: str) -> None:
    for old, new in MOVED_KEYS.items():
        section, name = old.split(".")
        if isinstance(tree.get(section), Mapping) and name in tree[section]:
            how = f" (set by override {old}={ov[old]!r})" if old in ov else ""
            raise ConfigError(f"{src}: {old}: moved to {new} (a toy-world knob lives under world.arith){how}")


def load_dict(data: Mapping, src: str = "<dict>", overrides=None) -> StudyConfig:
    tree = json.loads(json.dumps(data))  # deep copy, plain types
    ov = parse_overrides(overrides)
    for key, value in ov.items():
        _set_dotted(tree, key, value, f"{src} (override {key}={value!r})")
    _check_moved(tree, ov, src)
    try:
        cfg = _build(StudyConfig, tree, "", src)
    except ConfigError as e:
        msg = str(e)
        hit = [k for k in ov if msg.startswith(f"{src}: {k}:") or msg.startswith(f"{src}: {k}.")]
        if hit:
            raise ConfigError(f"{msg} (set by override {hit[0]}={ov[hit[0]]!r})") from None
        raise
    try:
        _check_arms(cfg, src)
    except ConfigError as e:
        hit = [k for k in ov if str(e).startswith(f"{src}: {k}")]
        if hit:
            raise ConfigError(f"{e} (set by override {hit[0]}={ov[hit[0]]!r})") from None
        raise
    _check_across_sections(cfg, src)
    bad = benchmark_generator_clashes(cfg, resolve_path)  # empty list (a real world's): nothing to check
    if bad:  # the toy benchmark's errors come from models that are neither a critic nor a study generator
        raise ConfigError(f"{src}: {bad[0]}")
    return dataclasses.replace(cfg, source=src)


def _check_arms(cfg: StudyConfig, src: str) -> None:
    """Arm names are rows of :data:`scrit_utils.core.arms.ARMS` (one table, not a Literal per key)."""
    known = ", ".join(repr(a) for a in ARMS)
    named = [("self_critique.mode", cfg.self_critique.mode)]
    named += [(f"sweeps.critic_modes[{i}]", m) for i, m in enumerate(cfg.sweeps.critic_modes)]
    for key, name in named:
        if name not in ARMS:
            raise ConfigError(f"{src}: {key}: expected one of {known}, got str {name!r}")


def _check_across_sections(cfg: StudyConfig, src: str) -> None:
    """Settings that are each valid but contradict one another."""
    v = cfg.validation
    variants = cfg.ablations.variants
    if v.direct_critic_approves and v.direct_check_scope == "gated" and (not variants or "only_direct_critic" in variants):
        raise ConfigError(
            f"{src}: validation.direct_check_scope: gated runs check (i) only where the other checks passed, but "
            f"ablations.variants {'(empty = all)' if not variants else list(variants)} includes only_direct_critic, "
            "which selects on check (i) alone: set validation.direct_check_scope: all")
    b = [str(x).rstrip("/") for x in cfg.sweeps.builds]
    if len(set(b)) != len(b):
        raise ConfigError(f"{src}: sweeps.builds: {sorted(x for x in set(b) if b.count(x) > 1)} listed twice")
    h = cfg.sweeps.headroom_builds
    if h and len(h) != max(len(b), 1):
        raise ConfigError(f"{src}: sweeps.headroom_builds: {len(h)} folder(s) for {max(len(b), 1)} build(s) "
                          f"(sweeps.builds); one per build, paired by position")


#: the key a profile names its base profile with; the profile then states only what it changes
INCLUDE_KEY = "include"


def _merge(base: Mapping, over: Mapping) -> dict:
    """``over`` on top of ``base``: sections (mappings) merge key by key; a list or a value replaces."""
    out = json.loads(json.dumps(base))
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def _read_yaml(p: Path, shown: str) -> dict:
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{shown}: invalid YAML: {yaml_problem(e)}") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{shown}: expected a mapping of sections at the top level")
    return dict(data)


def profile_tree(path: str | os.PathLike, _chain: tuple[Path, ...] = ()) -> tuple[dict, list[str]]:
    """The profile's plain tree with its ``include:`` chain resolved, and the chain (this file first).

    ``include: toy.yaml`` names a base profile relative to the including file's folder (or the repo
    root); the including file's sections are merged over the base's key by key."""
    p = resolve_profile(path)
    shown = _rel(p)
    if p in _chain:
        raise ConfigError(f"{shown}: include: circle " + " -> ".join(_rel(c) for c in (*_chain, p)))
    data = _read_yaml(p, shown)
    inc = data.pop(INCLUDE_KEY, None)
    if inc is None:
        return data, [shown]
    if not isinstance(inc, str):
        raise ConfigError(f"{shown}: {INCLUDE_KEY}: expected a profile path, got {type(inc).__name__} {inc!r}")
    base_path = p.parent / inc if (p.parent / inc).exists() else Path(inc)
    try:
        base, chain = profile_tree(base_path, (*_chain, p))
    except ConfigError as e:
        if str(e).startswith("profile not found"):
            raise ConfigError(f"{shown}: {INCLUDE_KEY}: {e}") from None
        raise
    return _merge(base, data), [shown, *chain]


def _rel(p: Path) -> str:
    try:
        return str(p.relative_to(REPO_ROOT))
    except ValueError:
        return str(p)


def load(path: str | os.PathLike, overrides=None) -> StudyConfig:
    """Load and validate a profile (its ``include:`` chain resolved); see the module docstring."""
    tree, chain = profile_tree(path)
    return load_dict(tree, chain[0], overrides)


def _at_default(obj: Any, f: dataclasses.Field) -> bool:
    default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    return getattr(obj, f.name) == default


def _late_and_unset(obj: Any, f: dataclasses.Field) -> bool:
    """A key added after results were committed (HASHED_WHEN_SET) at its default: left out of every hash."""
    return bool(f.metadata.get(HASHED_WHEN_SET)) and _at_default(obj, f)


def to_dict(cfg: Any) -> Any:
    """Plain nested dict/list form (JSON-serialisable); drops ``source`` and any key added after results were
    committed while it is at its default (:data:`~scrit_utils.core.config_schema.HASHED_WHEN_SET`: stage hashes that
    cover its section stay as they were). A recording view (:class:`scrit_utils.core.inputs.ConfigView`) records
    its whole section."""
    cfg = unwrap(cfg)
    if dataclasses.is_dataclass(cfg):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)
                if f.name != "source" and not _late_and_unset(cfg, f)}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    return cfg


def get(cfg: Any, dotted: str) -> Any:
    if isinstance(cfg, ConfigView):  # read through the view, so the key is recorded
        node = cfg
        for part in dotted.split("."):
            try:
                node = getattr(node, part)
            except AttributeError:
                raise KeyError(f"no config key {dotted!r}") from None
        return node
    node = cfg
    for part in dotted.split("."):
        if not dataclasses.is_dataclass(node) or part not in {f.name for f in dataclasses.fields(node)}:
            raise KeyError(f"no config key {dotted!r}")
        node = getattr(node, part)
    return node


def config_slice(cfg: StudyConfig, keys: Sequence[str]) -> dict[str, Any]:
    """``{dotted_key: plain value}`` for the keys a stage depends on; a key added after results were committed
    (:data:`~scrit_utils.core.config_schema.HASHED_WHEN_SET`) is left out while it is at its default, as
    :func:`to_dict` leaves it out of a section."""
    return {k: to_dict(get(cfg, k)) for k in sorted(keys) if not _unset_late_key(cfg, k)}


def _unset_late_key(cfg: Any, dotted: str) -> bool:
    parent, _, name = dotted.rpartition(".")
    node = unwrap(get(cfg, parent)) if parent else unwrap(cfg)
    if not dataclasses.is_dataclass(node):
        return False
    f = next((f for f in dataclasses.fields(node) if f.name == name), None)
    return f is not None and _late_and_unset(node, f)


def stable_hash(obj: Any, n: int = 12) -> str:
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:n]


def config_hash(cfg: StudyConfig) -> str:
    return stable_hash(to_dict(cfg))


def resolve_path(p: str | os.PathLike) -> Path:
    """A path from a profile: absolute stays, relative is taken from the repo root."""
    p = Path(p)
    return p if p.is_absolute() else REPO_ROOT / p


def looks_local(path_or_id: str) -> bool:
    """True when a model/data reference is a local path rather than a hub id."""
    return path_or_id.startswith((".", "/", "~")) or resolve_path(path_or_id).exists()


def model_ref(path_or_id: str) -> str:
    """Local paths resolved against the repo root; hub ids unchanged."""
    return str(resolve_path(path_or_id)) if looks_local(path_or_id) else path_or_id

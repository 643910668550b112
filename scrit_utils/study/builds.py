"""Base-model builds as a random effect: one study design run on several builds of one recipe.

A build is a folder of base models trained by one recipe with one build seed
(``scrit build-base-models --profile configs/base_models/v3_world.yaml`` writes ``models/v3/seed0/``,
``models/v3/seed1/``, ...). Every build holds the same model names, so a profile names its models
once (``models.critic: models/v3/seed0/toy-409k``) and lists the builds in ``sweeps.builds``;
notebook 05 runs the whole sweep once per build, with every local model path of the study
(``models.critic``, ``models.generators``, ``sweeps.model_sizes``) moved to the same name in that
build's folder. The benchmark's generators (``world.arith.benchmark_generators``) are never moved:
they are outside the study's builds by design (issue #24), and the items stay the same for every
build, which the hierarchical statistics need (:mod:`scrit_utils.study.hierarchical`).

Each point row carries its build's label (the folder as written in the profile); an empty
``sweeps.builds`` is one build, the profile's own models, labelled ``""``.

Usage::

    from scrit_utils.study import builds
    for label, bcfg in builds.each(cfg):    # [("models/v3/seed0", cfg0), ("models/v3/seed1", cfg1), ...]
        ...
"""
from __future__ import annotations

from pathlib import Path

from scrit_utils.core import config as _config
from scrit_utils.core.config import StudyConfig

__all__ = ["build_cfg", "each", "labels", "moved"]


def labels(cfg: StudyConfig) -> list[str]:
    """The builds' labels in profile order (``[""]``: one build, the profile's own models)."""
    return list(cfg.sweeps.builds) or [""]


def moved(path: str, root: str, key: str, listed: str, src: str) -> str:
    """The model ``path`` (profile key ``key``) taken from the build folder ``root`` (listed in the profile as
    ``listed``, e.g. ``sweeps.builds[0]``): the same model name there, an error if it is a hub id or not built."""
    if not _config.looks_local(path):
        raise ValueError(f"{src}: {listed} = {root}: {key} = {path} is a hub id; a build can only replace "
                         f"local model dirs")
    new = str(Path(root) / Path(path).name)
    if not _config.resolve_path(new).is_dir():
        raise ValueError(f"{src}: {listed} = {root}: no {Path(path).name} there ({key} = {path}); build it "
                         f"with `scrit build-base-models` (configs/base_models/) first")
    return new


def build_cfg(cfg: StudyConfig, i: int) -> StudyConfig:
    """The profile with every study model taken from build ``i`` of ``sweeps.builds`` (and no builds list)."""
    root, src, at = cfg.sweeps.builds[i], cfg.source, f"sweeps.builds[{i}]"
    for h in cfg.sweeps.headroom_builds[i:i + 1]:  # its headroom variant's critic, before any stage of any build runs
        moved(cfg.models.critic, h, "models.critic", f"sweeps.headroom_builds[{i}]", src)
    gens = [{**_config.to_dict(g), "path": moved(g.path, root, f"models.generators[{j}].path", at, src)}
            for j, g in enumerate(cfg.models.generators)]
    ov = {"models.critic": moved(cfg.models.critic, root, "models.critic", at, src),
          "models.generators": gens,
          "sweeps.model_sizes": [moved(p, root, f"sweeps.model_sizes[{j}]", at, src)
                                 for j, p in enumerate(cfg.sweeps.model_sizes)],
          "sweeps.builds": [],
          # the build's own headroom variant (paired by position; its critic checked above)
          "sweeps.headroom_builds": list(cfg.sweeps.headroom_builds[i:i + 1])}
    return _config.load_dict(_config.to_dict(cfg), cfg.source, ov)


def each(cfg: StudyConfig) -> list[tuple[str, StudyConfig]]:
    """``[(label, config)]`` for every build: the profile itself when ``sweeps.builds`` is empty.

    A build whose models are the profile's own (the usual first build) differs from the profile only in
    ``sweeps.builds``, which no data, training or evaluation stage reads: its stages are the ones notebooks
    01-04 already ran."""
    if not cfg.sweeps.builds:
        return [("", cfg)]
    return [(root, build_cfg(cfg, i)) for i, root in enumerate(cfg.sweeps.builds)]

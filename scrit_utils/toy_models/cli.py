"""``scrit build-base-models``: build settings from a profile YAML, then :func:`~scrit_utils.toy_models.build.build_base_models`.

Usage::

    scrit build-base-models --profile configs/base_models/v2_world.yaml --sizes toy-66k --jobs 1
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
from pathlib import Path
from typing import Sequence

from scrit_utils.toy_models.build import SIZES, build_base_models, config_from_dict
from scrit_utils.worlds import arith


def config_from_profile(path: str | None) -> dict:
    """Seed, world knobs and an optional ``base_models:`` section from a profile YAML."""
    if not path:
        return {}
    import yaml

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"profile {path} not found")
    raw = yaml.safe_load(p.read_text()) or {}
    d: dict = {}
    if isinstance(raw.get("run"), dict) and "seed" in raw["run"]:
        d["seed"] = int(raw["run"]["seed"])
    w = (raw.get("world") or {}).get("arith") or {}
    wk = {f.name for f in dataclasses.fields(arith.ArithConfig)}
    d["world"] = {k: v for k, v in w.items() if k in wk}
    d.update(raw.get("base_models") or {})
    return d


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("build-base-models", help="train the toy world's tokenizer + base models")
    _add_args(p)
    p.set_defaults(func=lambda a: _run(a))


def _add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default=None, help="profile YAML (run.seed, world.arith, optional base_models:)")
    p.add_argument("--out", default=None, help="output dir (default models/)")
    p.add_argument("--sizes", nargs="+", default=None, help=f"subset of {list(SIZES)}")
    p.add_argument("--jobs", type=int, default=None, help="concurrent trainings")
    p.add_argument("--seed", type=int, default=None, help="build seed (default: the profile's run.seed)")
    p.add_argument("--steps-scale", type=float, default=None)
    p.add_argument("--force", action="store_true", help="retrain even when a model dir is complete")


def _run(a: argparse.Namespace) -> int:
    d = config_from_profile(a.profile)
    for key, val in (("out_dir", a.out), ("sizes", a.sizes), ("jobs", a.jobs), ("steps_scale", a.steps_scale),
                     ("seed", a.seed)):
        if val is not None:
            d[key] = val
    cfg = config_from_dict(d)
    if a.force:
        for s in cfg.sizes:
            shutil.rmtree(Path(cfg.out_dir) / s, ignore_errors=True)
    for path in build_base_models(cfg):
        info = json.loads((path / "build_info.json").read_text())
        print(f"{path}: {info['n_params']} params, {info['steps']} steps, {info['train_seconds']} s")
    return 0


def main_build_base_models(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scrit build-base-models")
    _add_args(p)
    return _run(p.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main_build_base_models())

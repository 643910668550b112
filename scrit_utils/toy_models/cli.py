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

from scrit_utils.core import config
from scrit_utils.core.cli_args import OneLineParser, fail
from scrit_utils.toy_models.build import SIZES, build_many, plan_from_dict
from scrit_utils.worlds import arith


def config_from_profile(path: str | None) -> dict:
    """Seed, world knobs and an optional ``base_models:`` section from a profile YAML (its ``include:`` chain
    resolved, so a profile that includes toy.yaml builds in toy.yaml's world)."""
    if not path:
        return {}
    raw, _ = config.profile_tree(path)  # ConfigError naming the profiles when the file does not exist
    d: dict = {}
    if isinstance(raw.get("run"), dict) and "seed" in raw["run"]:
        d["seed"] = int(raw["run"]["seed"])
    w = (raw.get("world") or {}).get("arith") or {}
    wk = {f.name for f in dataclasses.fields(arith.ArithConfig)}
    d["world"] = {k: v for k, v in w.items() if k in wk}
    d.update(raw.get("base_models") or {})
    return d


DESCRIPTION = """\
Train the toy world's tokenizer and base "instruct" models (the critic and generators of the toy profiles)
into models/<size>/. A complete model dir is kept (delete it or pass --force to retrain); an interrupted
training resumes from its checkpoint. Settings: the profile's run.seed, world.arith and base_models
sections, then these options. Recipe and sizes: scrit_utils/toy_models/build.py, models/README.md."""

EPILOG = f"""\
examples:
  scrit build-base-models --profile configs/toy.yaml                       # every size missing under models/
  scrit build-base-models --profile configs/toy.yaml --sizes toy-409k --jobs 1
  scrit build-base-models --profile configs/toy.yaml --seed 1 --out models/seed1   # build seed 1 (make study-seed1
                                                          # first copies models/tokenizer there, to share it)
  scrit build-base-models --profile configs/toy.yaml --sizes toy-66k --steps-scale 0.1 --out /tmp/m  # quick try
  scrit build-base-models --profile configs/base_models/v3_world.yaml     # v3: its seeds and variants
  scrit build-base-models --profile configs/base_models/v3_world.yaml --seeds 0 --variants   # seed 0, no variant

sizes: {', '.join(SIZES)}"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("build-base-models", help="train the toy world's tokenizer + base models",
                              description=DESCRIPTION, epilog=EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_args(p)
    p.set_defaults(func=lambda a: _run(a))


def _add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default=None, metavar="YAML",
                   help="profile whose run.seed, world.arith and optional base_models: section set the build "
                        "(default: the recipe's own defaults), e.g. configs/toy.yaml")
    p.add_argument("--out", default=None, metavar="DIR", help="output folder, one subfolder per size (default models/)")
    p.add_argument("--sizes", nargs="+", default=None, choices=list(SIZES), metavar="SIZE",
                   help=f"build only these sizes (default: all of {', '.join(SIZES)})")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="trainings run at the same time (default: base_models.jobs); each uses base_models.threads "
                        "torch threads")
    p.add_argument("--seed", type=int, default=None,
                   help="build seed: problems, seed critiques, batch order and initial weights (default: the "
                        "profile's run.seed); a different seed gives an independent build of the same recipe")
    p.add_argument("--seeds", type=int, nargs="+", default=None, metavar="N",
                   help="build these seeds, each into base_models.out_dir with {seed} replaced (default: the "
                        "profile's base_models.seeds, else --seed / run.seed)")
    p.add_argument("--variants", nargs="*", default=None, metavar="NAME",
                   help="build only these named variants of base_models.variants beside the main build (default: "
                        "every one; --variants alone: none)")
    p.add_argument("--steps-scale", type=float, default=None, metavar="X",
                   help="multiply every size's training steps by X (default 1.0); e.g. 0.1 for a quick, weak "
                        "build to try the pipeline, never for the study's models")
    p.add_argument("--force", action="store_true", help="retrain even when a model dir is complete (deletes it first)")


def _run(a: argparse.Namespace) -> int:
    try:
        d = config_from_profile(a.profile)
        for key, val in (("out_dir", a.out), ("jobs", a.jobs), ("steps_scale", a.steps_scale), ("seed", a.seed)):
            if val is not None:
                d[key] = val
        seeds = a.seeds if a.seeds is not None else ([a.seed] if a.seed is not None else None)
        # --sizes keeps those sizes of every build (a variant's own sizes too), instead of setting the main ones
        plan = plan_from_dict(d, seeds=seeds, variants=a.variants, sizes=a.sizes)
    except config.ConfigError as e:  # names the profile itself
        return fail("scrit build-base-models", e)
    except ValueError as e:  # the build settings, checked before any training
        return fail("scrit build-base-models", f"{a.profile or 'options'}: {e}")
    cfgs = [cfg for _, cfg in plan]
    if a.force:
        for cfg in cfgs:
            for s in cfg.sizes:
                shutil.rmtree(Path(cfg.out_dir) / s, ignore_errors=True)
    for path in build_many(cfgs):
        info = json.loads((path / "build_info.json").read_text())
        print(f"{path}: {info['n_params']} params, {info['steps']} steps, {info['train_seconds']} s")
    return 0


def main_build_base_models(argv: Sequence[str] | None = None) -> int:
    p = OneLineParser(prog="scrit build-base-models", description=DESCRIPTION, epilog=EPILOG)
    _add_args(p)
    return _run(p.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main_build_base_models())

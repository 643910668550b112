"""The ``scrit`` command line: one argparse parser, subcommands registered from their own modules.

Each subcommand module exposes ``add_parser(subparsers)``, which adds its parser and sets
``func`` (a handler taking the parsed args and returning an exit code). To add a subcommand,
append its module to :data:`SUBCOMMAND_MODULES`. A module that fails to import does not break the
other subcommands: its name stays registered and reports the import error when used.

Usage::

    scrit eval cc --benchmark ../shared/data/realcritic --scenario mix_data --critiques crit.jsonl
    scrit run --profile configs/toy.yaml
    python -m scrit_utils.cli --help
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

#: (module, subcommand name) pairs; each module defines add_parser(subparsers)
SUBCOMMAND_MODULES: tuple[tuple[str, str], ...] = (
    ("scrit_utils.eval_cli", "eval"),
    ("scrit_utils.driver", "run"),
    ("scrit_utils.toy_models.cli", "build-base-models"),
    ("scrit_utils.data_cli", "data"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scrit", description="SCRIT reproducible study")
    sub = parser.add_subparsers(dest="command", required=True)
    for module, name in SUBCOMMAND_MODULES:
        try:
            importlib.import_module(module).add_parser(sub)
        except Exception as e:  # keep the other subcommands usable; report when this one is used
            broken = sub.add_parser(name, help=f"(unavailable: {type(e).__name__})")
            broken.set_defaults(func=lambda a, m=module, err=e: _broken(m, err))
    return parser


def _broken(module: str, err: Exception) -> int:
    print(f"scrit: error: could not load {module}: {type(err).__name__}: {err}", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())

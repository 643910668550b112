"""The ``scrit`` command line: one argparse parser, subcommands registered from their own modules.

Each subcommand module exposes ``add_parser(subparsers)``, which adds its parser and sets
``func`` (a handler taking the parsed args and returning an exit code). To add a subcommand,
append its module to :data:`SUBCOMMAND_MODULES`. A module that fails to import does not break the
other subcommands: its name stays registered and reports the import error when used.

Every failure of the command line itself is one line on stderr naming the problem (a usage error,
a profile that does not exist, an unknown key, a malformed ``--set``), never a traceback:
:class:`scrit_utils.core.cli_args.OneLineParser` for usage errors, :func:`main` for profile errors.

Usage::

    scrit --version
    scrit run --profile configs/smoke.yaml
    scrit eval cc --benchmark ../shared/data/realcritic --scenario mix_data --critiques crit.jsonl
    python -m scrit_utils.cli --help
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from scrit_utils.core.cli_args import OneLineParser, fail
from scrit_utils.core.config_schema import ConfigError

#: (module, subcommand name) pairs; each module defines add_parser(subparsers)
SUBCOMMAND_MODULES: tuple[tuple[str, str], ...] = (
    ("scrit_utils.eval_cli", "eval"),
    ("scrit_utils.driver", "run"),
    ("scrit_utils.toy_models.cli", "build-base-models"),
    ("scrit_utils.data_cli", "data"),
)

DESCRIPTION = """\
SCRIT (self-evolving critic) reproduced as a study: a profile (configs/*.yaml) names the models, the data
and every setting; `scrit run` executes the study notebooks for it, caching each stage under artifacts/."""

EPILOG = """\
examples:
  scrit run --profile configs/smoke.yaml        # notebooks 01-04 on tiny settings, ~3 min on 2 CPU cores
  scrit run --profile configs/toy-v3.yaml       # make study: the v3 study, notebooks 01-06, ~55 min -> results/README.md
  scrit run --profile configs/toy.yaml --only 03 --set validation.correct_ratio=0.25
  scrit build-base-models --profile configs/toy.yaml --sizes toy-409k
  scrit eval cc --benchmark ../shared/data/realcritic --scenario mix_data --critiques crit.jsonl

`scrit <command> --help` describes a command and its options."""


def version_text() -> str:
    """``scrit 0.1.0 (git 83cd0f1a2b3c)``: the package version and, in a git checkout, its commit
    (``+dirty`` when tracked files changed)."""
    from scrit_utils.core import artifacts
    from scrit_utils.core.version import __version__

    sha = artifacts.git_sha()
    if sha == "unknown":
        return f"scrit {__version__}"
    head, _, dirty = sha.partition("+")
    return f"scrit {__version__} (git {head[:12]}{'+' + dirty if dirty else ''})"


class _Version(argparse.Action):
    """``--version``, computed when asked (the git lookup costs two subprocesses, not paid by other commands)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_text())  # stdout, as argparse's own version action (parser.exit writes to stderr)
        parser.exit(0)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="scrit", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action=_Version, help="print the package version and git commit, then exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                title="commands", parser_class=OneLineParser)
    for module, name in SUBCOMMAND_MODULES:
        try:
            importlib.import_module(module).add_parser(sub)
        except Exception as e:  # keep the other subcommands usable; report when this one is used
            broken = sub.add_parser(name, help=f"(unavailable: {type(e).__name__})")
            broken.set_defaults(func=lambda a, m=module, err=e: _broken(m, err))
    return parser


def _broken(module: str, err: Exception) -> int:
    return fail("scrit", f"could not load {module}: {type(err).__name__}: {err}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as e:  # a bad profile or --set, whichever subcommand read it: one line, no traceback
        return fail(f"scrit {args.command}", e)


if __name__ == "__main__":
    sys.exit(main())

"""Command-line pieces every ``scrit`` entry point shares, so they behave the same everywhere.

- :class:`OneLineParser`: an ``argparse`` parser whose usage errors are one line naming the problem
  and pointing to ``--help`` (argparse's default prints the whole usage block first);
- :func:`add_set_option`: ``--set KEY=VALUE [KEY=VALUE ...]``, repeatable; ``--set a=1 b=2`` and
  ``--set a=1 --set b=2`` give the same list, in order;
- :func:`fail`: the one-line error of a command that parsed but cannot run (bad profile, bad key).

Used by ``scrit`` (:mod:`scrit_utils.cli`), ``scrit run`` (:mod:`scrit_utils.driver`),
``scrit build-base-models`` (:mod:`scrit_utils.toy_models.cli`) and ``scripts/train_sft.py``::

    p = OneLineParser(prog="scrit run", description="...")
    add_set_option(p)
    args = p.parse_args(["--set", "training.max_steps=5", "data.max_problems=20"])
    args.overrides  # ['training.max_steps=5', 'data.max_problems=20']
"""
from __future__ import annotations

import argparse
import sys

SET_HELP = ("override profile keys: dotted KEY=VALUE pairs, the value read as YAML (5 is an int, [a, b] a list); "
            "several after one --set or --set repeated, e.g. --set training.max_steps=20 data.max_problems=50")


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line: ``scrit run: error: the following arguments are required: --profile
    (see scrit run --help)``. Subparsers made by ``add_subparsers`` inherit the class."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)  # keep examples' line breaks
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def key_value(text: str) -> str:
    """argparse type of a ``--set`` item: ``dotted.key=value`` with a non-empty key (the value may be empty)."""
    key, eq, _ = text.partition("=")
    if not eq or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE, e.g. training.max_steps=20")
    return text


def add_set_option(p: argparse.ArgumentParser, dest: str = "overrides") -> None:
    """``--set KEY=VALUE ...`` (repeatable) collecting every pair, in order, into ``args.<dest>``."""
    p.add_argument("--set", dest=dest, action="extend", nargs="+", default=[], type=key_value,
                   metavar="KEY=VALUE", help=SET_HELP)


def fail(prog: str, err: BaseException | str, code: int = 1) -> int:
    """Print ``<prog>: error: <err>`` as one line on stderr; returns ``code`` for the caller to exit with."""
    text = " ".join(line.strip() for line in str(err).splitlines() if line.strip())  # line breaks -> one line
    print(f"{prog}: error: {text}", file=sys.stderr)
    return code

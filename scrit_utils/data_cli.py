"""``scrit data``: get the real evaluation data (RealCritic, ProcessBench, GSM8K, Qwen2.5-Math sets) and check it.

    scrit data fetch [--data-dir DIR] [--only realcritic processbench ...] [--base-url URL]
    scrit data verify [--data-dir DIR]
    scrit data list

``fetch`` downloads every file of :mod:`scrit_utils.core.data_sources` from its pinned public commit,
checks its sha256 and writes ``MANIFEST.json`` (:mod:`scrit_utils.core.data_fetch`); ``verify`` re-hashes a
folder against the table; ``list`` prints the sources, their commits and where the data folder is.
Without ``--data-dir`` the folder is the project's data setting (:mod:`scrit_utils.core.data_dir`:
``SCRIT_DATA_DIR``, else ``../shared/data`` when present, else ``data/real``). ``make data`` runs
``scrit data fetch``.
"""
from __future__ import annotations

import argparse
import sys

from scrit_utils.core import data_dir, data_fetch, data_sources


def _fetch(args) -> int:
    root = data_dir.data_dir(args.data_dir)
    if data_dir.SHARED.exists() and root == data_dir.SHARED.resolve():  # never written into
        bad = data_fetch.verify(root, args.only)
        print(f"{root} is the team's read-only copy; verified: "
              f"{'all files match' if not bad else f'{len(bad)} differ'} (pass --data-dir to fetch elsewhere)")
        return 0 if not bad else 1
    try:
        data_fetch.fetch(root, args.only, base_url=args.base_url, timeout=args.timeout)
    except (data_fetch.ChecksumError, data_fetch.FetchError, ValueError) as e:
        print(f"scrit data fetch: error: {e}", file=sys.stderr)
        return 1
    if root != data_dir.data_dir():
        print(f"to use it: export {data_dir.ENV}={root}   (or pass --data-dir {root})")
    return 0


def _verify(args) -> int:
    root = data_dir.data_dir(args.data_dir)
    try:
        bad = data_fetch.verify(root, args.only)
    except ValueError as e:
        print(f"scrit data verify: error: {e}", file=sys.stderr)
        return 1
    n = len(data_sources.files(args.only))
    for path, problem in sorted(bad.items()):
        print(f"{root / path}: {problem}")
    print(f"{root}: {n - len(bad)}/{n} files match data_sources.py"
          + (f"; fetch the rest: {data_dir.fetch_command(root)}" if bad else ""))
    return 0 if not bad else 1


def _list(args) -> int:
    root = data_dir.data_dir(args.data_dir)
    print(f"data folder: {root} ({'present' if root.exists() else 'absent'})")
    for s in data_sources.SOURCES.values():
        fs = data_sources.files([s.name])
        mb = sum(f.size for f in fs) / 1e6
        print(f"  {s.name:13s} github.com/{s.repo} @ {s.commit[:7]}  {len(fs)} files, {mb:.1f} MB, {s.license}: {s.what}")
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("data", help="download and check the real evaluation data",
                              description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="data_command", required=True)

    def common(q):
        q.add_argument("--data-dir", default=None, metavar="DIR",
                       help=f"data folder (default: ${data_dir.ENV}, else ../shared/data when present, else data/real)")
        q.add_argument("--only", nargs="+", choices=sorted(data_sources.SOURCES), metavar="SOURCE",
                       help=f"only these sources ({', '.join(sorted(data_sources.SOURCES))})")

    f = sub.add_parser("fetch", help="download the data from its public homes, checksums checked")
    common(f)
    f.add_argument("--base-url", default=data_sources.RAW_BASE,
                   help="a mirror with raw.githubusercontent.com's layout (<repo>/<commit>/<path>); file:// works")
    f.add_argument("--timeout", type=float, default=60.0, help="seconds per connection attempt")
    f.set_defaults(func=_fetch)
    v = sub.add_parser("verify", help="check a data folder's files against the recorded sha256")
    common(v)
    v.set_defaults(func=_verify)
    ls = sub.add_parser("list", help="sources, pinned commits and the data folder in use")
    ls.add_argument("--data-dir", default=None, metavar="DIR")
    ls.set_defaults(func=_list)
    return p

"""Compare two result trees of the same profile byte for byte: every table, metrics JSON and critique
file, after writing each tree's own root as ``<root>`` and blanking provenance that names a commit
or a clock (git sha, timestamps, wall times). Used to show that a refactor changed no number.

    # run the smoke profile at two commits into two folders, then
    python scripts/compare_run_outputs.py /tmp/smoke-before /tmp/smoke-after
    # exit status 0 = identical; the differing files are listed otherwise
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

#: what is compared: tables, metrics and critiques (manifests, logs and READMEs carry times and shas)
KINDS = (".csv", ".jsonl")
NAMES = ("metrics.json", "points.json", "04_metrics.json", "summary.json")
TABLE_MD = re.compile(r"results/tables/")
#: provenance values that differ between two runs of the same code: blanked before comparing
VOLATILE = re.compile(r'("(?:sha|git_sha|run_sha|created|created_at|finished_at|started_at|wall_time_s|wall_s|time_s|'
                      r'train_runtime|train_samples_per_second|train_steps_per_second|device|interactive|'
                      r'scrit_utils)":\s*)("[^"]*"|[0-9.eE+-]+|true|false)')


def compared(root: Path) -> dict[str, Path]:
    out = {}
    for p in root.rglob("*"):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and (p.suffix in KINDS or p.name in NAMES or (p.suffix == ".md" and TABLE_MD.search(rel))):
            out[rel] = p
    return out


def normalised(path: Path, root: Path) -> str:
    text = path.read_text(encoding="utf-8").replace(str(root.resolve()), "<root>").replace(str(root), "<root>")
    return VOLATILE.sub(r"\1null", text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    a = ap.parse_args(argv)
    fa, fb = compared(a.before), compared(a.after)
    missing, extra = sorted(set(fa) - set(fb)), sorted(set(fb) - set(fa))
    differ = [k for k in sorted(set(fa) & set(fb)) if normalised(fa[k], a.before) != normalised(fb[k], a.after)]
    for k in missing:
        print(f"only in {a.before}: {k}")
    for k in extra:
        print(f"only in {a.after}: {k}")
    for k in differ:
        print(f"differs: {k}")
    same = len(set(fa) & set(fb)) - len(differ)
    print(f"{same} files identical, {len(differ)} differ, {len(missing)} + {len(extra)} only on one side")
    return 1 if differ or missing or extra else 0


if __name__ == "__main__":
    sys.exit(main())

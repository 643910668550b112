#!/usr/bin/env python
"""Study v3's dev pilot report: variance components, the MDE of every candidate design, stage timings.

Reads the finished notebook-05 summary stage of a pilot profile (``configs/toy-v3-pilot.yaml``: dev split only;
an error if the profile evaluates on the benchmark split) and writes ``results/pilot/v3_pilot.md`` with the
profile, git sha, the per-claim variance components (:mod:`scrit_utils.study.pilot_v3`), the MDE grid over
builds x seeds x items and the wall time per stage kind, from which the open items of
``results/pilot/PREREGISTRATION_v3.md`` are fixed.

Usage::

    .venv/bin/scrit run --profile configs/toy-v3-pilot.yaml --set 'run.notebooks=["01","02","03","04","05"]'
    .venv/bin/python scripts/pilot_v3.py --profile configs/toy-v3-pilot.yaml
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="configs/toy-v3-pilot.yaml")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="profile overrides, as with scrit run")
    ap.add_argument("--out", default=str(REPO / "results" / "pilot" / "v3_pilot.md"))
    ap.add_argument("--n-boot", type=int, default=500)
    a = ap.parse_args(argv)

    from scrit_utils.core import config
    from scrit_utils.core.provenance import run_stamp
    from scrit_utils.core.records import atomic_write_text
    from scrit_utils.study import pilot_v3, preregistration, sweeps
    from scrit_utils.study.readme import markdown, stage_walls

    cfg = config.load(a.profile, a.set)
    if cfg.world.arith.eval_split != "dev":
        raise SystemExit(f"{a.profile}: world.arith.eval_split is {cfg.world.arith.eval_split!r}; a pilot reads dev only")
    st = sweeps.scaling_stage(cfg)
    if not st.done:
        raise SystemExit(f"{a.profile}: notebook 05 has not finished ({st.dir}); run the pilot first")
    rows = sweeps.load_points(st)
    cells, notes = preregistration.cells_from_points(rows)
    comp = pilot_v3.components(cells, size=sweeps.fixed_size(cfg), n_boot=a.n_boot)  # the claims' size
    grid = pilot_v3.mde_grid(comp)
    secs = stage_walls(sweeps.stage_dirs(rows)).groupby("stage")["wall_s"].sum()  # wall seconds per stage kind
    stamp = run_stamp(cfg)
    lines = [f"# Study v3 dev pilot ({cfg.run.name})", "",
             f"Profile `{a.profile}`{' with ' + ' '.join(a.set) if a.set else ''}, git `{stamp['sha']}`, dev split only. "
             "Written by `scripts/pilot_v3.py`. The estimates below are the pilot's, on dev: recorded, never reused "
             "as claims.", "", "## Variance components (points, CC-Acc on deliberately incorrect solutions)", "",
             markdown(comp, ".2f"), "", *[f"- {n}" for n in notes], "",
             "## MDE of each design (alpha 0.05, power 0.8; t on the Welch df)", "",
             markdown(grid, ".1f"), "", "## Wall time per stage kind (s)", "",
             markdown(secs.rename("seconds").reset_index(), ".0f"), ""]
    out = Path(a.out)
    atomic_write_text(out, "\n".join(lines))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

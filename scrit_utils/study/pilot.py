"""A pilot of the study on the dev split: measure the effects' noise, then size the real run from it.

The pilot is the profile's own scaling sweep and ablations (notebooks 05/06, :mod:`.pipeline.sweeps`) with
the toy benchmarks drawn from the ``dev`` split instead of ``benchmark`` (``world.arith.eval_split``), so
nothing it measures or tunes ever touches the items the claims are made on. Its per-item scores give each
headline comparison's item and seed noise (:func:`scrit_utils.study.claims.comparisons`); from these
:func:`scrit_utils.study.design.plan` predicts the minimal detectable effect of any design and picks the
cheapest one that can see every paper effect. The pilot's effect estimates are reported but never reused.

Hyper-parameter pilots are the same call with ``--set training.learning_rate=...`` etc.: every point is
scored on dev, so settings can be chosen there and frozen before the run on ``benchmark``.

Usage::

    .venv/bin/python scripts/pilot_study.py --profile configs/toy.yaml \\
        --set sweeps.data_sizes=[0,1000] sweeps.seeds=[0,1] --items 200 400 800 --seeds 3 4 5
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from scrit_utils.core import artifacts, config as _config
from scrit_utils.study import design as study_design, claims as study_report
from scrit_utils import worlds
from scrit_utils.core.config import StudyConfig
from scrit_utils.core.records import atomic_write_text, write_json
from scrit_utils.study import sweeps
from scrit_utils.study.readme import markdown

DEV = "dev"


def pilot_config(cfg: StudyConfig, overrides=None) -> StudyConfig:
    """``cfg`` with the given overrides and the toy benchmarks on the dev split (an error outside the toy world)."""
    if not worlds.get(cfg).builds_benchmarks:
        raise _config.ConfigError(f"{cfg.source}: a pilot needs a world that draws its benchmarks from a dev split "
                                  f"(the toy world); a real profile names its dev sets in evaluation.benchmarks")
    ov = {**_config.parse_overrides(overrides), "world.arith.eval_split": DEV}
    return _config.load_dict(_config.to_dict(cfg), cfg.source, ov)


def config_split(cfg: StudyConfig) -> str:
    return _config.get(cfg, "world.arith.eval_split")


@dataclass(frozen=True)
class PilotResult:
    rows: list  # study points (notebooks 05/06 format)
    comparisons: object  # pandas DataFrame, study_report.COMP_COLS
    summary: object  # pandas DataFrame, study_report.SUMMARY_COLS
    design: tuple[int, int] | None  # cheapest (items per set, seeds) reaching every headline effect
    grid: object  # pandas DataFrame, study_design.grid
    sha: str  # the code's git sha when the pilot started (``+dirty``: uncommitted changes)


def run(cfg: StudyConfig, items: Sequence[int], seeds: Sequence[int],
        claims: Sequence[tuple[str, str]] | None = None, progress: Callable[[str], None] = print) -> PilotResult:
    """Run the pilot's points (cached stages) and plan the design. ``cfg`` must come from :func:`pilot_config`."""
    if config_split(cfg) != DEV:
        raise ValueError(f"{cfg.source}: a pilot scores on dev; build its config with pilot_config()")
    sha = artifacts.git_sha()  # at the start: the code that computes the points
    rows = sweeps.run_scaling(cfg, progress)
    if cfg.ablations.variants:
        rows += sweeps.run_ablations(cfg, progress)
    comp = study_report.comparisons(rows, n_boot=cfg.evaluation.bootstrap.n_resamples, seed=cfg.evaluation.bootstrap.seed)
    claims = tuple(claims or measured_claims(comp))
    design, grid = study_design.plan(comp, items, seeds, claims)
    summary = study_report.summarize(rows, n_boot=cfg.evaluation.bootstrap.n_resamples, seed=cfg.evaluation.bootstrap.seed)
    return PilotResult(rows, comp, summary, design, grid, sha)


def measured_claims(comp) -> list[tuple[str, str]]:
    """The headline claims this pilot measured (one without the noise columns cannot be planned)."""
    out = []
    for claim, metric in study_design.HEADLINE:
        sel = comp[(comp["claim"] == claim) & (comp["metric"] == metric)]
        if not sel.empty and not _nan(sel.iloc[0].get("se_item")):
            out.append((claim, metric))
    return out


def _nan(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def report(res: PilotResult, cfg: StudyConfig, overrides: Sequence[str], profile: str) -> str:
    """Markdown: provenance, the points, each headline comparison with its noise, the design grid."""
    g = res.grid
    lines = [f"<!-- pilot sha={res.sha} profile={profile} -->",
             f"# Pilot on the dev split ({profile})", "",
             f"Overrides: `{' '.join(overrides) or 'none'}`; toy benchmarks on `{config_split(cfg)}`, "
             f"{cfg.sweeps.eval_items or cfg.evaluation.n_items} items per set; SFT seeds {list(cfg.sweeps.seeds)}.", "",
             "## Points (seed mean, 95% CI)", "",
             _md(res.summary[res.summary["metric"].isin(["cc_mean", "cc_acc_mix", "ei_f1_strict"])],
                 ["study", "arm", "x", "metric", "mean", "ci_low", "ci_high", "se_item", "se_seed", "n_seeds", "n_items"]),
             "", "## Comparisons and their noise", "",
             _md(res.comparisons, ["claim", "metric", "paper_effect", "our_effect", "ci_low", "ci_high", "mde",
                                   *study_report.NOISE_COLS]),
             "", "## Predicted MDE per design", "",
             _md(g, ["claim", "metric", "paper_effect", "n_items", "n_seeds", "mde", "detectable"]), "",
             f"Cheapest design reaching every measured headline effect: "
             f"{'%d items per set x %d seeds' % res.design if res.design else 'none in this grid'}."]
    return "\n".join(lines) + "\n"


def _md(df, cols) -> str:
    """The columns present, as a markdown table (2 decimals; an unmeasured value is an empty cell)."""
    sel = df[[c for c in cols if c in df.columns]]
    return markdown(sel.astype(object).where(sel.notna(), ""), ".2f")


def save(res: PilotResult, out_dir: Path, text: str) -> Path:
    """``report.md`` and ``points.json`` (the rows without per-item scores), the report last."""
    out_dir.mkdir(parents=True, exist_ok=True)
    slim = [{k: v for k, v in r.items() if k not in ("items", "train_log")} for r in res.rows]
    write_json(out_dir / "points.json", json.loads(json.dumps(slim, default=str)))
    res.grid.to_csv(out_dir / "design_grid.csv", index=False)
    atomic_write_text(out_dir / "report.md", text)
    return out_dir / "report.md"

"""Run driver: execute the study notebooks in order with papermill, one profile for all.

Notebooks live in ``notebooks/NN_name.py`` (jupytext percent format, no outputs). The driver
converts each to ipynb in memory (jupytext API), injects the parameters ``profile`` (path)
and ``overrides`` (list of ``"a.b=c"`` strings), executes it with papermill from the repo
root and saves the executed copy as ``results/runs/<profile name>/NN_name.ipynb``. The profile
is copied once to ``results/runs/<profile name>/profile.yaml`` and every notebook of the run
reads that copy (editing the YAML mid-run cannot change later stage hashes).

- A notebook whose stages (see :data:`STAGES`) all have a manifest is *skipped* (cached).
- Progress: one line per notebook with its wall time; the ETA comes from the wall times in
  earlier manifests of the same stages (any hash).
- The first failing notebook stops the run: the failing cell's error is printed and the exit
  status is non-zero.

Usage (CLI)::

    scrit run --profile configs/toy.yaml                  # everything the profile lists
    scrit run --profile configs/toy.yaml --only 03        # one notebook (or --only 02,03)
    scrit run --profile configs/toy.yaml --from 02 --set training.max_steps=50

From Python: ``run_study("configs/smoke.yaml", overrides=["data.max_problems=10"])``.
"""
from __future__ import annotations

import argparse
import importlib
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from . import artifacts, config
from .records import atomic_write_text

NOTEBOOK_DIR = config.REPO_ROOT / "notebooks"

#: notebook number -> "module:function" returning the stages (artifacts.Stage) the notebook
#: produces; a notebook is skipped when all of them are finished. Notebooks not listed always run.
STAGES: dict[str, str] = {
    "01": "scrit_utils.pipeline.data:stages",
    "02": "scrit_utils.pipeline.self_critic:stages",
    "03": "scrit_utils.pipeline.validation:stages",
    "04": "scrit_utils.pipeline.training:stages",
    "05": "scrit_utils.pipeline.sweeps:stages_05",  # Study: scaling sweeps (finished = manifest of 05_scaling)
    "06": "scrit_utils.pipeline.sweeps:stages_06",  # Study: ablations + README/timing
}


class RunError(RuntimeError):
    pass


@dataclass(frozen=True)
class NotebookResult:
    number: str
    name: str
    status: str  # "ran" | "cached" | "failed"
    wall_s: float
    output: Path | None


def discover(nb_dir: Path = NOTEBOOK_DIR) -> dict[str, Path]:
    """``{"01": notebooks/01_data.py, ...}`` for every ``NN_*.py`` notebook."""
    out = {}
    for p in sorted(nb_dir.glob("[0-9][0-9]_*.py")):
        out[p.name[:2]] = p
    return out


def _stage_fn(number: str) -> Callable | None:
    spec = STAGES.get(number)
    if spec is None:
        return None
    mod, fn = spec.split(":")
    return getattr(importlib.import_module(mod), fn)


def notebook_stages(number: str, cfg: config.StudyConfig) -> list[artifacts.Stage] | None:
    fn = _stage_fn(number)
    return None if fn is None else list(fn(cfg))


def select(numbers: Sequence[str], only: Sequence[str] | None, start: str | None, end: str | None) -> list[str]:
    sel = list(numbers)
    if only:
        wanted = [o.zfill(2) for part in only for o in part.split(",") if o.strip()]
        missing = [w for w in wanted if w not in numbers]
        if missing:
            raise RunError(f"--only {','.join(missing)}: no such notebook (have {', '.join(numbers)})")
        sel = [n for n in sel if n in wanted]
    if start:
        sel = [n for n in sel if n >= start.zfill(2)]
    if end:
        sel = [n for n in sel if n <= end.zfill(2)]
    return sel


def to_notebook(py_path: Path):
    """jupytext percent .py -> nbformat notebook with a python3 kernelspec."""
    import jupytext

    nb = jupytext.read(py_path, fmt="py:percent")
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata.pop("jupytext", None)
    if not any("parameters" in c.metadata.get("tags", []) for c in nb.cells):
        raise RunError(f"{py_path}: no cell tagged 'parameters' (use '# %% tags=[\"parameters\"]')")
    return nb


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _fmt_s(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def estimate(number: str, cfg: config.StudyConfig) -> float | None:
    """Expected wall time of a notebook from earlier manifests of its stages (any hash)."""
    try:
        stages = notebook_stages(number, cfg)
    except Exception:
        return None
    if not stages:
        return None
    total, root = 0.0, artifacts.artifacts_root(cfg)
    for st in stages:
        prev = artifacts.previous_wall_times(root, st.name)
        if not prev:
            return None
        total += prev[0]
    return total


def run_study(
    profile: str,
    overrides: Sequence[str] = (),
    only: Sequence[str] | None = None,
    start: str | None = None,
    end: str | None = None,
    force: bool = False,
    out=sys.stdout,
    kernel_name: str = "python3",
) -> list[NotebookResult]:
    """Execute the profile's notebooks; raises :class:`RunError` on the first failure."""
    import papermill as pm

    cfg = config.load(profile, list(overrides))
    available = discover()
    wanted = [n for n in cfg.run.notebooks if n in available] if cfg.run.notebooks else list(available)
    missing = [n for n in cfg.run.notebooks if n not in available]
    if missing:
        raise RunError(f"{cfg.source}: run.notebooks lists {missing}, not found in {NOTEBOOK_DIR}")
    numbers = select(wanted, only, start, end)
    if not numbers:
        raise RunError("no notebook selected")
    run_dir = config.resolve_path(cfg.run.results_dir) / "runs" / cfg.run.name
    run_dir.mkdir(parents=True, exist_ok=True)
    # Every notebook of this run reads one frozen copy of the profile, so editing the YAML while a
    # run is in progress cannot give later notebooks different stage hashes than earlier ones.
    snap = run_dir / "profile.yaml"
    atomic_write_text(snap, config.resolve_profile(profile).read_text(encoding="utf-8"))
    # repo-relative when possible, so executed notebooks do not record this machine's paths
    profile_arg = str(snap.relative_to(config.REPO_ROOT)) if snap.is_relative_to(config.REPO_ROOT) else str(snap)

    def say(msg: str) -> None:
        print(msg, file=out, flush=True)

    say(f"scrit run: profile {cfg.run.name} ({cfg.source}), {len(numbers)} notebook(s): {', '.join(numbers)}")
    results: list[NotebookResult] = []
    t_all = time.time()
    for i, num in enumerate(numbers, start=1):
        path = available[num]
        name = path.stem
        stages = notebook_stages(num, cfg)
        if stages and not force and all(st.done for st in stages):
            say(f"[{i}/{len(numbers)}] {name}: cached (" + ", ".join(f"{s.name}/{s.hash}" for s in stages) + ")")
            results.append(NotebookResult(num, name, "cached", 0.0, None))
            continue
        remaining = [estimate(n, cfg) for n in numbers[i - 1:]]
        known = [r for r in remaining if r is not None]
        eta = f", ETA this {_fmt_s(remaining[0])}" if remaining[0] is not None else ""
        eta += f", all remaining ~{_fmt_s(sum(known))}" if len(known) == len(remaining) and len(known) > 1 else ""
        say(f"[{i}/{len(numbers)}] {name}: running{eta}")
        out_nb = run_dir / f"{name}.ipynb"
        t0 = time.time()
        try:
            pm.execute_notebook(
                to_notebook(path),
                str(out_nb),
                parameters={"profile": profile_arg, "overrides": list(overrides)},
                kernel_name=kernel_name,
                cwd=str(config.REPO_ROOT),
                progress_bar=True,
                log_output=False,
            )
        except pm.PapermillExecutionError as e:
            wall = time.time() - t0
            tb = _ANSI.sub("", "\n".join(e.traceback or []))
            say(f"[{i}/{len(numbers)}] {name}: FAILED after {_fmt_s(wall)} in cell {e.exec_count}: {e.ename}: {e.evalue}")
            say(tb)
            say(f"executed notebook (with the error) saved to {out_nb}")
            results.append(NotebookResult(num, name, "failed", wall, out_nb))
            raise RunError(f"{name} failed: {e.ename}: {e.evalue}") from None
        wall = time.time() - t0
        results.append(NotebookResult(num, name, "ran", wall, out_nb))
        say(f"[{i}/{len(numbers)}] {name}: done in {_fmt_s(wall)} -> {out_nb.relative_to(config.REPO_ROOT) if out_nb.is_relative_to(config.REPO_ROOT) else out_nb}")
    ran = sum(r.status == "ran" for r in results)
    cached = sum(r.status == "cached" for r in results)
    say(f"scrit run: finished in {_fmt_s(time.time() - t_all)} ({ran} ran, {cached} cached)")
    return results


# --- CLI ------------------------------------------------------------------------------
def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("run", help="run the study notebooks for a profile (papermill, cached stages)")
    p.add_argument("--profile", required=True, help="profile YAML, e.g. configs/toy.yaml")
    p.add_argument("--only", action="append", help="notebook number(s) to run, e.g. 03 or 02,03")
    p.add_argument("--from", dest="start", help="start at this notebook number")
    p.add_argument("--to", dest="end", help="stop after this notebook number")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a profile key (repeatable), e.g. --set training.max_steps=20")
    p.add_argument("--force", action="store_true", help="execute notebooks even when their stages are cached")
    p.set_defaults(func=cmd_run)
    return p


def cmd_run(args) -> int:
    try:
        run_study(args.profile, args.overrides, only=args.only, start=args.start, end=args.end, force=args.force)
    except (RunError, config.ConfigError) as e:
        print(f"scrit run: error: {e}", file=sys.stderr)
        return 1
    return 0


def main_run(argv: Sequence[str] | None = None) -> int:
    """``scrit run ...`` without the shared CLI (also ``python -m scrit_utils.run ...``)."""
    parser = argparse.ArgumentParser(prog="scrit")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "run":
        argv = ["run", *argv]
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main_run())

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
- Clean saved notebooks: the kernel runs without ipykernel's capture of its own stderr and a
  cell injected before the first code cell (after the title) calls
  :func:`scrit_utils.core.notebook_env.setup`, so progress bars, logging and warnings go to this
  terminal, not into the notebook. After execution the saved notebook is
  cleaned (:func:`clean_notebook`): leftover stderr output is echoed here and dropped, terminal
  escape codes are stripped, and machine paths (repo, artifacts, results, home, temp) are written
  relative or as ``<artifacts>`` / ``<results>``, in outputs and in papermill's metadata.
- A notebook that runs first deletes its own earlier figures and tables (``NN_*``), so every
  figure and table of an executed notebook comes from that execution.
- Provenance: the run's git sha (:func:`run_stamp`) is passed to the kernels (``SCRIT_RUN_SHA``)
  and stamped on every file the run writes (notebook metadata ``scrit.run_sha``, a first-line
  comment in generated markdown, ``run`` in JSON); ``runs/<name>/run.json`` and its README record
  which notebooks ran in which run (a cached notebook keeps the entry of the run that executed it).

Usage (CLI)::

    scrit run --profile configs/toy.yaml                  # everything the profile lists
    scrit run --profile configs/toy.yaml --only 03        # one notebook (or --only 02,03)
    scrit run --profile configs/toy.yaml --from 02 --set training.max_steps=50

From Python: ``run_study("configs/smoke.yaml", overrides=["data.max_problems=10"])``.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import yaml

from scrit_utils.core import artifacts, config, data_dir
from scrit_utils.core.cli_args import OneLineParser, add_set_option, fail
from scrit_utils.core.provenance import ANSI_ESCAPES, RUN_SHA_ENV, scrub_obj, write_record, path_replacements, scrub
from scrit_utils.core.records import atomic_write_text
from scrit_utils.study import readme as study_readme

NOTEBOOK_DIR = config.REPO_ROOT / "notebooks"

#: notebook number -> "module:function" returning the stages (artifacts.Stage) the notebook
#: produces; a notebook is skipped when all of them are finished. Notebooks not listed always run.
STAGES: dict[str, str] = {
    "01": "scrit_utils.pipeline.data:stages",
    "02": "scrit_utils.pipeline.self_critic:stages",
    "03": "scrit_utils.pipeline.validation:stages",
    "04": "scrit_utils.pipeline.training:stages",
    "05": "scrit_utils.study.sweeps:stages_05",  # Study: scaling sweeps (finished = manifest of 05_scaling)
    "06": "scrit_utils.study.sweeps:stages_06",  # Study: ablations + README/timing
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


def with_setup(nb):
    """The notebook with the driver's setup cell (see :mod:`scrit_utils.core.notebook_env`) after its title
    cell, so the saved notebook opens with its title; it still runs before the notebook's own code. A last
    teardown cell stops the kernel's generation worker processes (:func:`clean_notebook` drops it)."""
    import nbformat

    at = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), len(nb.cells))
    nb.cells.insert(at, nbformat.v4.new_code_cell(SETUP_SOURCE, metadata={"tags": [SETUP_TAG]}))
    nb.cells.append(nbformat.v4.new_code_cell(TEARDOWN_SOURCE, metadata={"tags": [TEARDOWN_TAG]}))
    return nb


SETUP_TAG = "injected-setup"
SETUP_SOURCE = ("# injected by scrit run: progress bars and library messages go to its terminal, not into this notebook\n"
                "from scrit_utils.core import notebook_env\nnotebook_env.setup()")
TEARDOWN_TAG = "injected-teardown"
# left to the kernel's exit, the worker pools' semaphores leak (a resource_tracker warning on the terminal)
TEARDOWN_SOURCE = "from scrit_utils.generation.process_pool import shutdown_pools\nshutdown_pools()"
KERNEL_ARGS = ["--IPKernelApp.capture_fd_output=False"]


def clean_notebook(path: Path, cfg: config.StudyConfig, source: Path, sha: str, echo=None) -> None:
    """Drop stderr output (echoed to ``echo``, default stderr), strip escape codes and machine paths,
    hide interpretation cells' code, stamp the run."""
    import nbformat

    echo = echo or sys.stderr
    nb = nbformat.read(str(path), as_version=4)
    repl = path_replacements(cfg)
    nb.cells = [c for c in nb.cells if TEARDOWN_TAG not in c.metadata.get("tags", [])]
    for cell in nb.cells:
        if "interpretation" in cell.metadata.get("tags", []):
            cell.metadata.setdefault("jupyter", {})["source_hidden"] = True
        if cell.cell_type != "code":
            continue
        if "injected-parameters" in cell.metadata.get("tags", []):
            cell.source = scrub(cell.source, repl)
        kept = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                print(ANSI_ESCAPES.sub("", "".join(out.get("text", ""))), file=echo, end="")
                continue
            kept.append(nbformat.from_dict(scrub_obj(dict(out), repl)))
        cell["outputs"] = kept
    pm = nb.metadata.get("papermill", {})
    rel = str(source.relative_to(config.REPO_ROOT)) if source.is_relative_to(config.REPO_ROOT) else source.name
    pm.update(input_path=rel, output_path=scrub(str(path), repl), environment_variables={})
    pm["parameters"] = scrub_obj(pm.get("parameters", {}), repl)
    nb.metadata.pop("widgets", None)
    nb.metadata["scrit"] = {"run_sha": sha, "profile": cfg.run.name, "notebook": rel}
    nbformat.write(nb, str(path))


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
    tree, chain = config.profile_tree(profile)
    if len(chain) == 1:  # a whole profile: its text, comments included
        atomic_write_text(snap, config.resolve_profile(profile).read_text(encoding="utf-8"))
    else:  # a diff over a base profile: the resolved tree, so the snapshot stands alone
        atomic_write_text(snap, f"# resolved from {' <- '.join(chain)} by scrit run\n"
                          + yaml.safe_dump(tree, sort_keys=False, default_flow_style=None, width=120))
    # repo-relative when possible, so executed notebooks do not record this machine's paths
    profile_arg = str(snap.relative_to(config.REPO_ROOT)) if snap.is_relative_to(config.REPO_ROOT) else str(snap)

    def say(msg: str) -> None:
        print(msg, file=out, flush=True)

    prev = os.environ.get(RUN_SHA_ENV)
    sha = prev or artifacts.git_sha()
    os.environ[RUN_SHA_ENV] = sha  # the kernels inherit it: every file of this run names the same sha
    say(f"scrit run: profile {cfg.run.name} ({cfg.source}) at {sha}, {len(numbers)} notebook(s): {', '.join(numbers)}")
    results: list[NotebookResult] = []
    t_all = time.time()
    try:
        for i, num in enumerate(numbers, start=1):
            tag = f"[{i}/{len(numbers)}] {available[num].stem}"
            stages = notebook_stages(num, cfg)
            if stages and not force and all(st.done for st in stages):
                say(f"{tag}: cached (" + ", ".join(f"{s.name}/{s.hash}" for s in stages) + ")")
                results.append(NotebookResult(num, available[num].stem, "cached", 0.0, None))
                continue
            remaining = [estimate(n, cfg) for n in numbers[i - 1:]]
            known = [r for r in remaining if r is not None]
            eta = f", ETA this {_fmt_s(remaining[0])}" if remaining[0] is not None else ""
            eta += f", all remaining ~{_fmt_s(sum(known))}" if len(known) == len(remaining) and len(known) > 1 else ""
            say(f"{tag}: running{eta}")
            results.append(_execute(cfg, num, available[num], run_dir, sha, kernel_name,
                                    {"profile": profile_arg, "overrides": list(overrides)}, say, tag))
    finally:
        if prev is None:
            os.environ.pop(RUN_SHA_ENV, None)
    ran = sum(r.status == "ran" for r in results)
    cached = sum(r.status == "cached" for r in results)
    if ran:
        study_readme.refresh_notebook_section(cfg)  # the report's writer (notebook 06) finished after writing it
    say(f"scrit run: finished in {_fmt_s(time.time() - t_all)} ({ran} ran, {cached} cached)")
    return results


def remove_outputs(cfg: config.StudyConfig, num: str) -> list[Path]:
    """Delete notebook ``num``'s figures and tables (``NN_*`` under ``results/{figures,tables}/<profile>/``)
    before it runs, so none is left from an earlier run when the notebook no longer writes it."""
    gone = []
    for kind in ("figures", "tables"):
        for p in sorted((config.resolve_path(cfg.run.results_dir) / kind / cfg.run.name).glob(f"{num}_*")):
            if p.is_file():
                p.unlink()
                gone.append(p)
    return gone


def _execute(cfg, num: str, path: Path, run_dir: Path, sha: str, kernel_name: str, parameters: dict, say,
             tag: str) -> NotebookResult:
    """Execute one notebook with papermill, clean the saved copy and record it."""
    import papermill as pm

    name = path.stem
    out_nb = run_dir / f"{name}.ipynb"
    remove_outputs(cfg, num)
    t0 = time.time()
    try:
        pm.execute_notebook(with_setup(to_notebook(path)), str(out_nb), parameters=parameters, kernel_name=kernel_name,
                            cwd=str(config.REPO_ROOT), progress_bar=True, log_output=False,
                            extra_arguments=KERNEL_ARGS)
    except pm.PapermillExecutionError as e:
        wall = time.time() - t0
        if out_nb.exists():
            clean_notebook(out_nb, cfg, path, sha)
        tb = ANSI_ESCAPES.sub("", "\n".join(e.traceback or []))
        say(f"{tag}: FAILED after {_fmt_s(wall)} in cell {e.exec_count}: {e.ename}: {e.evalue}")
        say(tb)
        say(f"executed notebook (with the error) saved to {out_nb}")
        raise RunError(f"{name} failed: {e.ename}: {e.evalue}") from None
    wall = time.time() - t0
    clean_notebook(out_nb, cfg, path, sha)
    write_record(cfg, name, sha, wall, "ran")
    shown = out_nb.relative_to(config.REPO_ROOT) if out_nb.is_relative_to(config.REPO_ROOT) else out_nb
    say(f"{tag}: done in {_fmt_s(wall)} -> {shown}")
    return NotebookResult(num, name, "ran", wall, out_nb)


# --- CLI ------------------------------------------------------------------------------
RUN_DESCRIPTION = """\
Execute the study notebooks (notebooks/NN_*.py) for one profile with papermill, in the order of the
profile's run.notebooks. Each stage is cached under artifacts/<stage>/<hash>/: a notebook whose stages are
all finished is skipped, an interrupted one resumes. Executed notebooks go to results/runs/<profile name>/,
figures and tables to results/{figures,tables}/<profile name>/; the first failing notebook stops the run."""

RUN_EPILOG = """\
examples:
  scrit run --profile configs/smoke.yaml                     # notebooks 01-04 on tiny settings (~3 min, 2 CPU cores)
  scrit run --profile configs/toy-v3.yaml                    # make study (v3), notebooks 01-06 (~55 min)
  scrit run --profile configs/toy.yaml --only 02,03          # two notebooks (stage 01 must have finished)
  scrit run --profile configs/toy.yaml --from 04 --force     # 04 to the end, executed even if cached
  scrit run --profile configs/smoke.yaml --set training.max_steps=8 data.max_problems=12
  scrit run --profile configs/smoke.yaml --set 'run.notebooks=["01", "02"]'   # YAML values: quote for the shell"""


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("run", help="run the study notebooks for a profile (papermill, cached stages)",
                              description=RUN_DESCRIPTION, epilog=RUN_EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", required=True, metavar="YAML",
                   help="the study profile, relative to this folder or the repository, e.g. configs/toy.yaml")
    p.add_argument("--only", action="extend", nargs="+", metavar="NN",
                   help="run only these notebook numbers: --only 03, --only 02,03 or --only 02 03")
    p.add_argument("--from", dest="start", metavar="NN", help="start at this notebook number, e.g. --from 03")
    p.add_argument("--to", dest="end", metavar="NN", help="stop after this notebook number, e.g. --to 04")
    add_set_option(p)
    p.add_argument("--force", action="store_true",
                   help="execute the selected notebooks even when their stages are cached (finished stages "
                        "are still reused inside them)")
    p.add_argument("--data-dir", metavar="DIR",
                   help="the real benchmark data folder for this run and its kernels (default: $SCRIT_DATA_DIR, "
                        "else ../shared/data when present, else data/real; fill it with `scrit data fetch`)")
    p.set_defaults(func=cmd_run)
    return p


def cmd_run(args) -> int:
    if args.data_dir:  # exported, so the notebooks' kernels read the same folder
        data_dir.use(args.data_dir)
    try:
        run_study(args.profile, args.overrides, only=args.only, start=args.start, end=args.end, force=args.force)
    except (RunError, config.ConfigError) as e:
        return fail("scrit run", e)
    return 0


def main_run(argv: Sequence[str] | None = None) -> int:
    """``scrit run ...`` without the shared CLI (also ``python -m scrit_utils.driver ...``)."""
    parser = OneLineParser(prog="scrit")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    add_parser(sub)
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "run":
        argv = ["run", *argv]
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main_run())

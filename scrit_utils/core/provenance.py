"""Provenance of what a run writes: the run stamp (git sha, profile), the run record of executed
notebooks, and scrubbing machine paths out of text that is committed.

The driver (:mod:`scrit_utils.driver`) sets ``SCRIT_RUN_SHA`` for its kernels; every generated file
carries :func:`run_stamp` (JSON) or :func:`stamp_comment` (first line of markdown)::

    from scrit_utils.core import provenance
    provenance.stamp_comment(provenance.run_stamp(cfg))   # '<!-- scrit-run sha=... profile=toy -->'
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Sequence

from scrit_utils.core import artifacts, config
from scrit_utils.core.records import atomic_write_text

ANSI_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
RUN_SHA_ENV = "SCRIT_RUN_SHA"


# --- provenance -------------------------------------------------------------------------
def run_stamp(cfg: config.StudyConfig | None = None) -> dict:
    """``{"sha", "profile", "interactive"}`` of the run writing a result: the driver's sha
    (``SCRIT_RUN_SHA``) inside ``scrit run``, else this checkout's (an interactive session)."""
    sha = os.environ.get(RUN_SHA_ENV)
    out = {"sha": sha or artifacts.git_sha(), "interactive": not sha}
    if cfg is not None:
        out["profile"] = cfg.run.name
    return out


def stamp_comment(stamp: dict) -> str:
    """The first line of every generated markdown file (read by tests/test_results_consistency.py)."""
    extra = " interactive=true" if stamp.get("interactive") else ""
    return f"<!-- scrit-run sha={stamp['sha']} profile={stamp.get('profile', '?')}{extra} -->"


STAMP_RE = re.compile(r"<!-- scrit-run sha=(\S+) profile=(\S+)")


def _record_path(cfg: config.StudyConfig) -> Path:
    return config.resolve_path(cfg.run.results_dir) / "runs" / cfg.run.name / "run.json"


def read_record(cfg: config.StudyConfig) -> dict:
    p = _record_path(cfg)
    return json.loads(p.read_text()) if p.exists() else {"profile": cfg.run.name, "notebooks": {}}


def write_record(cfg: config.StudyConfig, name: str, sha: str, wall: float, status: str) -> None:
    rec = read_record(cfg)
    rec["notebooks"][name] = {"run_sha": sha, "status": status, "wall_s": round(wall, 1),
                              "finished_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    rec["notebooks"] = dict(sorted(rec["notebooks"].items()))
    atomic_write_text(_record_path(cfg), json.dumps(rec, indent=1) + "\n")
    shas = sorted({v["run_sha"] for v in rec["notebooks"].values()})
    lines = [stamp_comment({"sha": shas[0] if len(shas) == 1 else "MIXED:" + ",".join(shas), "profile": cfg.run.name}),
             f"# Run record: {cfg.run.name} profile", "",
             "Written by `scrit run` (`scrit_utils/driver.py`) after each executed notebook; `run.json` holds the same.",
             "A notebook found cached is not re-executed and keeps the entry of the run that executed it.", "",
             "| notebook | run sha | wall time (s) | finished (UTC) |", "|---|---|---|---|"]
    lines += [f"| {k} | `{v['run_sha']}` | {v['wall_s']:.1f} | {v['finished_at']} |" for k, v in rec["notebooks"].items()]
    if len(shas) > 1:
        lines += ["", f"These notebooks come from {len(shas)} different runs: rerun the profile from a clean checkout."]
    atomic_write_text(_record_path(cfg).with_name("README.md"), "\n".join(lines) + "\n")


def notebook_times(cfg: config.StudyConfig):
    """Wall time per executed notebook from the run record (a DataFrame)."""
    import pandas as pd

    rows = [{"notebook": k, "wall_s": v["wall_s"], "finished": v["finished_at"], "run_sha": v["run_sha"][:12]}
            for k, v in read_record(cfg)["notebooks"].items()]
    return pd.DataFrame(rows, columns=["notebook", "wall_s", "finished", "run_sha"])


# --- cleaning executed notebooks ----------------------------------------------------------------
def path_replacements(cfg: config.StudyConfig) -> list[tuple[str, str]]:
    """``(absolute prefix, replacement)``, longest first: artifacts/results roots, repo, home, temp."""
    arts, res = artifacts.artifacts_root(cfg), config.resolve_path(cfg.run.results_dir)
    pairs = {str(arts): "artifacts" if arts == config.REPO_ROOT / "artifacts" else "<artifacts>",
             str(res): "results" if res == config.REPO_ROOT / "results" else "<results>",
             str(config.REPO_ROOT): ".", str(Path.home()): "~", tempfile.gettempdir(): "<tmp>"}
    for p in list(pairs):
        real = os.path.realpath(p)
        if real != p:
            pairs.setdefault(real, pairs[p])
    return sorted(((k, v) for k, v in pairs.items() if len(k) > 1), key=lambda kv: -len(kv[0]))


def scrub(text: str, repl: Sequence[tuple[str, str]]) -> str:
    text = ANSI_ESCAPES.sub("", text)
    for a, b in repl:
        text = text.replace(a + "/", b + "/").replace(a, b)
    return text


def scrub_obj(obj, repl):
    if isinstance(obj, str):
        return scrub(obj, repl)
    if isinstance(obj, list):
        return [scrub_obj(v, repl) for v in obj]
    if isinstance(obj, dict):
        return {k: scrub_obj(v, repl) for k, v in obj.items()}
    return obj

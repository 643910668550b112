"""Check that a ``results/`` tree comes from one run and that its executed notebooks are clean.

:func:`problems` lists, for one results directory, everything a reader should not find there:

- two files naming different runs: the run stamp of the generated markdown (first line
  ``<!-- scrit-run sha=... -->``: ``README*.md``, ``timing*.md``, ``runs/<name>/README.md``), the
  run record ``runs/<name>/run.json``, each executed notebook's ``metadata.scrit.run_sha`` and
  ``runs/<name>/04_metrics.json``'s ``run.sha`` must all name the same sha (per profile); a
  generated file without a stamp is reported too;
- an executed notebook that is larger than :data:`MAX_NOTEBOOK_BYTES`,
  contains "Warning", "Traceback" or a Trainer log line (``{'loss': ...``) in its code or outputs,
  contains an absolute machine path, or
  does not end with an interpretation (a cell whose output is markdown);
- a study README whose first section is not "## Bottom line" (or the pre-registered claims, then the bottom line).

Tables (``tables/``) and figures carry no stamp and are not compared. Notebook 00 builds the base
models, the study's inputs (their provenance is ``models/*/build_info.json``); its executed copy
and run-record entry are not part of the study run (:data:`INPUT_NOTEBOOKS`). ``tests/test_results_consistency.py``
runs this on the committed ``results/``.

Usage::

    from scrit_utils.study import results_check
    results_check.problems("results")     # [] when clean
"""
from __future__ import annotations

import json
import re
from pathlib import Path

MAX_NOTEBOOK_BYTES = 300_000
STAMP_RE = re.compile(r"^<!-- scrit-run sha=(\S+) profile=(\S+)")
ABS_PATH_RE = re.compile(r"(?<![\w.~<>-])/(?:home|root|tmp|work|Users|mnt|var|private|opt|srv|scratch)/")
FORBIDDEN = ("Warning", "Traceback", "{'loss'")  # the last: Trainer log lines printed into an output
INPUT_NOTEBOOKS = ("00",)
PREREGISTERED_HEAD = "## Pre-registered claims (study v3)"  # the README's first section (study/readme.py)


def _stamp(path: Path) -> tuple[str, str] | None:
    first = path.read_text(encoding="utf-8").split("\n", 1)[0]
    m = STAMP_RE.match(first)
    return (m.group(1), m.group(2)) if m else None


def _notebook_text(nb: dict) -> str:
    """Sources and non-image outputs of a notebook, plus its metadata."""
    parts = [json.dumps(nb.get("metadata", {}))]
    for c in nb.get("cells", []):
        parts.append("".join(c.get("source", "")))
        for o in c.get("outputs", []):
            parts.append("".join(o.get("text", "")))
            parts += ["\n".join(o.get("traceback", []))]
            for k, v in (o.get("data") or {}).items():
                if not k.startswith("image/"):
                    parts.append("".join(v) if isinstance(v, list) else json.dumps(v))
    return "\n".join(parts)


def notebook_problems(path: Path) -> list[str]:
    out = []
    size = path.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        out.append(f"{path.name}: {size / 1000:.0f} KB > {MAX_NOTEBOOK_BYTES / 1000:.0f} KB")
    nb = json.loads(path.read_text(encoding="utf-8"))
    text = _notebook_text(nb)
    out += [f"{path.name}: contains {w!r}" for w in FORBIDDEN if w in text]
    m = ABS_PATH_RE.search(text)
    if m:
        out.append(f"{path.name}: absolute path ...{text[max(0, m.start() - 30):m.end() + 30]!r}")
    last = next((c for c in reversed(nb.get("cells", [])) if c.get("cell_type") == "code" or "".join(c.get("source", "")).strip()), None)
    ends_md = last is not None and (last.get("cell_type") == "markdown" or any(
        "text/markdown" in (o.get("data") or {}) for o in last.get("outputs", [])))
    if not ends_md:
        out.append(f"{path.name}: does not end with an interpretation (markdown)")
    return out


def _study_notebooks(results: Path) -> list[Path]:
    return [p for p in sorted(results.glob("runs/*/*.ipynb")) if p.name[:2] not in INPUT_NOTEBOOKS]


def run_shas(results: Path) -> dict[str, dict[str, list[str]]]:
    """``{profile: {sha: [files]}}`` from every generated file under ``results`` (``"(no stamp)"``
    for one that carries none)."""
    found: dict[str, dict[str, list[str]]] = {}

    def add(profile: str, sha: str, where: str) -> None:
        found.setdefault(profile, {}).setdefault(sha, []).append(where)

    for md in sorted(results.glob("*.md")) + sorted(results.glob("runs/*/README.md")):
        st = _stamp(md)
        add(st[1] if st else "?", st[0] if st else "(no stamp)", str(md.relative_to(results)))
    for rec in sorted(results.glob("runs/*/run.json")):
        for nb, v in json.loads(rec.read_text())["notebooks"].items():
            if nb[:2] not in INPUT_NOTEBOOKS:
                add(rec.parent.name, v["run_sha"], f"{rec.relative_to(results)}:{nb}")
    for nb in _study_notebooks(results):
        meta = json.loads(nb.read_text(encoding="utf-8")).get("metadata", {}).get("scrit", {})
        add(nb.parent.name, meta.get("run_sha", "(no stamp)"), str(nb.relative_to(results)))
    for mj in sorted(results.glob("runs/*/04_metrics.json")):
        add(mj.parent.name, (json.loads(mj.read_text()).get("run") or {}).get("sha", "(no stamp)"),
            str(mj.relative_to(results)))
    return found


def problems(results: str | Path) -> list[str]:
    """Everything in ``results`` that disagrees about its run or is not clean (see module doc)."""
    results = Path(results)
    out = []
    for profile, shas in run_shas(results).items():
        if "(no stamp)" in shas:
            out.append(f"profile {profile}: no run stamp in {', '.join(shas.pop('(no stamp)'))}")
        if len(shas) > 1:
            out.append(f"profile {profile}: files from {len(shas)} runs: " +
                       "; ".join(f"{sha}: {', '.join(files)}" for sha, files in shas.items()))
    for nb in _study_notebooks(results):
        out += notebook_problems(nb)
    for md in sorted(results.glob("README*.md")):
        heads = [l for l in md.read_text(encoding="utf-8").splitlines() if l.startswith("## ")]
        # the pre-registered claims open a README written since they exist; the bottom line follows (or opens an older one)
        lead = heads[1:2] if heads[:1] == [PREREGISTERED_HEAD] else heads[:1]
        if lead != ["## Bottom line"]:
            out.append(f"{md.name}: first section is {heads[0] if heads else 'missing'!r}, not '## Bottom line' (after "
                       f"{PREREGISTERED_HEAD!r} where the README has it)")
    return out

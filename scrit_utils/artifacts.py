"""Stage cache: ``artifacts/<stage>/<hash>/`` with a ``manifest.json`` written last.

A stage's hash covers exactly what can change its output: the slice of the profile it reads
(dotted keys), the hashes of the stages it consumes, and a per-stage version constant that is
bumped when the stage's code changes meaningfully. Consequences:

- a finished stage (``manifest.json`` present) is reused, never recomputed;
- changing an unrelated key (e.g. ``training.learning_rate``) does not invalidate data stages;
- an interrupted stage resumes: its data files are appended item by item through
  :class:`scrit_utils.records.ResumableJsonl`, and the manifest only appears once the stage
  finished, so a half-written directory is never mistaken for a result.

Usage::

    from scrit_utils import artifacts
    st = artifacts.stage("01_data", cfg, keys=["world", "data", "run.seed"], version="1")
    if not st.done:
        sols = st.jsonl("solutions.jsonl", Solution)     # ResumableJsonl inside the stage dir
        ...
        st.finish(counts={"solutions": n})                # config slice + manifest, written last
    st.manifest["counts"]

The manifest records counts, wall time, git sha, package versions, device, profile name and
config hash; ``config_slice.json`` (the exact keys hashed) is saved beside it.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from . import config as _config
from .records import ResumableJsonl, write_json

MANIFEST = "manifest.json"
CONFIG_SLICE = "config_slice.json"

_PACKAGES = ("torch", "transformers", "trl", "peft", "datasets", "accelerate", "tokenizers", "math_verify", "papermill")


def git_sha(repo: Path | None = None) -> str:
    """HEAD commit of the repo (``+dirty`` when tracked code changed), or "unknown".

    ``results/`` is left out of the check: the study itself rewrites the committed reference results,
    so a clean checkout would otherwise report itself dirty halfway through its own run.
    """
    repo = repo or _config.REPO_ROOT
    try:
        sha = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        if not sha:
            return "unknown"
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results"],
            capture_output=True, text=True, timeout=10,
        ).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except Exception:
        return "unknown"


def package_versions(names: Iterable[str] = _PACKAGES) -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for n in names:
        try:
            out[n] = metadata.version(n.replace("_", "-"))
        except metadata.PackageNotFoundError:
            continue
    try:
        from scrit_utils import __version__

        out["scrit_utils"] = __version__
    except Exception:  # pragma: no cover
        pass
    return out


def device_info() -> str:
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        try:
            if torch.cuda.is_available():
                return f"cuda:{torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}"
        except Exception:  # pragma: no cover
            pass
    return f"cpu ({os.cpu_count()} cores, {platform.machine()})"


def provenance(cfg: _config.StudyConfig | None = None) -> dict[str, Any]:
    """What produced a result: git sha, versions, device, profile, config hash, time."""
    out: dict[str, Any] = {
        "git_sha": git_sha(),
        "versions": package_versions(),
        "device": device_info(),
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if cfg is not None:
        out.update(profile=cfg.run.name, profile_file=cfg.source, config_hash=_config.config_hash(cfg))
    return out


def artifacts_root(cfg: _config.StudyConfig) -> Path:
    return _config.resolve_path(cfg.run.artifacts_dir)


@dataclass
class Stage:
    """One stage's output directory; see the module docstring."""

    name: str
    hash: str
    dir: Path
    version: str
    config_slice: dict
    upstream: dict  # stage name -> hash
    cfg: _config.StudyConfig | None = None
    upstream_stages: dict = field(default_factory=dict)  # stage name -> Stage
    _t0: float = field(default_factory=time.time, repr=False)

    @property
    def manifest_path(self) -> Path:
        return self.dir / MANIFEST

    @property
    def done(self) -> bool:
        return self.manifest_path.exists()

    @property
    def manifest(self) -> dict:
        if not self.done:
            raise FileNotFoundError(f"stage {self.name} ({self.dir}) has not finished: no {MANIFEST}")
        return json.loads(self.manifest_path.read_text(encoding="utf-8"))

    def path(self, name: str) -> Path:
        """A file inside the stage dir (the dir is created on first use)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        return self.dir / name

    def jsonl(self, name: str, cls=None) -> ResumableJsonl:
        return ResumableJsonl(self.path(name), cls)

    def up(self, name: str) -> "Stage":
        """An upstream stage (must be finished)."""
        st = self.upstream_stages[name]
        if not st.done:
            raise RuntimeError(f"stage {self.name} needs {name} ({st.dir}), which has not finished; run it first")
        return st

    def start_clock(self) -> None:
        self._t0 = time.time()

    def finish(self, counts: dict | None = None, extra: dict | None = None) -> dict:
        """Write ``config_slice.json`` then ``manifest.json`` (last). Returns the manifest."""
        self.dir.mkdir(parents=True, exist_ok=True)
        partial = sorted(p.name for p in self.dir.glob("*.partial"))
        if partial:
            raise RuntimeError(f"stage {self.name}: unfinalized files {partial} in {self.dir}")
        write_json(self.dir / CONFIG_SLICE, self.config_slice)
        files = {
            p.name: p.stat().st_size
            for p in sorted(self.dir.iterdir())
            if p.is_file() and p.name not in (MANIFEST,) and not p.name.startswith(".")
        }
        manifest = {
            "stage": self.name,
            "hash": self.hash,
            "version": self.version,
            "upstream": self.upstream,
            "counts": counts or {},
            "wall_time_s": round(time.time() - self._t0, 3),
            "files": files,
            **provenance(self.cfg),
            **(extra or {}),
        }
        write_json(self.manifest_path, manifest)
        return manifest


_DIGESTS: dict[tuple, str] = {}


def weights_digest(model_dir: str | Path) -> str | None:
    """sha256 (first 16 hex) of a local model dir's safetensors files; None for hub ids / no weights."""
    d = Path(model_dir)
    files = sorted(d.glob("*.safetensors")) if d.is_dir() else []
    if not files:
        return None
    key = tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        for f in files:
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
        _DIGESTS[key] = h.hexdigest()[:16]
    return _DIGESTS[key]


def model_fingerprints(slice_: dict) -> dict[str, str]:
    """``{model path: weights digest}`` for the local model dirs named under ``models.*`` keys."""
    refs: list[str] = []

    def walk(v):
        if isinstance(v, str):
            refs.append(v)
        elif isinstance(v, dict):
            for k, x in v.items():
                if k in ("path", "critic") or isinstance(x, (dict, list)):
                    walk(x)
        elif isinstance(v, (list, tuple)):
            for x in v:
                walk(x)

    for k, v in slice_.items():
        if k == "models" or k.startswith("models."):
            walk(v)
    out = {}
    for r in refs:
        if _config.looks_local(r):
            dig = weights_digest(_config.resolve_path(r))
            if dig:
                out[r] = dig
    return out


def stage_hash(name: str, version: str, slice_: dict, upstream: dict) -> str:
    return _config.stable_hash({"stage": name, "version": version, "config": slice_, "upstream": upstream})


def stage(
    name: str,
    cfg: _config.StudyConfig,
    keys: Sequence[str],
    version: str,
    upstream: Sequence[Stage] = (),
    extra_key: dict | None = None,
    root: Path | None = None,
) -> Stage:
    """Describe (not run) a stage; ``extra_key`` adds non-config values to the hash.

    The weights of every local model the slice names (``models.*`` keys) are part of the key:
    a rebuilt base model under the same path is a different stage input.
    """
    slice_ = _config.config_slice(cfg, keys)
    weights = model_fingerprints(slice_)
    if weights:
        slice_ = {**slice_, "_weights": weights}
    if extra_key:
        slice_ = {**slice_, "_extra": extra_key}
    ups = {u.name: u.hash for u in upstream}
    h = stage_hash(name, version, slice_, ups)
    root = Path(root) if root is not None else artifacts_root(cfg)
    return Stage(
        name=name, hash=h, dir=root / name / h, version=version, config_slice=slice_,
        upstream=ups, cfg=cfg, upstream_stages={u.name: u for u in upstream},
    )


def previous_wall_times(root: Path, name: str) -> list[float]:
    """Wall times of earlier finished runs of a stage (any hash), newest first."""
    out = []
    for m in Path(root, name).glob(f"*/{MANIFEST}"):
        try:
            out.append((m.stat().st_mtime, float(json.loads(m.read_text())["wall_time_s"])))
        except Exception:
            continue
    return [w for _, w in sorted(out, reverse=True)]

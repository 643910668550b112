"""Stage cache: ``artifacts/<stage>/<hash>/`` with a ``manifest.json`` written last.

A stage's hash covers exactly what can change its output: the slice of the profile it reads
(dotted keys), the hashes of the stages it consumes, and a per-stage version constant that is
bumped when the stage's code changes meaningfully. Consequences:

- a finished stage (``manifest.json`` present) is reused, never recomputed;
- changing an unrelated key (e.g. ``training.learning_rate``) does not invalidate data stages;
- an interrupted stage resumes: its data files are appended item by item through
  :class:`scrit_utils.core.records.ResumableJsonl`, and the manifest only appears once the stage
  finished, so a half-written directory is never mistaken for a result.

Usage::

    from scrit_utils.core import artifacts
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

from scrit_utils.core import config as _config, inputs
from scrit_utils.core.version import __version__
from scrit_utils.core.records import ResumableJsonl, write_json

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
    out["scrit_utils"] = __version__
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
    keys: tuple = ()  # the declared config keys the hash covers
    _t0: float = field(default_factory=time.time, repr=False)
    _recorder: Any = field(default=None, repr=False)
    _token: Any = field(default=None, repr=False)

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

    def record(self, cfg: _config.StudyConfig | None = None) -> "inputs.ConfigView":
        """Start recording this stage's inputs; returns the config view the stage must compute with.

        From here until :meth:`finish`, every config value read through the view and every model or
        file opened (:func:`scrit_utils.core.inputs.record_model`) is noted; :meth:`finish` refuses to write
        the manifest when one of them is not covered by the hash (:meth:`unrecorded`). Calling it
        again returns a view on the same record (a stage computed in several steps)."""
        if self._recorder is None:
            self._recorder = inputs.Recorder()
        if self._token is None:
            self._token = inputs.activate(self._recorder)
        return inputs.ConfigView(cfg if cfg is not None else self.cfg, self._recorder)

    def stop_recording(self) -> None:
        """Stop noting opened models/files for this stage (done by :meth:`finish`)."""
        if self._token is not None:
            try:
                inputs.deactivate(self._token)
            except ValueError:  # reset from another context: just clear the active recorder
                inputs.activate(None)
            self._token = None

    @property
    def recorded(self) -> dict | None:
        """What the stage read so far (``keys``, ``models``, ``files``), or None when not recording."""
        return self._recorder.as_dict() if self._recorder is not None else None

    def unrecorded(self) -> list[str]:
        """The recorded inputs the hash does not cover (empty when all are covered, or not recording)."""
        if self._recorder is None:
            return []
        ups = [u.dir for u in self.upstream_stages.values()]
        hubs = [r for r in _strings(self.config_slice) if r.strip() and not _config.looks_local(r)]
        named = [_config.resolve_path(r) for r in _strings(self.config_slice) if r.strip() and _config.looks_local(r)]
        models = [_config.resolve_path(m) for m in self.config_slice.get("_models", {})]
        return inputs.uncovered(self._recorder, self.keys, models, [self.dir, *ups], hubs, named)

    def finish(self, counts: dict | None = None, extra: dict | None = None) -> dict:
        """Write ``config_slice.json`` then ``manifest.json`` (last). Returns the manifest.

        When the stage recorded its inputs (:meth:`record`), an input the hash misses raises
        :class:`scrit_utils.core.inputs.UnrecordedInputError` here, before anything marks the stage done."""
        self.stop_recording()
        missing = self.unrecorded()
        if missing:
            raise inputs.UnrecordedInputError(
                f"stage {self.name} read inputs its cache key does not cover: {'; '.join(missing)}. "
                f"Add the keys to the stage's declared keys (and bump its version).")
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
            **({"inputs": self.recorded} if self._recorder is not None else {}),
            **(extra or {}),
        }
        write_json(self.manifest_path, manifest)
        return manifest


_DIGESTS: dict[tuple, str] = {}
# what a model dir holds that never changes what the model does: training logs, build notes, caches
_LOG_NAMES = ("train_log.json", "train_log.csv", "build_info.json")
_LOG_DIRS = ("logs", "runs", "__pycache__")


def _model_files(d: Path) -> list[Path]:
    out = []
    for f in sorted(d.rglob("*")):
        rel = f.relative_to(d).parts
        if not f.is_file() or any(p.startswith(".") for p in rel) or any(p in _LOG_DIRS for p in rel[:-1]):
            continue
        if f.name in _LOG_NAMES or f.suffix == ".log":
            continue
        out.append(f)
    return out


def model_digest(model_dir: str | Path) -> str | None:
    """sha256 (first 16 hex) over a local model dir's files -- weights, config, tokenizer, chat template,
    generation config, anything else in it -- with logs and build notes left out (``_LOG_NAMES``,
    ``*.log``, ``logs/``, ``runs/``); None for hub ids and empty dirs. File names are hashed with their
    contents, so a renamed or added tokenizer file changes it too."""
    d = Path(model_dir)
    files = _model_files(d) if d.is_dir() else []
    if not files:
        return None
    key = tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        for f in files:
            h.update(f.relative_to(d).as_posix().encode() + b"\0")
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
            h.update(b"\0")
        _DIGESTS[key] = h.hexdigest()[:16]
    return _DIGESTS[key]


def _strings(v) -> list[str]:
    if isinstance(v, str):
        return [v]
    if isinstance(v, dict):
        return [s for x in v.values() for s in _strings(x)]
    if isinstance(v, (list, tuple)):
        return [s for x in v for s in _strings(x)]
    return []


def model_fingerprints(slice_: dict) -> dict[str, str]:
    """``{path: digest}`` for every local model dir (a dir with ``config.json``) named by a string in the
    slice, under any key: a model named under ``sweeps.model_sizes`` is as much an input as ``models.critic``."""
    out = {}
    for r in _strings(slice_):
        # a model dir holds a config.json; data folders named in the slice are not digested here
        if r.strip() and _config.looks_local(r) and (_config.resolve_path(r) / "config.json").is_file():
            dig = model_digest(_config.resolve_path(r))
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

    The digest of every local model dir the slice names (:func:`model_digest`: weights, tokenizer,
    chat template, generation config) is part of the key, so a rebuilt model under the same path is a
    different stage input. Run the stage through :meth:`Stage.record` to have the declared ``keys``
    checked against what it reads.
    """
    cfg = inputs.raw(cfg)  # describing a stage is not reading its inputs
    slice_ = _config.config_slice(cfg, keys)
    models = model_fingerprints(slice_)
    if models:
        slice_ = {**slice_, "_models": models}
    if extra_key:
        slice_ = {**slice_, "_extra": extra_key}
    ups = {u.name: u.hash for u in upstream}
    h = stage_hash(name, version, slice_, ups)
    root = Path(root) if root is not None else artifacts_root(cfg)
    return Stage(
        name=name, hash=h, dir=root / name / h, version=version, config_slice=slice_,
        upstream=ups, cfg=cfg, upstream_stages={u.name: u for u in upstream}, keys=tuple(keys),
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

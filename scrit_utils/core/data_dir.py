"""The one data-folder setting: where RealCritic, ProcessBench, GSM8K and the Qwen2.5-Math sets are read from.

Every loader, profile, test and command finds the real evaluation data through :func:`data_dir`, which
takes, first to last:

1. an explicit folder (``--data-dir DIR`` of a command, which also exports it, see :func:`use`);
2. the environment variable ``SCRIT_DATA_DIR`` (``SCRIT_SHARED_DATA``, the tests' older name, after it);
3. ``../shared/data`` next to the repository, when it exists (the team's read-only copy);
4. ``data/real`` in the repository (git-ignored): where ``scrit data fetch`` writes by default.

The folder is laid out as ``scrit data fetch`` writes it (:mod:`scrit_utils.core.data_sources`):
``realcritic/{mix_data,wrong_data}/<task>/test.jsonl``, ``processbench/<subset>.json``,
``gsm8k/{train,test}.jsonl`` and ``math_eval/<task>/test.jsonl``.

Profiles name data as ``../shared/data/<rest>`` (``evaluation.realcritic_path``, ``world.real_sources[].path``):
that prefix means "the data folder", and :func:`resolve_ref` reads it from :func:`data_dir`. The strings in the
profiles stay as they are, so stage hashes do not depend on where a machine keeps its copy.

Usage::

    from scrit_utils.core import data_dir
    root = data_dir.data_dir()                               # Path
    data_dir.resolve_ref("../shared/data/realcritic")        # "<data folder>/realcritic"
    data_dir.missing(root)                                   # DataFiles absent there
"""
from __future__ import annotations

import os
from pathlib import Path

from scrit_utils.core import data_sources

REPO_ROOT = Path(__file__).resolve().parents[2]  # scrit_utils/core/data_dir.py -> the repository
ENV = "SCRIT_DATA_DIR"
LEGACY_ENV = "SCRIT_SHARED_DATA"  # the tests' variable before this module existed; still honoured
SHARED = REPO_ROOT.parent / "shared" / "data"
FETCH_DEFAULT = REPO_ROOT / "data" / "real"
#: how profiles name the data folder (kept verbatim in profiles, so stage hashes do not move)
PROFILE_PREFIX = "../shared/data"


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The data folder (see the module docstring for the order); it need not exist."""
    if explicit:
        return Path(explicit).expanduser().resolve()
    for var in (ENV, LEGACY_ENV):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser().resolve()
    return SHARED if SHARED.exists() else FETCH_DEFAULT


def use(folder: str | os.PathLike | None) -> Path:
    """Make ``folder`` (a ``--data-dir`` value; None keeps the current setting) the data folder of this
    process and of every process it starts (papermill kernels, workers): it is exported as ``SCRIT_DATA_DIR``."""
    root = data_dir(folder)
    if folder:
        os.environ[ENV] = str(root)
    return root


def resolve_ref(ref: str | os.PathLike) -> str:
    """A data reference from a profile or a command line -> what a loader reads.

    ``../shared/data[/<rest>]`` -> ``<data folder>[/<rest>]``; any other local path is taken from the
    repository root when relative; a hub id (``openai/gsm8k``) is returned unchanged.
    """
    s = str(ref)
    norm = s.replace("\\", "/")
    if norm == PROFILE_PREFIX or norm.startswith(PROFILE_PREFIX + "/"):
        rest = norm[len(PROFILE_PREFIX):].lstrip("/")
        return str(data_dir() / rest) if rest else str(data_dir())
    p = Path(s).expanduser()
    if p.is_absolute():
        return str(p)
    local = REPO_ROOT / p
    if s.startswith((".", "~")) or local.exists():
        return str(local)
    return s  # a hub id


def missing(root: str | os.PathLike | None = None, sources: list[str] | None = None) -> list[data_sources.DataFile]:
    """The table's files absent under the data folder (sizes are not checked here; ``scrit data verify`` does)."""
    base = data_dir(root)
    return [f for f in data_sources.files(sources) if not (base / f.path).is_file()]


def fetch_command(root: str | os.PathLike | None = None) -> str:
    """The command that fills the data folder, for messages."""
    return f"scrit data fetch --data-dir {data_dir(root)}"

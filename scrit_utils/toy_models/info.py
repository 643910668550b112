"""What a base-model directory says about its build: ``build_info.json`` (complete? which recipe
version? how many steps?) and the training log files written beside it.

Usage::

    from scrit_utils.toy_models.info import is_current
    is_current(Path("models/toy-150k"))   # complete and built by the v2 recipe's version
    is_current(Path("models/v3/seed0/toy-150k"), BuildConfig(recipe="v3").recipe_version)
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from scrit_utils.core.records import atomic_write_text, write_json
from scrit_utils.core.toy_recipe import RECIPE_VERSIONS

#: the v2 recipe's version (the committed models); each named recipe has its own (core/toy_recipe.py
#: RECIPE_VERSIONS): bump it when that recipe's logic changes (a dir built by another version is rebuilt)
RECIPE_VERSION = RECIPE_VERSIONS["v2"]


def _info(model_dir: Path) -> dict:
    info = Path(model_dir) / "build_info.json"
    if not info.exists() or not (Path(model_dir) / "model.safetensors").exists():
        return {}
    try:
        return json.loads(info.read_text())
    except json.JSONDecodeError:
        return {}


def is_complete(model_dir: Path) -> bool:
    """Every phase of the model's recipe finished and saved (the v1 dirs committed before v2 say so too)."""
    return bool(_info(model_dir).get("complete"))


def is_current(model_dir: Path, version: int = RECIPE_VERSION) -> bool:
    """Complete and built by recipe version ``version`` (default v2's; ``build_base_models`` skips only these)."""
    i = _info(model_dir)
    return bool(i.get("complete")) and i.get("recipe_version") == version


def steps_done(info: dict) -> int:
    """Optimizer steps recorded in ``build_info``."""
    return int(info.get("steps", 0))


def _git_sha() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except OSError:  # pragma: no cover
        return ""


def _write_log(out: Path, log: list[dict]) -> None:
    write_json(out / "train_log.json", log)
    if log:
        cols = list(log[0])
        lines = [",".join(cols)] + [",".join("" if r.get(c) is None else str(r.get(c)) for c in cols) for r in log]
        atomic_write_text(out / "train_log.csv", "\n".join(lines) + "\n")

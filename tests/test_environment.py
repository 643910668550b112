"""environment.yml (conda users) must name the same packages as pyproject.toml."""
from __future__ import annotations

import re
import tomllib

import yaml

from .conftest import REPO


def _name(spec: str) -> str:
    return re.split(r"[<>=!~\[ ;]", spec.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = {_name(s) for s in pyproject["dependencies"]}
    for extra in pyproject.get("optional-dependencies", {}).values():
        declared |= {_name(s) for s in extra}
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_specs = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    conda_names = {_name(s) for s in pip_specs if not s.startswith("-")}
    assert conda_names == declared, (
        f"only in environment.yml: {sorted(conda_names - declared)}; only in pyproject.toml: {sorted(declared - conda_names)}"
    )


def test_torch_pinned_to_cpu_wheel_version():
    # a looser pin lets pip replace the local CPU wheel with a multi-GB CUDA build
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "torch==2.13.0" in deps

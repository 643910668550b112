"""One set of library pins for CPU and GPU (issue 25): pyproject.toml, environment-cpu.yml, environment-gpu.yml and
pip's committed resolver report for the GPU install (requirements/gpu-resolve-report.json) must agree.

No network: the report is a file; regenerate it with scripts/resolve_gpu_pins.sh after changing a pin.
"""
from __future__ import annotations

import json
import re
import tomllib

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from .conftest import REPO

# pinned exactly (==) and identical on CPU and GPU; torch is the one library whose version differs by platform
SHARED_PINS = ("transformers", "trl", "peft", "accelerate", "datasets")
GPU_PINS = ("vllm", "deepspeed", "torch")
REPORT = REPO / "requirements" / "gpu-resolve-report.json"


def _reqs(specs: list[str], where: str) -> dict[str, Requirement]:
    out: dict[str, Requirement] = {}
    for spec in specs:
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        assert name not in out, f"{where}: {name} listed twice"
        out[name] = req
    return out


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


@pytest.fixture(scope="module")
def deps(pyproject) -> dict[str, Requirement]:
    return _reqs(pyproject["dependencies"], "pyproject.toml dependencies")


@pytest.fixture(scope="module")
def extras(pyproject) -> dict[str, dict[str, Requirement]]:
    return {k: _reqs(v, f"pyproject.toml extra {k}") for k, v in pyproject["optional-dependencies"].items()}


def _env(name: str) -> dict[str, Requirement]:
    env = yaml.safe_load((REPO / name).read_text())
    pip_specs = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert "-e ." in pip_specs, f"{name}: the pip list must end by installing the package (-e .)"
    return _reqs([s for s in pip_specs if not s.startswith("-")], name)


@pytest.fixture(scope="module")
def env_cpu() -> dict[str, Requirement]:
    return _env("environment-cpu.yml")


@pytest.fixture(scope="module")
def env_gpu() -> dict[str, Requirement]:
    return _env("environment-gpu.yml")


@pytest.fixture(scope="module")
def report() -> dict:
    return json.loads(REPORT.read_text())


@pytest.fixture(scope="module")
def resolved(report) -> dict[str, str]:
    return {canonicalize_name(d["name"]): d["version"] for d in report["install"]}


def _exact(req: Requirement, where: str) -> str:
    specs = list(req.specifier)
    assert len(specs) == 1 and specs[0].operator == "==" and "*" not in specs[0].version, (
        f"{where}: {req} must be pinned exactly (==X.Y.Z)"
    )
    return specs[0].version


def test_environment_files_name_the_same_packages_as_pyproject(deps, extras, env_cpu, env_gpu):
    every = set(deps).union(*(set(e) for e in extras.values()))
    cpu_side = set(deps).union(*(set(e) for k, e in extras.items() if k != "gpu"))
    assert set(env_gpu) == every, (
        f"only in environment-gpu.yml: {sorted(set(env_gpu) - every)}; "
        f"only in pyproject.toml: {sorted(every - set(env_gpu))}"
    )
    assert set(env_cpu) == cpu_side, (
        f"only in environment-cpu.yml: {sorted(set(env_cpu) - cpu_side)}; "
        f"only in pyproject.toml (without the gpu extra): {sorted(cpu_side - set(env_cpu))}"
    )


def test_report_is_for_the_gpu_install_on_linux_x86_64_python_311(report, extras):
    env = report["environment"]
    assert (env["sys_platform"], env["platform_machine"], env["python_version"]) == ("linux", "x86_64", "3.11")
    # the report must cover every extra, so every requirement below is checked against a resolution
    assert set(report["extras"]) == set(extras), f"{REPORT.name} resolved extras {report['extras']}"
    assert "--dry-run" in report["command"] and "--ignore-installed" in report["command"]
    assert {"name": "scrit-study", "version": "0.1.0", "requested": True} in report["install"]


def test_shared_pins_equal_the_resolved_versions_and_both_environment_files(deps, env_cpu, env_gpu, resolved):
    for name in SHARED_PINS:
        pin = _exact(deps[name], f"pyproject.toml dependencies: {name}")
        assert resolved.get(name) == pin, f"{REPORT.name} resolved {name} {resolved.get(name)}, pyproject pins {pin}"
        for label, env in (("environment-cpu.yml", env_cpu), ("environment-gpu.yml", env_gpu)):
            assert _exact(env[name], f"{label}: {name}") == pin, f"{label} pins {env[name]}, pyproject {pin}"


def test_gpu_pins_equal_the_resolved_versions(extras, env_gpu, resolved):
    for name in GPU_PINS:
        pin = _exact(extras["gpu"][name], f"pyproject.toml gpu extra: {name}")
        assert resolved.get(name) == pin, f"{REPORT.name} resolved {name} {resolved.get(name)}, gpu extra pins {pin}"
        assert _exact(env_gpu[name], f"environment-gpu.yml: {name}") == pin


def test_torch_range_admits_the_cpu_wheel_and_the_gpu_build(deps, env_cpu, resolved):
    torch_range = deps["torch"].specifier
    # the Makefile installs the CPU wheel before the package; the range must already be satisfied by it, or pip
    # would replace it with a CUDA build
    makefile_pin = re.search(r"pip install -q torch==(\S+)", (REPO / "Makefile").read_text())
    assert makefile_pin, "Makefile: no `pip install -q torch==X` step before the package install"
    cpu_torch = makefile_pin.group(1)
    assert _exact(env_cpu["torch"], "environment-cpu.yml: torch") == cpu_torch
    for label, version in (("the CPU wheel (Makefile)", cpu_torch), (REPORT.name, resolved["torch"])):
        assert torch_range.contains(Version(version)), f"pyproject torch {torch_range} rejects {label}'s {version}"


def test_every_declared_requirement_holds_for_the_resolved_versions(deps, extras, env_cpu, env_gpu, resolved):
    # catches a pin edited in pyproject or an environment file without re-running scripts/resolve_gpu_pins.sh
    sources = {"pyproject.toml": deps, "environment-gpu.yml": env_gpu, "environment-cpu.yml": env_cpu}
    sources |= {f"pyproject.toml extra {k}": v for k, v in extras.items()}
    for where, reqs in sources.items():
        for name, req in reqs.items():
            if where == "environment-cpu.yml" and name == "torch":
                continue  # the CPU build; checked against the torch range above
            assert name in resolved, f"{where}: {name} is missing from {REPORT.name}"
            assert req.specifier.contains(resolved[name], prereleases=True), (
                f"{where}: {req} does not admit the resolved {name} {resolved[name]}; re-run scripts/resolve_gpu_pins.sh"
            )

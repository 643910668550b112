"""Repository metadata a user relies on: LICENSE, CITATION.cff and the licence list in docs/LICENSES.md."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _citation() -> dict:
    path = REPO / "CITATION.cff"
    assert path.is_file(), f"{path} is missing"
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), f"{path} does not parse to a YAML mapping"
    return data


def test_license_exists_and_is_mit():
    text = (REPO / "LICENSE").read_text()
    # CITATION.cff and docs/LICENSES.md both say MIT; the file must be the MIT text.
    assert text.startswith("MIT License") and "Permission is hereby granted, free of charge" in text


def test_citation_version_matches_pyproject():
    cff, version = _citation(), _pyproject()["project"]["version"]
    assert str(cff.get("version")) == version, (
        f"CITATION.cff version {cff.get('version')!r} != pyproject.toml [project].version {version!r}")


def test_citation_has_cff_required_keys_and_cites_the_paper():
    cff = _citation()
    assert cff["cff-version"] == "1.2.0"
    for key in ("message", "title", "authors"):  # required by the CFF 1.2.0 schema
        assert cff.get(key), f"CITATION.cff lacks '{key}'"
    assert cff["title"] == "SCRIT reproducible study"
    assert cff["license"] == "MIT"
    paper = cff["preferred-citation"]
    assert paper["title"] == "Enabling Scalable Oversight via Self-Evolving Critic"
    assert paper["authors"][0] == {"family-names": "Tang", "given-names": "Zhengyang"}
    ids = {i["value"] for i in paper["identifiers"]}
    assert "arXiv:2501.05727" in ids and "10.48550/arXiv.2501.05727" in ids


def _dependency_names() -> set[str]:
    project = _pyproject()["project"]
    reqs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        reqs.extend(extra)
    # the distribution name is what precedes any version specifier, extra or marker
    return {re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower().replace("_", "-") for r in reqs}


def test_every_dependency_has_a_licence_row():
    text = (REPO / "docs" / "LICENSES.md").read_text()
    rows = {m.group(1).lower() for m in re.finditer(r"^\| ([A-Za-z0-9_.-]+) \|", text, re.M)}
    missing = sorted(_dependency_names() - rows)
    assert not missing, f"docs/LICENSES.md has no licence row for pyproject dependencies {missing}"

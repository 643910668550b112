"""README.md is the front door: every link and every repository path it names resolves inside the
repository (no ../shared, no file that moved away)."""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", REPO / "docs" / "EVALUATION.md"]
#: top-level folders and files of the repository a backticked path may start with
ROOTS = ("scrit_utils/", "notebooks/", "configs/", "models/", "results/", "scripts/", "tests/", "docs/",
         "requirements/", "data/")


def _targets(text: str) -> list[str]:
    links = [m for m in re.findall(r"\]\(([^)\s]+)\)", text) if not m.startswith(("http://", "https://", "#"))]
    paths = [m for m in re.findall(r"`([^`\s]+)`", text) if m.startswith(ROOTS)]
    return links + paths


def _resolves(p: str) -> bool:
    p = p.split("#")[0].rstrip(":,.")
    if any(c in p for c in "{}<>*|") or p.startswith("data/real"):  # a pattern; the folder `scrit data fetch` fills
        return True
    return (REPO / p).exists()


def test_every_link_and_path_resolves():
    for doc in DOCS:
        text = doc.read_text()
        assert "](../" not in text, f"{doc.name} links outside the repository"
        missing = [t for t in _targets(text) if not _resolves(t)]
        assert not missing, f"{doc.relative_to(REPO)}: these do not exist in the repository: {missing}"


def test_the_checker_sees_a_broken_link():
    assert _targets("see [x](docs/nope.md) and `scripts/missing.py`") == ["docs/nope.md", "scripts/missing.py"]
    assert not _resolves("docs/nope.md") and _resolves("docs/GPU.md") and _resolves("configs/qwen2.5-{1.5b,7b}.yaml")

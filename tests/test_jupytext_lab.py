"""`make lab`: JupyterLab opens the jupytext .py notebooks as notebooks, and saving one leaves it unchanged.

JupyterLab itself is an optional extra (`.[lab]`), so these tests check the pieces it reads with the tools that
are installed: the Makefile's environment (through jupyter_core, which computes Jupyter's config path), the
labconfig override (through jupytext's own `jupytext-config`), and the save path (through jupytext's API with
the folder's jupytext.toml, as its contents manager does).
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
from jupytext.config import load_jupytext_configuration_file

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.py"))
LABCONFIG = REPO / ".jupyter" / "labconfig" / "default_setting_overrides.json"


def _lab_command() -> str:
    """The shell line `make lab` runs to start JupyterLab (dry run: nothing is installed or started)."""
    out = subprocess.run(["make", "-n", "lab"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    lines = [ln for ln in out.splitlines() if "jupyter lab" in ln]
    assert len(lines) == 1, f"make -n lab: expected one 'jupyter lab' line, got {lines}"
    return lines[0]


def test_make_lab_puts_the_project_labconfig_on_jupyters_config_path():
    line = _lab_command()
    assert line.rstrip().endswith("jupyter lab notebooks/"), line
    # Run the recipe's environment with Python in place of JupyterLab and ask jupyter_core where it looks.
    probe = f"{shlex.quote(sys.executable)} -c 'import jupyter_core.paths as p; print(\"\\n\".join(p.jupyter_config_path()))'"
    env_part = line.rsplit(maxsplit=3)[0] + " "  # everything before `<venv>/bin/jupyter lab notebooks/`
    env = {k: v for k, v in os.environ.items() if k != "JUPYTER_CONFIG_PATH"}
    paths = subprocess.run(["sh", "-c", env_part + probe], capture_output=True, text=True, check=True,
                           env=env).stdout.split()
    assert str(REPO / ".jupyter") in paths, paths
    # a user's own JUPYTER_CONFIG_PATH is kept, after the project's
    env["JUPYTER_CONFIG_PATH"] = "/somewhere/else"
    paths = subprocess.run(["sh", "-c", env_part + probe], capture_output=True, text=True, check=True,
                           env=env).stdout.split()
    assert paths.index(str(REPO / ".jupyter")) < paths.index("/somewhere/else")


def test_labconfig_makes_jupytext_notebook_the_default_viewer_for_python():
    data = json.loads(LABCONFIG.read_text())
    viewers = data["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]
    assert viewers == {"python": "Jupytext Notebook"}, f"{LABCONFIG}: {viewers}"
    # jupytext's own tool reads the file the same way
    out = subprocess.run([sys.executable, "-m", "jupytext_config", "--settings-file", str(LABCONFIG),
                          "list-default-viewer"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "python: Jupytext Notebook"


def test_saving_from_jupyterlab_leaves_each_notebook_byte_identical():
    cfg = load_jupytext_configuration_file(str(REPO / "notebooks" / "jupytext.toml"))
    assert cfg is not None and NOTEBOOKS
    for path in NOTEBOOKS:
        src = path.read_text()
        nb = jupytext.reads(src, fmt="py:percent", config=cfg)
        # what a JupyterLab session adds before saving: kernel info, outputs, execution counts
        nb.metadata["language_info"] = {"name": "python", "version": "3.11"}
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs = [nbformat.v4.new_output("stream", text="out\n")]
                cell.execution_count = 1
        nb = nbformat.reads(nbformat.writes(nb), as_version=4)  # the JSON round trip through the browser
        saved = jupytext.writes(nb, fmt="py:percent", config=cfg)
        assert saved == src, f"{path.name}: saving it from JupyterLab would change the file"

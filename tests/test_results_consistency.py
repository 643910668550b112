"""results/ comes from one run and its executed notebooks are clean (scrit_utils.study.results_check),
and the driver's notebook cleaning (scrit_utils.driver.clean_notebook) does what the check expects."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from scrit_utils.core import config
from scrit_utils.study import results_check
from scrit_utils import driver as run
from scrit_utils.core import provenance

REPO = Path(__file__).resolve().parents[1]


def _nb(path: Path, sha: str, outputs=(), last_md: bool = True) -> None:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x = 1")
    cell.outputs = [nbformat.from_dict(o) for o in outputs]
    nb.cells = [cell]
    if last_md:
        end = nbformat.v4.new_code_cell("display(Markdown(text))", metadata={"tags": ["interpretation"]})
        end.outputs = [nbformat.v4.new_output("display_data", data={"text/markdown": "**Reading.** ok"})]
        nb.cells.append(end)
    nb.metadata["scrit"] = {"run_sha": sha, "profile": "toy"}
    nbformat.write(nb, str(path))


def _results(tmp: Path, sha: str = "abc123") -> Path:
    res = tmp / "results"
    rd = res / "runs" / "toy"
    rd.mkdir(parents=True)
    (rd / "profile.yaml").write_text("run:\n  notebooks: ['01', '04']\n")
    stamp = provenance.stamp_comment({"sha": sha, "profile": "toy"})
    (res / "README.md").write_text(f"{stamp}\n# SCRIT study results\n\n## Bottom line\n\nx\n\n## Claims\n")
    (res / "timing.md").write_text(f"{stamp}\n# Timing\n")
    (rd / "README.md").write_text(f"{stamp}\n# Run record\n")
    (rd / "run.json").write_text(json.dumps({"notebooks": {"01_data": {"run_sha": sha}, "04_training": {"run_sha": sha}}}))
    (rd / "04_metrics.json").write_text(json.dumps({"run": {"sha": sha}}))
    _nb(rd / "01_data.ipynb", sha)
    _nb(rd / "04_training.ipynb", sha)
    return res


def test_one_clean_run_has_no_problems(tmp_path):
    assert results_check.problems(_results(tmp_path)) == []


def test_notebook_00_builds_inputs_and_is_not_part_of_the_study_run(tmp_path):
    res = _results(tmp_path)
    _nb(res / "runs" / "toy" / "00_base_models.ipynb", "older0", last_md=False)
    rec = json.loads((res / "runs" / "toy" / "run.json").read_text())
    rec["notebooks"]["00_base_models"] = {"run_sha": "older0"}
    (res / "runs" / "toy" / "run.json").write_text(json.dumps(rec))
    assert results_check.problems(res) == []


def test_a_file_from_another_run_is_reported(tmp_path):
    res = _results(tmp_path)
    (res / "runs" / "toy" / "04_metrics.json").write_text(json.dumps({"run": {"sha": "def456"}}))
    (res / "timing.md").write_text("# Timing, no stamp\n")
    probs = results_check.problems(res)
    assert any("files from 2 runs" in p and "def456" in p and "04_metrics.json" in p for p in probs), probs
    assert any("no run stamp in timing.md" in p for p in probs), probs


@pytest.mark.parametrize("output, expected", [
    ({"output_type": "stream", "name": "stdout", "text": "FutureWarning: x is deprecated\n"}, "contains 'Warning'"),
    ({"output_type": "error", "ename": "E", "evalue": "v", "traceback": ["Traceback (most recent call last)"]},
     "contains 'Traceback'"),
    ({"output_type": "stream", "name": "stdout", "text": "saved to /home/someone/clone/results/x.png\n"}, "absolute path"),
    ({"output_type": "stream", "name": "stdout", "text": "x" * 310_000}, "KB > 300 KB"),
])
def test_unclean_notebooks_are_reported(tmp_path, output, expected):
    res = _results(tmp_path)
    _nb(res / "runs" / "toy" / "04_training.ipynb", "abc123", [output])
    assert any(expected in p for p in results_check.problems(res))


def test_notebook_must_end_with_an_interpretation_and_readme_with_the_bottom_line(tmp_path):
    res = _results(tmp_path)
    _nb(res / "runs" / "toy" / "01_data.ipynb", "abc123", last_md=False)
    (res / "README.md").write_text(provenance.stamp_comment({"sha": "abc123", "profile": "toy"}) + "\n# R\n\n## Design\n")
    probs = results_check.problems(res)
    assert any("01_data.ipynb: does not end with an interpretation" in p for p in probs)
    assert any("not '## Bottom line'" in p for p in probs)


def test_clean_notebook_moves_stderr_out_and_scrubs_paths(tmp_path, capsys):
    cfg = config.load("configs/smoke.yaml", [f"run.artifacts_dir={tmp_path / 'arts'}", f"run.results_dir={tmp_path / 'res'}"])
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(f'overrides = ["run.artifacts_dir={tmp_path / "arts"}"]',
                                       metadata={"tags": ["injected-parameters"]})
    code = nbformat.v4.new_code_cell("work()")
    code.outputs = [
        nbformat.v4.new_output("stream", name="stderr", text="\x1b[1m 50%|#####     | 1/2 progress\x1b[0m\n"),
        nbformat.v4.new_output("stream", name="stdout", text=f"stage at {tmp_path / 'arts' / '01_data'}\n"
                                                             f"model {config.REPO_ROOT / 'models' / 'toy-0.3m'}\n"),
    ]
    end = nbformat.v4.new_code_cell("display(Markdown(t))", metadata={"tags": ["interpretation"]})
    nb.cells = [params, code, end]
    nb.metadata["papermill"] = {"input_path": "whole notebook", "output_path": str(tmp_path / "res" / "x.ipynb"),
                                "parameters": {"overrides": [f"run.results_dir={tmp_path / 'res'}"]}}
    out = tmp_path / "x.ipynb"
    nbformat.write(nb, str(out))
    run.clean_notebook(out, cfg, config.REPO_ROOT / "notebooks" / "05_scaling_analysis.py", "abc123")
    assert "1/2 progress" in capsys.readouterr().err  # stderr is shown on the terminal instead
    saved = json.loads(out.read_text())
    text = out.read_text()
    assert str(tmp_path) not in text and str(config.REPO_ROOT) not in text
    outs = saved["cells"][1]["outputs"]
    assert [o["name"] for o in outs] == ["stdout"]
    assert "stage at <artifacts>/01_data" in "".join(outs[0]["text"]) and "model ./models/toy-0.3m" in "".join(outs[0]["text"])
    assert saved["metadata"]["scrit"]["run_sha"] == "abc123"
    assert saved["metadata"]["papermill"]["input_path"] == "notebooks/05_scaling_analysis.py"
    assert saved["cells"][2]["metadata"]["jupyter"]["source_hidden"] is True


def test_committed_results_come_from_one_clean_run():
    probs = results_check.problems(REPO / "results")
    assert not probs, ("results/ is not one clean run of the current driver; regenerate it with a fresh clone's "
                       "`make study`:\n" + "\n".join(probs))

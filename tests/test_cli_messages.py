"""The command line fails in one line naming the problem (issue #27): a malformed --set, an unknown
profile (with the list of profiles), an unknown key (with the nearest key), a usage error; `--version`;
help texts with a description and examples; --set takes several pairs the same way everywhere."""
from __future__ import annotations

import argparse
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from scrit_utils import __version__, cli
from scrit_utils.core import config
from scrit_utils.core.config import REPO_ROOT

#: subcommands whose parser this issue's CLI part covers (eval and data have their own owners and tests)
OWNED = ("run", "build-base-models")


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got {len(lines)}:\n{err}"
    assert "Traceback" not in err
    return lines[0]


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as e:  # argparse usage errors exit
        code = e.code
    return code, capsys.readouterr().err


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch):
    monkeypatch.chdir(REPO_ROOT)


def test_malformed_override_is_one_line_naming_the_override(capsys):
    code, err = run_cli(capsys, "run", "--profile", "configs/smoke.yaml", "--set", 'run.notebooks=["01"')
    line = one_line(err)
    assert code == 1 and line.startswith("scrit run: error: override 'run.notebooks=[\"01\"'")
    assert "not valid YAML" in line and "column 6" in line


def test_set_item_without_equals_is_a_usage_error_in_one_line(capsys):
    code, err = run_cli(capsys, "run", "--profile", "configs/smoke.yaml", "--set", "training.max_steps")
    line = one_line(err)
    assert code == 2 and "'training.max_steps': expected KEY=VALUE" in line and "(see scrit run --help)" in line


def test_unknown_profile_lists_the_profiles_and_names_the_folder_once(capsys):
    code, err = run_cli(capsys, "run", "--profile", "configs/nope.yaml")
    line = one_line(err)
    assert code == 1 and "profile not found: configs/nope.yaml" in line
    assert line.count(str(REPO_ROOT)) == 1  # run from the repo root: one folder, not the same one twice
    listed = line.split("profiles: ")[1].split(", ")
    assert listed == sorted(str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "configs").glob("*.yaml"))
    assert "did you mean" not in line  # "nope" is close to no profile name


def test_unknown_profile_suggests_the_nearest_name(capsys):
    _, err = run_cli(capsys, "run", "--profile", "toy")
    assert "did you mean configs/toy.yaml?" in one_line(err)
    _, err = run_cli(capsys, "run", "--profile", "configs/smok.yaml")
    assert "did you mean configs/smoke.yaml?" in one_line(err)


def test_unknown_key_names_the_nearest_key(capsys):
    code, err = run_cli(capsys, "run", "--profile", "configs/smoke.yaml", "--set", "training.learning_rat=0.001")
    line = one_line(err)
    assert code == 1
    assert "configs/smoke.yaml: training.learning_rat: unknown key; did you mean training.learning_rate?" in line
    assert "(set by override training.learning_rat=0.001)" in line
    _, err = run_cli(capsys, "run", "--profile", "configs/smoke.yaml", "--set", "trainng.max_steps=3")
    assert "trainng: unknown key; did you mean training?" in one_line(err)


def test_unknown_key_without_a_near_one_lists_the_allowed_keys(capsys):
    _, err = run_cli(capsys, "run", "--profile", "configs/smoke.yaml", "--set", "training.zzz=1")
    line = one_line(err)
    assert "training.zzz: unknown key (allowed: bf16, " in line and "did you mean" not in line


def test_unknown_key_in_a_profile_file(tmp_path):
    p = tmp_path / "typo.yaml"
    p.write_text(f"include: {REPO_ROOT / 'configs' / 'smoke.yaml'}\nevaluation:\n  n_item: 4\n")
    with pytest.raises(config.ConfigError, match=r"typo\.yaml: evaluation\.n_item: unknown key; "
                                                 r"did you mean evaluation\.n_items\?"):
        config.load(p)


def test_invalid_yaml_profile_is_one_line_with_its_position(tmp_path, capsys):
    p = tmp_path / "bad.yaml"
    p.write_text("run:\n  name: x\n  seed: [1\n")
    code, err = run_cli(capsys, "run", "--profile", str(p))
    line = one_line(err)
    assert code == 1 and "bad.yaml: invalid YAML: " in line and re.search(r"line \d+, column \d+", line)


def test_missing_required_option_is_one_line(capsys):
    code, err = run_cli(capsys, "run")
    assert code == 2 and one_line(err) == ("scrit run: error: the following arguments are required: --profile "
                                           "(see scrit run --help)")


def test_unknown_notebook_number_is_one_line(capsys):
    code, err = run_cli(capsys, "run", "--profile", "configs/smoke.yaml", "--only", "09")
    assert code == 1 and "--only 09: no such notebook" in one_line(err)


def test_version_text(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    out = capsys.readouterr().out.strip()
    assert e.value.code == 0 and out == cli.version_text()
    assert out.startswith(f"scrit {__version__}")
    if (REPO_ROOT / ".git").exists():  # a git checkout: its commit, 12 hex digits (+dirty when changed)
        assert re.fullmatch(rf"scrit {re.escape(__version__)} \(git [0-9a-f]{{12}}(\+dirty)?\)", out), out


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_owned_subcommand_and_option_has_help_with_examples():
    parser = cli.build_parser()
    assert parser.description and "examples:" in parser.epilog
    subs = _subparsers(parser)
    for name in OWNED:
        p = subs[name]
        assert p.description and len(p.description) > 80, name
        assert "examples:" in (p.epilog or "") and f"scrit {name} " in p.epilog, name
        for act in p._actions:
            assert act.help and act.help.strip(), f"scrit {name} {act.option_strings}: no help text"


def test_run_help_prints_the_description_and_examples(capsys):
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    out = capsys.readouterr().out
    assert "Execute the study notebooks" in out and "examples:" in out
    assert "--set training.max_steps=8 data.max_problems=12" in out  # line breaks of the examples kept


def test_set_takes_several_pairs_after_one_flag_or_repeated():
    subs = _subparsers(cli.build_parser())
    args = subs["run"].parse_args(["--profile", "p.yaml", "--set", "a=1", "b=2", "--set", "c=[x, y]"])
    assert args.overrides == ["a=1", "b=2", "c=[x, y]"]
    assert subs["run"].parse_args(["--profile", "p.yaml"]).overrides == []
    train_sft = _load_script("train_sft")
    args = train_sft.parse_args(["--profile", "p", "--data", "d", "--output-dir", "o", "--set", "a=1", "b=2",
                                 "--set", "c=3"])
    assert args.overrides == ["a=1", "b=2", "c=3"]


def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_train_sft_bad_key_is_one_line_before_loading_torch(capsys):
    code = _load_script("train_sft").main(["--profile", "configs/smoke.yaml", "--data", "none.jsonl",
                                            "--output-dir", "unused", "--set", "training.max_step=2"])
    line = one_line(capsys.readouterr().err)
    assert code == 1 and line.startswith("train_sft.py: error: configs/smoke.yaml: training.max_step: unknown key; "
                                         "did you mean training.max_steps?")


def test_build_base_models_errors_are_one_line(capsys):
    code, err = run_cli(capsys, "build-base-models", "--profile", "configs/nope.yaml")
    assert code == 1 and one_line(err).startswith("scrit build-base-models: error: profile not found: configs/nope.yaml")
    code, err = run_cli(capsys, "build-base-models", "--sizes", "toy-1m")
    assert code == 2 and "invalid choice: 'toy-1m'" in one_line(err)


def test_build_base_models_reads_an_included_profile(tmp_path):
    from scrit_utils.toy_models.cli import config_from_profile

    p = tmp_path / "inc.yaml"
    p.write_text(f"include: {REPO_ROOT / 'configs' / 'toy.yaml'}\nrun:\n  seed: 3\n")
    d = config_from_profile(str(p))
    assert d["seed"] == 3 and d["world"]["max_value"] == config.load("configs/toy.yaml").world.arith.max_value


@pytest.mark.slow
def test_the_installed_command_prints_one_line_and_no_traceback(tmp_path):
    """What a user types, in a shell, from another folder: the whole process prints one line."""
    r = subprocess.run([sys.executable, "-m", "scrit_utils.cli", "run", "--profile", "configs/smoke.yaml",
                        "--set", 'run.notebooks=["01"'], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                       env={k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"})
    assert r.returncode == 1 and r.stdout == ""
    assert "not valid YAML" in one_line(r.stderr)


def test_scrit_run_data_dir_is_exported_for_the_kernels(tmp_path, monkeypatch, capsys):
    from scrit_utils import cli

    monkeypatch.setenv("SCRIT_DATA_DIR", "unset-by-this-test")  # monkeypatch restores the variable afterwards
    rc = cli.main(["run", "--profile", "no_such_profile.yaml", "--data-dir", str(tmp_path)])
    assert rc != 0 and "profile not found" in capsys.readouterr().err
    assert os.environ["SCRIT_DATA_DIR"] == str(tmp_path.resolve())

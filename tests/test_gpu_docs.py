"""Every command in docs/GPU.md is checked: parsed by the parser that will run it, and dry-run where that
means something (profiles load with their --set overrides, named files exist, imports resolve).

Commands are the lines of the page's fenced ``bash`` blocks (a trailing backslash continues a line; ``#``
starts a comment; ``&&`` separates commands); ``python`` blocks are compiled and their project imports
resolved. A command whose first word this test does not know fails it: add a check for it here.
Placeholders in angle brackets (``<hash>``, ``<node0>``) and the rank ``R`` stand for values of the reader's run.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import importlib
import importlib.util
import io
import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "GPU.md"
PLACEHOLDERS = {"<hash>": "0123abcd", "<node0>": "10.0.0.1", "R": "0"}


def blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", DOC.read_text(), flags=re.S | re.M)


def commands() -> list[list[str]]:
    out = []
    for block in blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            cmd: list[str] = []
            for w in words + ["&&"]:
                if w == "&&":
                    if cmd:
                        out.append([PLACEHOLDERS.get(x, x) for x in cmd])
                    cmd = []
                else:
                    cmd.append(w)
    return out


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return parser.parse_args(argv)
    except SystemExit:
        raise AssertionError(f"{' '.join(argv)!r} does not parse: {err.getvalue().strip()}") from None


def _script_module(name: str):
    spec = importlib.util.spec_from_file_location(f"_doc_{name}", REPO / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _exists(path: str) -> None:
    if "<" not in path:
        assert (REPO / path).exists(), f"{path} (named in docs/GPU.md) does not exist"


def _profile(path: str, overrides) -> None:
    from scrit_utils.core import config

    _exists(path)
    config.load(path, overrides=list(overrides or []))  # the profile loads with the page's --set pairs


def check_scrit(argv: list[str]) -> None:
    from scrit_utils.cli import build_parser

    args = _parse(build_parser(), argv)
    if args.command == "run":
        _profile(args.profile, args.overrides)
    if getattr(args, "profile", None) and args.command != "run":
        _exists(args.profile)


def check_train_sft(argv: list[str]) -> None:
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = _script_module("train_sft").parse_args(argv)
    except SystemExit:
        raise AssertionError(f"train_sft.py {' '.join(argv)!r} does not parse: {err.getvalue().strip()}") from None
    _profile(args.profile, args.overrides)


def check_python(argv: list[str]) -> None:
    assert argv[0] == "python" and argv[1].startswith("scripts/"), argv
    _exists(argv[1])
    name = Path(argv[1]).stem
    if name == "train_sft":
        check_train_sft(argv[2:])
    elif name == "gpu_check":
        _parse(_script_module("gpu_check").build_parser(), argv[2:])
    else:
        raise AssertionError(f"no check for scripts/{name}.py yet: add one to tests/test_gpu_docs.py")


def check_accelerate(argv: list[str]) -> None:
    from accelerate.commands.launch import launch_command_parser

    assert argv[:2] == ["accelerate", "launch"], argv
    args = _parse(launch_command_parser(), argv[2:])
    _exists(args.config_file)
    assert yaml.safe_load((REPO / args.config_file).read_text()), args.config_file
    assert args.training_script == "scripts/train_sft.py", args.training_script
    check_train_sft(args.training_script_args)


def check_pip(argv: list[str]) -> None:
    assert argv[:3] == ["pip", "install", "-e"], argv
    m = re.fullmatch(r"\.\[([a-z,]+)\]", argv[3])
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert m and set(m.group(1).split(",")) <= set(extras), (argv[3], sorted(extras))


def check_conda(argv: list[str]) -> None:
    if argv[1] == "env":
        assert argv[2:4] == ["create", "-f"], argv
        _exists(argv[4])
    else:
        assert argv[1] == "activate"
        names = {yaml.safe_load(p.read_text())["name"] for p in REPO.glob("environment-*.yml")}
        assert argv[2] in names, (argv[2], names)


def check_vllm(argv: list[str]) -> None:
    assert argv[1] == "serve", argv
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vllm is not installed here (GPU extra): `vllm serve` is parsed where it is")
    from vllm.entrypoints.openai.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    _parse(make_arg_parser(FlexibleArgumentParser()), argv[2:])


def check_make(argv: list[str]) -> None:
    targets = re.findall(r"^([a-z][\w-]*):", (REPO / "Makefile").read_text(), flags=re.M)
    for word in argv[1:]:
        if "=" not in word:
            assert word in targets, (word, targets)


CHECKS = {
    "scrit": lambda a: check_scrit(a[1:]),
    "python": check_python,
    "accelerate": check_accelerate,
    "pip": check_pip,
    "conda": check_conda,
    "vllm": check_vllm,
    "make": check_make,
    "python3.11": lambda a: None if a[1:3] == ["-m", "venv"] else check_python(["python", *a[1:]]),
    ".": lambda a: None if a[1] == ".venv/bin/activate" else pytest.fail(f"sources {a[1]}"),
    "export": lambda a: None if a[1].split("=")[0] in ("SCRIT_DATA_DIR",) else pytest.fail(f"export {a[1]}"),
}

COMMANDS = commands()


def test_page_has_commands():
    firsts = {c[0] for c in COMMANDS}
    assert {"scrit", "python", "accelerate", "pip"} <= firsts and len(COMMANDS) >= 15
    assert firsts <= set(CHECKS), f"commands without a check: {sorted(firsts - set(CHECKS))}"


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(c)[:70] for c in COMMANDS])
def test_command_parses_and_names_what_exists(argv):
    CHECKS[argv[0]](argv)


def test_python_blocks_compile_and_import():
    for block in blocks("python"):
        tree = ast.parse(block)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module.startswith("scrit_utils"):
                mod = importlib.import_module(node.module)
                for a in node.names:
                    assert hasattr(mod, a.name), f"{node.module}.{a.name} (docs/GPU.md) does not exist"


def test_a_wrong_command_would_fail():
    """The checks are not vacuous: a misspelt option, a missing profile and an unknown extra fail."""
    with pytest.raises(AssertionError, match="does not parse"):
        check_scrit(["run", "--profile", "configs/qwen2.5-7b.yaml", "--too", "03"])
    with pytest.raises(AssertionError, match="does not exist"):
        check_scrit(["run", "--profile", "configs/qwen2.5-8b.yaml"])
    with pytest.raises(AssertionError):
        check_pip(["pip", "install", "-e", ".[gpu,cuda]"])
    with pytest.raises(AssertionError):
        check_accelerate(["accelerate", "launch", "--config_file", "configs/accelerate/nope.yaml",
                          "scripts/train_sft.py", "--profile", "configs/qwen2.5-7b.yaml", "--data", "x", "--output-dir", "y"])
    with pytest.raises((AssertionError, SystemExit)):
        check_python(["python", "scripts/gpu_check.py", "--devices"])

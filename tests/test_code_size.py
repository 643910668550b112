"""The package's size limits (issue #15): no module over 500 lines, no function over 80 lines."""
import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "scrit_utils"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80


def _long_functions(path: Path, label: str):
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = node.end_lineno - node.lineno + 1
            if n > MAX_FUNCTION_LINES:
                yield f"{label}:{node.lineno} {node.name} ({n} lines)"


def test_no_module_over_the_limit():
    big = [f"{p.relative_to(PKG.parent)} ({n} lines)" for p in sorted(PKG.rglob("*.py"))
           if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES]
    assert not big, f"modules over {MAX_MODULE_LINES} lines: {big}"


def test_no_function_over_the_limit():
    long = [f for p in sorted(PKG.rglob("*.py")) for f in _long_functions(p, str(p.relative_to(PKG.parent)))]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_the_checker_sees_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    f = tmp_path / "probe.py"
    f.write_text(f"def too_long():\n{body}\n\n\ndef short():\n    return 1\n")
    assert [x.split()[-3] for x in _long_functions(f, "probe.py")] == ["too_long"]

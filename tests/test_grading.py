"""Answer grading: fast paths, math-verify path, hard timeouts in threads and subprocesses."""
from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time

import pytest

from scrit_utils.critique.grading import as_number, choice_letter, grade_batch, is_equivalent

# an input on which sympy computes a gigantic integer in C: signal-based timeouts cannot stop it
PATHOLOGICAL = "9^{9^{9^{9}}}"


@pytest.mark.parametrize(
    "pred,gt,ok",
    [
        ("B", "B", True), ("(B)", "B", True), ("B. 12 apples", "B", True), ("\\text{B}", "B", True),
        ("\\text{(B)}", "B", True), ("The answer is (B)", "B", True), ("$\\boxed{B}$", "B", True),
        ("b", "B", True), ("C", "B", False), ("(C) 12 apples", "B", False), ("12", "B", False),
        ("$\\boxed{30}$", "C", False), ("E", "E", True), ("A", "(A)", True),
    ],
)
def test_multiple_choice(pred, gt, ok):
    assert is_equivalent(pred, gt) is ok


@pytest.mark.parametrize(
    "pred,gt,ok",
    [
        ("1,000", "1000", True), ("540 meters", "540", True), ("$5", "5", True), ("\\$5.00", "5", True),
        ("#### 540", "540", True), ("540", "#### 540", True), ("18.0", "18", True), ("-3", "-3", True),
        ("541", "540", False), ("1,001", "1000", False), ("-5", "5", False), ("12,345,678", "12345678", True),
    ],
)
def test_gsm8k_numbers(pred, gt, ok):
    assert is_equivalent(pred, gt) is ok


def test_as_number_and_choice_letter():
    assert as_number("1,000 dollars") == 1000.0 and as_number("5x") is None and as_number("2/3") is None
    assert as_number("15,20") is None  # a list, not a thousands separator
    assert choice_letter("D) none of these") == "D" and choice_letter("42") is None


@pytest.mark.parametrize(
    "pred,gt,ok",
    [
        ("\\frac{1}{2}", "0.5", True), ("\\dfrac{7}{2}", "\\frac{7}{2}", True), ("\\frac{2}{4}", "\\frac12", True),
        ("\\frac{1}{3}", "0.5", False), ("2\\pi^2-2\\pi", "2\\pi(\\pi-1)", True), ("\\sqrt{4}", "2", True),
        ("x^2", "x^{2}", True), ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{2}", False), ("(1,2)", "(2,1)", False),
        ("No", "No. It is not closed under scalar multiplication", True), ("Yes", "No", False),
        ("", "1", False), ("1", "", False),
    ],
)
def test_latex(pred, gt, ok):
    assert is_equivalent(pred, gt) is ok


# issue #16: equal answers the grader used to call wrong, each next to a near miss that must stay wrong
@pytest.mark.parametrize(
    "pred,gt,ok",
    [
        # matrices and vectors written with spaces, \dfrac, bmatrix
        ("\\begin{pmatrix} 3 \\\\ 0 \\\\ -7 \\end{pmatrix}", "\\begin{pmatrix}3\\\\0\\\\-7\\end{pmatrix}", True),
        ("\\begin{pmatrix} 3 \\\\ 1 \\\\ -7 \\end{pmatrix}", "\\begin{pmatrix}3\\\\0\\\\-7\\end{pmatrix}", False),
        ("\\begin{pmatrix} \\dfrac{1}{2} \\\\ 0 \\end{pmatrix}", "\\begin{pmatrix}\\frac12\\\\0\\end{pmatrix}", True),
        ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", True),
        ("\\begin{pmatrix} 1 & 3 \\\\ 2 & 4 \\end{pmatrix}", "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", False),
        ("\\begin{bmatrix} 1 \\\\ 2 \\end{bmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}", True),
        ("\\begin{pmatrix} 2 \\\\ 1 \\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}", False),
        # scientific notation
        ("0.00025", "2.5e-4", True), ("2.5E-4", "0.00025", True), ("2.5e-5", "0.00025", False),
        ("2.5 \\times 10^{-4}", "2.5e-4", True), ("-2.5e-4", "0.00025", False), ("1e3", "1000", True),
        ("2.5e-7", "2.6e-7", False), ("2.5e-4", "\\frac{1}{4000}", True), ("2.5e-4 m", "0.00025", True),
        ("2e-1", "-1+2e", True), ("2e-1", "0.2", True),  # 2e - 1 where the other answer uses the constant e
        # a variable after a fraction is not a unit
        ("\\frac{c}{2}", "\\frac{1}{2}c", True), ("\\frac{1}{2}c", "\\frac{c}{2}", True),
        ("\\frac{g}{\\sqrt{5}}", "\\frac{1}{\\sqrt{5}}g", True), ("\\frac{x}{m}", "\\frac{1}{m}x", True),
        ("\\frac{x}{2k}", "\\frac{1}{k}x", False), ("\\frac{c}{3}", "\\frac{1}{2}c", False),
        ("\\frac{g}{\\sqrt{5}}", "\\frac{1}{\\sqrt{3}}g", False),
        # units still stripped where they are units; different units differ
        ("10 cm", "10", True), ("5 m", "5", True), ("3 kg", "3\\text{ kg}", True), ("2 s", "2 m", False),
        ("5.13", "5.13\\mathrm{}/\\mathrm{}", True),
        # percent: 62.5 (GSM8K style) and 0.625 (its value); sets vs inequalities (math-verify option)
        ("0.625", "62.5%", True), ("62.5", "62.5%", True), ("6.25", "62.5%", False), ("0.63", "62.5%", False),
        ("\\frac{1}{2} \\leq x \\leq 8", "[\\frac{1}{2}, 8]", True), ("\\frac{1}{2} < x \\leq 8", "[\\frac{1}{2}, 8]", False),
        ("x>2", "(2,\\infty)", True), ("x \\geq 2", "(2,\\infty)", False),
        # a list of equations in another orientation
        ("B=2D,2C=E", "B=2D,\\quad E=2C", True), ("B=2D,2C=E", "B=2D,\\quad E=3C", False),
    ],
)
def test_issue16_classes_and_near_misses(pred, gt, ok):
    assert is_equivalent(pred, gt) is ok


# Order policy (see the grading module's docstring): the reference answer decides. A tuple, interval,
# vector or matrix in gt is ordered; a set or a bare comma list in gt is unordered and ignores repeats.
@pytest.mark.parametrize(
    "pred,gt,ok",
    [
        ("(1,2)", "(1,2)", True), ("(2,1)", "(1,2)", False), ("2,1", "(1,2)", False), ("1,2", "(1,2)", True),
        ("(1,3,2)", "(1,2,3)", False), ("[2,1]", "[1,2]", False), ("(0,1]", "(0,1)", False),
        ("2,1", "1,2", True), ("(2,1)", "1,2", True), ("1,2,2", "1,2", True), ("1,3", "1,2", False),
        ("\\{2,1\\}", "\\{1,2\\}", True), ("(2,1)", "\\{1,2\\}", True), ("\\{1,3\\}", "\\{1,2\\}", False),
        ("(3,4),(1,2)", "(1,2),(3,4)", True), ("(4,3),(1,2)", "(1,2),(3,4)", False),
        ("y=2,x=1", "x=1,y=2", True), ("(3,4)\\cup(1,2)", "(1,2)\\cup(3,4)", True),
    ],
)
def test_order_policy(pred, gt, ok):
    assert is_equivalent(pred, gt) is ok


def test_scientific_numbers():
    assert as_number("2.5e-4") == pytest.approx(2.5e-4) and as_number("-2.5E+3") == -2500.0
    assert as_number("2.5 \\times 10^{-4}") == pytest.approx(2.5e-4) and as_number("3\\cdot10^8") == 3e8
    assert as_number("2e") is None and as_number("e-4") is None


@pytest.mark.slow
def test_timeout_message_names_the_item(caplog):
    with caplog.at_level(logging.WARNING, logger="scrit_utils.critique.grading"):
        got = grade_batch([("1", "1"), ("x^2", "x^{2}+0")], n_jobs=1, timeout_s=1, progress=False, _test_sleep_s=30)
    assert got == [False, False]
    msgs = [r.getMessage() for r in caplog.records if "timed out" in r.getMessage()]
    assert len(msgs) == 2 and "grading item 1" in msgs[1] and "'x^2'" in msgs[1] and "'x^{2}+0'" in msgs[1], msgs
    long = "x" * 500
    with caplog.at_level(logging.WARNING, logger="scrit_utils.critique.grading"):
        is_equivalent(long, "1", timeout_s=1, _test_sleep_s=30)
    assert "xxx..." in caplog.records[-1].getMessage() and len(caplog.records[-1].getMessage()) < 300


def test_none_inputs():
    assert is_equivalent(None, "1") is False and is_equivalent("1", None) is False


@pytest.mark.slow
def test_timeout_pathological_input_main_thread():
    t = time.monotonic()
    assert is_equivalent(PATHOLOGICAL, "1", timeout_s=1.5) is False
    assert time.monotonic() - t < 30
    assert is_equivalent("\\frac{1}{2}", "0.5", timeout_s=5) is True  # the pool recovered


@pytest.mark.slow
def test_timeout_in_thread():
    out: list = []
    th = threading.Thread(target=lambda: out.append((is_equivalent("x", "x", timeout_s=1, _test_sleep_s=30),
                                                     is_equivalent(PATHOLOGICAL, "1", timeout_s=1.5))))
    t = time.monotonic()
    th.start()
    th.join(60)
    assert not th.is_alive() and out == [(False, False)]
    assert time.monotonic() - t < 45


@pytest.mark.slow
def test_timeout_in_subprocess_and_daemonic_pool_worker(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(
        "import multiprocessing as mp\n"
        "from scrit_utils.critique.grading import is_equivalent\n"
        f"def f(_):\n    return is_equivalent({PATHOLOGICAL!r}, '1', timeout_s=1.5), is_equivalent('x^2', 'x^{{2}}+0')\n"
        "if __name__ == '__main__':\n"
        "    print(f(0))\n"
        "    with mp.get_context('spawn').Pool(1) as pool:\n"  # pool workers are daemonic
        "        print(pool.map(f, [0])[0])\n"
    )
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:2] == ["(False, True)", "(False, True)"]


@pytest.mark.slow
def test_grade_batch_order_and_timeout():
    pairs = [("\\frac{1}{2}", "0.5"), ("1", "2"), (PATHOLOGICAL, "1"), ("\\sqrt{4}", "2"), ("B", "B"),
             ("x+1", "1+x")]
    t = time.monotonic()
    assert grade_batch(pairs, n_jobs=2, timeout_s=2, progress=False) == [True, False, False, True, True, True]
    assert time.monotonic() - t < 40
    assert grade_batch([], progress=False) == []

"""Answer grading: fast paths, math-verify path, hard timeouts in threads and subprocesses."""
from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from scrit_utils.grading import as_number, choice_letter, grade_batch, is_equivalent

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


def test_none_inputs():
    assert is_equivalent(None, "1") is False and is_equivalent("1", None) is False


def test_timeout_pathological_input_main_thread():
    t = time.monotonic()
    assert is_equivalent(PATHOLOGICAL, "1", timeout_s=1.5) is False
    assert time.monotonic() - t < 30
    assert is_equivalent("\\frac{1}{2}", "0.5", timeout_s=5) is True  # the pool recovered


def test_timeout_in_thread():
    out: list = []
    th = threading.Thread(target=lambda: out.append((is_equivalent("x", "x", timeout_s=1, _test_sleep_s=30),
                                                     is_equivalent(PATHOLOGICAL, "1", timeout_s=1.5))))
    t = time.monotonic()
    th.start()
    th.join(60)
    assert not th.is_alive() and out == [(False, False)]
    assert time.monotonic() - t < 45


def test_timeout_in_subprocess_and_daemonic_pool_worker(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(
        "import multiprocessing as mp\n"
        "from scrit_utils.grading import is_equivalent\n"
        f"def f(_):\n    return is_equivalent({PATHOLOGICAL!r}, '1', timeout_s=1.5), is_equivalent('x^2', 'x^{{2}}+0')\n"
        "if __name__ == '__main__':\n"
        "    print(f(0))\n"
        "    with mp.get_context('spawn').Pool(1) as pool:\n"  # pool workers are daemonic
        "        print(pool.map(f, [0])[0])\n"
    )
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:2] == ["(False, True)", "(False, True)"]


def test_grade_batch_order_and_timeout():
    pairs = [("\\frac{1}{2}", "0.5"), ("1", "2"), (PATHOLOGICAL, "1"), ("\\sqrt{4}", "2"), ("B", "B"),
             ("x+1", "1+x")]
    t = time.monotonic()
    assert grade_batch(pairs, n_jobs=2, timeout_s=2, progress=False) == [True, False, False, True, True, True]
    assert time.monotonic() - t < 40
    assert grade_batch([], progress=False) == []

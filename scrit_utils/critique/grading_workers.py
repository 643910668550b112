"""Killable grading worker processes with a hard per-item deadline (used by :mod:`scrit_utils.critique.grading`).

Each worker is ``python -m scrit_utils.critique.grading --worker``: one JSON request per stdin line, one JSON
reply per stdout line. :class:`_WorkerPool` hands items to idle workers, waits on all of them with a
selector, and kills and replaces a worker whose item runs past its deadline (the item is graded
``False`` and the log names it). Why processes and not threads or signals: see ``grading``'s docstring.
"""
from __future__ import annotations

import json
import logging
import os
import selectors
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Sequence

log = logging.getLogger("scrit_utils.critique.grading")

_WORKER_START_TIMEOUT_S = 120.0  # importing sympy + math-verify on a busy 2-core machine


class GradingWorkerError(RuntimeError):
    """A grading worker process could not be started (not raised for per-item timeouts)."""


def _spawn_worker() -> subprocess.Popen:
    env = dict(os.environ)
    # the directory holding the scrit_utils package (scrit_utils/critique/this file -> three levels up)
    pkg_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = pkg_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return subprocess.Popen(
        [sys.executable, "-m", "scrit_utils.critique.grading", "--worker"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True, encoding="utf-8", bufsize=1, env=env,
    )


def _kill(proc: subprocess.Popen) -> None:
    try:
        proc.kill()
        proc.wait(timeout=10)
    except Exception:  # pragma: no cover
        pass
    for f in (proc.stdin, proc.stdout):
        try:
            f.close()
        except Exception:
            pass


def _clip(s: str, n: int = 80) -> str:
    """``repr`` of ``s`` cut to about ``n`` characters, for log messages."""
    return repr(s if len(s) <= n else s[: n - 3] + "...")


@dataclass
class _Slot:
    proc: subprocess.Popen
    state: str = "starting"  # starting | idle | busy
    item: int = -1
    deadline: float = 0.0
    answers: tuple[str, str] = ("", "")  # (pred, gt) of the item being graded, for the timeout message


class _WorkerPool:
    """``n`` killable worker processes; ``run`` grades items with a hard per-item deadline."""

    def __init__(self, n: int):
        self.n = max(1, int(n))
        self.slots: list[_Slot] = []

    def _start(self) -> _Slot:
        return _Slot(_spawn_worker(), "starting", -1, time.monotonic() + _WORKER_START_TIMEOUT_S)

    def close(self) -> None:
        for s in self.slots:
            _kill(s.proc)
        self.slots = []

    def run(self, items: Sequence[tuple[int, str, str]], results: list, timeout_s: float,
            pbar=None, sleep_s: float = 0.0) -> None:
        """Grade ``(index, pred, gt)`` items into ``results[index]``."""
        todo = list(reversed(items))
        while len(self.slots) < min(self.n, max(1, len(items))):
            self.slots.append(self._start())
        sel = selectors.DefaultSelector()
        try:
            for s in self.slots:
                sel.register(s.proc.stdout, selectors.EVENT_READ, s)
            busy = 0
            while todo or busy:
                # dispatch to idle workers
                for s in self.slots:
                    if s.state == "idle" and todo:
                        i, pred, gt = todo.pop()
                        req = {"i": i, "pred": pred, "gt": gt}
                        if sleep_s:
                            req["sleep_s"] = sleep_s
                        try:
                            s.proc.stdin.write(json.dumps(req) + "\n")
                            s.proc.stdin.flush()
                        except (BrokenPipeError, OSError):
                            todo.append((i, pred, gt))
                            self._replace(sel, s)
                            continue
                        s.state, s.item, s.deadline = "busy", i, time.monotonic() + timeout_s
                        s.answers = (pred, gt)
                        busy += 1
                if not todo and not busy:
                    break
                now = time.monotonic()
                wait = max(0.0, min(s.deadline for s in self.slots if s.state != "idle") - now) \
                    if any(s.state != "idle" for s in self.slots) else 0.05
                for key, _ in sel.select(timeout=wait):
                    s = key.data
                    line = s.proc.stdout.readline()
                    if not line:  # worker died
                        if s.state == "busy":
                            results[s.item] = False
                            busy -= 1
                            if pbar is not None:
                                pbar.update(1)
                        elif s.state == "starting":
                            raise GradingWorkerError("grading worker exited during start-up "
                                                     f"({sys.executable} -m scrit_utils.critique.grading --worker)")
                        self._replace(sel, s)
                        continue
                    msg = json.loads(line)
                    if s.state == "starting":
                        s.state = "idle"
                    elif s.state == "busy" and msg.get("i") == s.item:
                        results[s.item] = bool(msg["ok"])
                        s.state, s.item = "idle", -1
                        busy -= 1
                        if pbar is not None:
                            pbar.update(1)
                now = time.monotonic()
                for s in list(self.slots):
                    if s.state != "idle" and now > s.deadline:
                        if s.state == "starting":
                            raise GradingWorkerError(
                                f"grading worker did not start within {_WORKER_START_TIMEOUT_S:.0f} s")
                        log.warning("grading item %d timed out after %.1f s; graded False (pred %s, gt %s)",
                                    s.item, timeout_s, *(_clip(a) for a in s.answers))
                        results[s.item] = False
                        busy -= 1
                        if pbar is not None:
                            pbar.update(1)
                        self._replace(sel, s)
        except BaseException:
            self.close()
            raise
        finally:
            sel.close()

    def _replace(self, sel: selectors.BaseSelector, s: _Slot) -> None:
        try:
            sel.unregister(s.proc.stdout)
        except Exception:
            pass
        _kill(s.proc)
        new = self._start()
        self.slots[self.slots.index(s)] = new
        sel.register(new.proc.stdout, selectors.EVENT_READ, new)

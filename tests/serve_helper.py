"""Start a real `transformers serve` (OpenAI-compatible) on 127.0.0.1 for the tests that talk to one."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def transformers_serve(model: str | Path, log_path: Path, cwd: Path | None = None, timeout_s: float = 90):
    """`transformers serve MODEL` on a free local port; yields the ``/v1`` base URL, stops the server after."""
    pytest.importorskip("fastapi", reason="`transformers serve` needs the serve extra: pip install -e '.[serve]'")
    pytest.importorskip("uvicorn", reason="`transformers serve` needs the serve extra: pip install -e '.[serve]'")
    import httpx

    port = free_port()
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    with open(log_path, "w") as log:
        proc = subprocess.Popen([str(Path(sys.executable).with_name("transformers")), "serve", str(model), "--host",
                                 "127.0.0.1", "--port", str(port), "--device", "cpu"],
                                cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"transformers serve exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"transformers serve did not become healthy within {timeout_s:.0f} s")
                time.sleep(0.5)
            yield f"http://127.0.0.1:{port}/v1"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()

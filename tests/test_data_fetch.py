"""`scrit data fetch`: downloads checked against recorded sha256s, atomically; the data-folder setting.

No network here: local files stand in for the remote ones, served as file:// URLs and by an HTTP server on
127.0.0.1 with raw.githubusercontent.com's layout (<repo>/<commit>/<path>).
"""
from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from scrit_utils.core import data_dir, data_fetch, data_sources
from scrit_utils.core.data_sources import DataFile, Source
from scrit_utils.worlds import real_world

REPO = Path(__file__).resolve().parents[1]
SRC = Source("demo", "someone/demo", "0123456789abcdef0123456789abcdef01234567", "MIT", "stand-in files")


def _files(contents: dict[str, bytes]) -> list[DataFile]:
    return [DataFile(f"demo/{p}", SRC, f"data/{p}", hashlib.sha256(b).hexdigest(), len(b)) for p, b in contents.items()]


def _remote(tmp: Path, files: list[DataFile], contents: dict[str, bytes]) -> Path:
    """A folder laid out like raw.githubusercontent.com: <repo>/<commit>/<path>."""
    base = tmp / "remote"
    for f in files:
        p = base / f.source.repo / f.source.commit / f.remote
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(contents[f.path.split("/", 1)[1]])
    return base


CONTENTS = {"a/test.jsonl": b'{"q": 1}\n' * 1000, "b.json": b"[1, 2, 3]\n", "LICENSE": b"MIT License\n"}


@pytest.fixture
def http_base(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/remote; yields its base URL."""
    files = _files(CONTENTS)
    root = _remote(tmp_path, files, CONTENTS)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", files, root
    finally:
        server.shutdown()
        server.server_close()


def test_table_is_well_formed():
    paths = [f.path for f in data_sources.FILES]
    assert len(paths) == len(set(paths)) == 26
    for f in data_sources.FILES:
        assert re.fullmatch(r"[0-9a-f]{64}", f.sha256) and f.size > 0
        assert re.fullmatch(r"[0-9a-f]{40}", f.source.commit), f.source  # pinned to a full commit
        assert f.url() == f"https://raw.githubusercontent.com/{f.source.repo}/{f.source.commit}/{f.remote}"
    assert {f.path.split("/")[0] for f in data_sources.FILES} == set(data_sources.SOURCES)
    rc = [f.path for f in data_sources.files(["realcritic"])]
    for scen in ("mix_data", "wrong_data"):  # both RealCritic sets, 6 tasks each
        assert sum(p.startswith(f"realcritic/{scen}/") for p in rc) == 6
    with pytest.raises(ValueError, match="unknown data source.*nope.*known"):
        data_sources.files(["nope"])


def test_fetch_over_http_then_nothing_to_do(http_base, tmp_path):
    base, files, _ = http_base
    out, lines = tmp_path / "data", []
    manifest = data_fetch.fetch(out, base_url=base, files=files, log=lines.append)
    for f in files:
        assert (out / f.path).read_bytes() == CONTENTS[f.path.split("/", 1)[1]]
    entries = {e["path"]: e for e in json.loads((out / "MANIFEST.json").read_text())["files"]}
    assert entries == {e["path"]: e for e in manifest["files"]} and set(entries) == {f.path for f in files}
    for f in files:  # URL and checksum of every file
        assert entries[f.path]["url"] == f"{base}/someone/demo/{SRC.commit}/{f.remote}"
        assert entries[f.path]["sha256"] == f.sha256 and entries[f.path]["commit"] == SRC.commit
    assert lines[-1].endswith("3 fetched, 0 already there and verified; manifest " + str(out / "MANIFEST.json"))
    lines.clear()
    data_fetch.fetch(out, base_url=base, files=files, log=lines.append)  # second run: verified, not downloaded
    assert lines == [f"{out}: 0 fetched, 3 already there and verified; manifest {out / 'MANIFEST.json'}"]
    assert data_fetch.verify(out, files=files) == {}


def test_fetch_from_file_urls(tmp_path):
    files = _files(CONTENTS)
    root = _remote(tmp_path, files, CONTENTS)
    out = tmp_path / "data"
    data_fetch.fetch(out, base_url=root.as_uri(), files=files, log=lambda s: None)
    assert data_fetch.verify(out, files=files) == {}


def test_checksum_mismatch_names_the_file_and_writes_nothing(http_base, tmp_path):
    base, files, root = http_base
    bad = next(f for f in files if f.path.endswith("b.json"))
    (root / bad.source.repo / bad.source.commit / bad.remote).write_bytes(b"[1, 2, 4]\n")  # same size, other bytes
    out = tmp_path / "data"
    with pytest.raises(data_fetch.ChecksumError) as e:
        data_fetch.fetch(out, base_url=base, files=files, log=lambda s: None)
    msg = str(e.value)
    assert msg.startswith("demo/b.json: ") and f"{base}/someone/demo/{SRC.commit}/data/b.json" in msg
    assert bad.sha256 in msg and "nothing was written" in msg
    assert not (out / bad.path).exists()
    assert not list(out.rglob("*.part-*")) and not (out / "MANIFEST.json").exists()
    # a damaged local copy is re-downloaded; when the download is bad too, the local file stays as it was
    (out / bad.path).write_bytes(b"[9, 9, 9]\n")
    with pytest.raises(data_fetch.ChecksumError):
        data_fetch.fetch(out, base_url=base, files=files, log=lambda s: None)
    assert (out / bad.path).read_bytes() == b"[9, 9, 9]\n" and not list(out.rglob("*.part-*"))
    assert data_fetch.verify(out, files=files)[bad.path].startswith("sha256 ")


def test_unreachable_mirror_is_a_fetch_error(tmp_path):
    files = _files({"x.json": b"{}"})
    with pytest.raises(data_fetch.FetchError, match=r"demo/x.json: could not download http://127.0.0.1:9/"):
        data_fetch.fetch(tmp_path / "d", base_url="http://127.0.0.1:9", files=files, timeout=2, retries=0,
                         log=lambda s: None)


def test_data_dir_order_and_profile_prefix(tmp_path, monkeypatch):
    monkeypatch.delenv(data_dir.ENV, raising=False)
    monkeypatch.setenv(data_dir.LEGACY_ENV, str(tmp_path / "legacy"))
    assert data_dir.data_dir() == tmp_path / "legacy"
    monkeypatch.setenv(data_dir.ENV, str(tmp_path / "env"))
    assert data_dir.data_dir() == tmp_path / "env"  # SCRIT_DATA_DIR wins over the tests' older name
    assert data_dir.data_dir(tmp_path / "explicit") == tmp_path / "explicit"  # --data-dir wins over both
    # profiles keep "../shared/data/..." (their stage hashes do not move); it means the data folder
    assert data_dir.resolve_ref("../shared/data/realcritic") == str(tmp_path / "env" / "realcritic")
    assert data_dir.resolve_ref("../shared/data") == str(tmp_path / "env")
    assert real_world._ref("../shared/data/processbench") == str(tmp_path / "env" / "processbench")
    assert data_dir.resolve_ref("openai/gsm8k") == "openai/gsm8k"  # a hub id
    assert data_dir.resolve_ref("models/toy-409k") == str(REPO / "models" / "toy-409k")
    assert data_dir.use(tmp_path / "cli") == tmp_path / "cli" and os.environ[data_dir.ENV] == str(tmp_path / "cli")
    monkeypatch.delenv(data_dir.ENV)
    monkeypatch.delenv(data_dir.LEGACY_ENV)
    assert data_dir.data_dir() in (data_dir.SHARED, data_dir.FETCH_DEFAULT)
    assert data_dir.fetch_command(tmp_path) == f"scrit data fetch --data-dir {tmp_path}"


def test_committed_checksums_are_those_of_the_study_copy(shared_data):
    assert data_fetch.verify(shared_data) == {}


@pytest.mark.slow
def test_cli_fetch_from_a_mirror_of_the_real_files(shared_data, tmp_path):
    """`scrit data fetch` on the real table (GSM8K, ProcessBench) from a file:// mirror made of the study's
    copies; then one mirrored file is damaged: exit 1, the file named, nothing half-written."""
    mirror = tmp_path / "mirror"
    chosen = data_sources.files(["gsm8k", "processbench"])
    for f in chosen:
        p = mirror / f.source.repo / f.source.commit / f.remote
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes((shared_data / f.path).read_bytes())

    def scrit(*args):
        return subprocess.run([sys.executable, "-m", "scrit_utils.cli", "data", *args], cwd=REPO,
                              capture_output=True, text=True, timeout=120)

    out = tmp_path / "data"
    r = scrit("fetch", "--data-dir", str(out), "--only", "gsm8k", "processbench", "--base-url", mirror.as_uri())
    assert r.returncode == 0, r.stderr
    assert "6 fetched, 0 already there" in r.stdout
    r = scrit("verify", "--data-dir", str(out), "--only", "gsm8k", "processbench")
    assert r.returncode == 0 and "6/6 files match" in r.stdout
    (out / "gsm8k" / "test.jsonl").unlink()
    damaged = mirror / "openai/grade-school-math" / data_sources.GSM8K.commit / "grade_school_math/data/test.jsonl"
    damaged.write_bytes(damaged.read_bytes().replace(b"####", b"###!", 1))
    r = scrit("fetch", "--data-dir", str(out), "--only", "gsm8k", "--base-url", mirror.as_uri())
    assert r.returncode == 1 and r.stderr.startswith("scrit data fetch: error: gsm8k/test.jsonl: the download from")
    assert not (out / "gsm8k" / "test.jsonl").exists() and not list(out.rglob("*.part-*"))


@pytest.mark.slow
def test_real_data_tests_skip_with_one_line_or_fail_in_ci(tmp_path):
    """Without the data a real-data test is skipped and the run ends with the fetch command; with CI set it fails."""
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("CI", data_dir.ENV)}
    env[data_dir.LEGACY_ENV] = str(empty)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
           "tests/test_real_loaders.py::test_gsm8k", "tests/test_real_loaders.py::test_processbench_all_rows"]
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout[-2000:]
    hint = [ln for ln in r.stdout.splitlines() if "real-data tests skipped" in ln]
    assert hint == [f"2 real-data tests skipped: real benchmark data not found at {empty} (26 of 26 files missing); "
                    f"fetch it: scrit data fetch --data-dir {empty}  (or set SCRIT_DATA_DIR)"]
    assert "2 skipped" in r.stdout
    r = subprocess.run(cmd, cwd=REPO, env={**env, "CI": "1"}, capture_output=True, text=True, timeout=180)
    assert r.returncode == 1 and "2 error" in r.stdout and "real benchmark data not found" in r.stdout

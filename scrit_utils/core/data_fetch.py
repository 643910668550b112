"""Download the real evaluation data into a data folder, checking every file against its recorded sha256.

:func:`fetch` takes the files of :mod:`scrit_utils.core.data_sources` (or a subset), downloads each one from
its public home (``https://raw.githubusercontent.com/<repo>/<commit>/<path>``, or a mirror with the same
layout: ``base_url``; ``file://`` URLs work too), and

- streams it into a temporary file next to its destination (``.<name>.part-<random>``), hashing as it goes;
- renames it into place only when its sha256 and size equal the table's; otherwise deletes the temporary
  file and raises :class:`ChecksumError` naming the file, its URL and both checksums. A file is therefore
  either absent, the old copy, or complete and verified: never half-written;
- skips a file already present with the right checksum (a second run downloads nothing);
- writes ``MANIFEST.json`` (URL, sha256, size and source commit of every file, when it was fetched) at the
  end, again through a temporary file and a rename, and only when every requested file is in place.

Usage::

    from scrit_utils.core import data_fetch
    manifest = data_fetch.fetch("/data/scrit")                       # everything, ~21 MB
    data_fetch.fetch("/data/scrit", sources=["realcritic"])          # one source
    data_fetch.verify("/data/scrit")                                 # {path: problem} for bad files
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

from scrit_utils.core import data_sources
from scrit_utils.core.data_sources import DataFile

MANIFEST = "MANIFEST.json"
CHUNK = 1 << 20


class ChecksumError(RuntimeError):
    """A downloaded file's bytes differ from the recorded ones (nothing of it was kept)."""


class FetchError(RuntimeError):
    """A file could not be downloaded (after retries)."""


def sha256_of(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _download(url: str, dest: Path, f: DataFile, timeout: float) -> None:
    """``url`` -> a temporary file beside ``dest`` -> verified -> renamed to ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.part-", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        h, size = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            for block in iter(lambda: resp.read(CHUNK), b""):
                h.update(block)
                size += len(block)
                out.write(block)
        got = h.hexdigest()
        if got != f.sha256 or size != f.size:
            raise ChecksumError(
                f"{f.path}: the download from {url} has sha256 {got} ({size} bytes), expected {f.sha256} "
                f"({f.size} bytes) as recorded in scrit_utils/core/data_sources.py; nothing was written. "
                "The upstream file or the mirror differs from the one the study used."
            )
        os.replace(tmp, dest)  # atomic on one file system: dest is the old file or the verified new one
    finally:
        tmp.unlink(missing_ok=True)


def fetch(
    root: str | os.PathLike,
    sources: Sequence[str] | None = None,
    base_url: str = data_sources.RAW_BASE,
    files: Sequence[DataFile] | None = None,
    timeout: float = 60.0,
    retries: int = 2,
    log: Callable[[str], None] = print,
) -> dict:
    """Fill ``root`` with the files of ``sources`` (all by default; ``files`` overrides the table, for tests)
    and return the manifest written to ``root/MANIFEST.json``."""
    root = Path(root)
    todo = list(files) if files is not None else list(data_sources.files(list(sources) if sources else None))
    root.mkdir(parents=True, exist_ok=True)
    entries, fetched, kept = [], 0, 0
    for f in todo:
        dest, url = root / f.path, f.url(base_url)
        if dest.is_file() and dest.stat().st_size == f.size and sha256_of(dest) == f.sha256:
            kept += 1
        else:
            for attempt in range(retries + 1):
                try:
                    _download(url, dest, f, timeout)
                    break
                except ChecksumError:
                    raise  # the bytes are wrong: retrying the same URL will not fix it
                except (urllib.error.URLError, OSError) as e:
                    if attempt == retries:
                        raise FetchError(f"{f.path}: could not download {url}: {e}") from e
                    time.sleep(2 ** attempt)
            fetched += 1
            log(f"fetched {f.path} ({f.size} bytes)")
        entries.append({"path": f.path, "url": url, "sha256": f.sha256, "size": f.size,
                        "source": f.source.repo, "commit": f.source.commit, "license": f.source.license})
    manifest = {"fetched_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "base_url": base_url,
                "files": entries}
    old = root / MANIFEST
    if old.is_file():  # keep entries of sources fetched by earlier runs and not asked for now
        done = {e["path"] for e in entries}
        try:
            entries += [e for e in json.loads(old.read_text()).get("files", []) if e.get("path") not in done]
        except (json.JSONDecodeError, AttributeError):
            pass  # an unreadable old manifest is replaced
    entries.sort(key=lambda e: e["path"])
    fd, tmp = tempfile.mkstemp(prefix=f".{MANIFEST}.part-", dir=root)
    with os.fdopen(fd, "w") as out:
        json.dump(manifest, out, indent=2)
        out.write("\n")
    os.replace(tmp, old)
    log(f"{root}: {fetched} fetched, {kept} already there and verified; manifest {old}")
    return manifest


def verify(root: str | os.PathLike, sources: Sequence[str] | None = None,
           files: Sequence[DataFile] | None = None) -> dict[str, str]:
    """``{path: problem}`` for every table file under ``root`` that is missing or differs (empty: all good)."""
    root = Path(root)
    bad = {}
    for f in (files if files is not None else data_sources.files(list(sources) if sources else None)):
        p = root / f.path
        if not p.is_file():
            bad[f.path] = "missing"
        elif p.stat().st_size != f.size:
            bad[f.path] = f"size {p.stat().st_size}, expected {f.size}"
        elif (got := sha256_of(p)) != f.sha256:
            bad[f.path] = f"sha256 {got}, expected {f.sha256}"
    return bad

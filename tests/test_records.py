"""Records and JSONL I/O: atomic writes, resumable appends, clear errors."""
from __future__ import annotations

import json

import pytest

from scrit_utils.core.records import JsonlError, Problem, ResumableJsonl, Solution, read_jsonl, stable_id, write_jsonl


def _sol(i: int) -> Solution:
    return Solution(id=f"s{i}", problem_id="p", generator="g", steps=("a", "b"), final_answer=str(i), is_correct=i % 2 == 0)


def test_roundtrip_typed(tmp_path):
    path = tmp_path / "sol.jsonl"
    recs = [_sol(i) for i in range(5)]
    assert write_jsonl(path, recs) == 5
    back = read_jsonl(path, Solution)
    assert back == recs  # tuples restored, order kept
    assert not list(tmp_path.glob(".*tmp"))  # no temp file left behind


def test_duplicate_ids_rejected(tmp_path):
    with pytest.raises(ValueError, match="duplicate id"):
        write_jsonl(tmp_path / "x.jsonl", [_sol(1), _sol(1)])


def test_malformed_line_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "a"}\n\n{"id": "b"\n{"id": "c"}\n')
    with pytest.raises(JsonlError, match=r"bad\.jsonl:3"):
        read_jsonl(path)


def test_unknown_field_names_line(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({"id": "a", "question": "q", "answer": "1", "bogus": 1}) + "\n")
    with pytest.raises(JsonlError, match=r"p\.jsonl:1.*bogus"):
        read_jsonl(path, Problem)


def test_resumable_skips_done_and_drops_torn_tail(tmp_path):
    path = tmp_path / "out.jsonl"
    w = ResumableJsonl(path, Solution)
    assert w.append([_sol(i) for i in range(3)]) == 3
    # simulate a crash in the middle of writing record 3
    with open(w.partial, "a") as f:
        f.write('{"id": "s3", "problem_id": "p", "gen')
    w2 = ResumableJsonl(path, Solution)
    assert w2.done_ids == {"s0", "s1", "s2"}
    assert w2.append([_sol(i) for i in range(6)]) == 3  # only s3..s5 are new
    assert not path.exists()  # not final until finalize()
    w2.finalize()
    back = read_jsonl(path, Solution)
    assert [r.id for r in back] == [f"s{i}" for i in range(6)]
    w3 = ResumableJsonl(path, Solution)
    assert w3.finalized and len(w3.done_ids) == 6
    with pytest.raises(RuntimeError, match="finalized"):
        w3.append([_sol(9)])


def test_stable_id_is_deterministic():
    assert stable_id("17+25") == stable_id("17+25")
    assert stable_id("17+25") != stable_id("17+26")
    assert len(stable_id("x", n=8)) == 8

"""`mms eval` reads its query file strictly: a malformed line is a usage error naming it."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import invoke


def test_eval_rejects_malformed_query_files_with_line_numbers(tmp_path: Path) -> None:
    bad = tmp_path / "q.jsonl"
    bad.write_text(
        '{"id": "a", "text": "x", "relevant": {"p": 2}}\n{"id": "b", "text": "y", "image": "z"}\n'
    )
    res = invoke("eval", bad, "--index", tmp_path)
    assert res.code == 2 and "q.jsonl:2" in res.err

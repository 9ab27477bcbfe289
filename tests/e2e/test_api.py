"""`import mmsearch_cli` is a usable Python API: index and query from Python."""

from __future__ import annotations

from pathlib import Path

import pytest

import mmsearch_cli as mms
from mmsearch_cli.errors import UsageError
from tests.conftest import SAMPLE, copy_tree


def test_index_and_query_from_python(tmp_path: Path) -> None:
    root = copy_tree(["images/tools/hammer1.webp", "text/fluffy_pancakes.txt"], tmp_path / "m")
    summary = mms.index([root], index_dir=tmp_path / "i")
    assert summary.added == 2 and summary.failed == 0
    hits = mms.query("pancake recipe", index_dir=tmp_path / "i", k=1)
    assert hits[0].path.endswith("fluffy_pancakes.txt") and hits[0].rank == 1
    hits = mms.query(media=SAMPLE / "images/tools/hammer5.jpg", index_dir=tmp_path / "i", k=1)
    assert hits[0].path.endswith("hammer1.webp")
    with pytest.raises(UsageError):
        mms.query(index_dir=tmp_path / "i")

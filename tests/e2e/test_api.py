"""`import mmsearch_cli` is a usable Python API, without typer or rich."""

from __future__ import annotations

import subprocess
import sys
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


def test_the_library_does_not_import_the_cli_stack() -> None:
    code = "import sys, mmsearch_cli; print(any(m in sys.modules for m in ('typer', 'rich')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.strip() == "False"

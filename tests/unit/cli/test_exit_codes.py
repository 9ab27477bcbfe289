"""Errors the CLI reports before any model loads: one line each, with a distinct exit code."""

from __future__ import annotations

from pathlib import Path

from mmsearch_cli.store.lock import index_lock
from tests.conftest import copy_tree, invoke


def test_bad_input_gives_one_line_errors_and_distinct_codes(tmp_path: Path) -> None:
    res = invoke("query", "x", "--index", tmp_path / "none")
    assert res.code == 3 and res.err.count("\n") == 1 and "no index" in res.err
    res = invoke("query", "--image", tmp_path / "missing.jpg", "--index", tmp_path)
    assert res.code == 2 and "not found" in res.err
    res = invoke("query", "x", "--format", "xml", "--index", tmp_path)
    assert res.code == 2
    res = invoke("index", tmp_path / "does-not-exist", "--index", tmp_path / "i")
    assert res.code == 2 and "Traceback" not in res.err


def test_a_second_writer_gets_the_lock_busy_code(tmp_path: Path) -> None:
    root = copy_tree(["images/tools/hammer1.webp", "text/hand_tools.md"], tmp_path / "media")
    index = tmp_path / "index"
    with index_lock(index):
        res = invoke("index", root, "--index", index)
    assert res.code == 4 and "another mms process" in res.err

"""Reading what `mms` answered, for the end-to-end tests: query rows, file names, and a
file's stored metadata straight from the index database."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from tests.conftest import invoke


def query(index: Path, *args: str) -> list[dict[str, Any]]:
    """`mms query ARGS --format json` on ``index`` (no server); [] when nothing matched."""
    res = invoke("query", *args, "--index", index, "--no-server", "--format", "json")
    if res.code == 5:
        return []
    assert res.code == 0, res.err
    rows: list[dict[str, Any]] = json.loads(res.out)
    return rows


def names(rows: list[dict[str, Any]]) -> list[str]:
    return [Path(str(r["path"])).name for r in rows]


def file_meta(index: Path, name: str) -> dict[str, Any]:
    """The stored ``meta`` of the indexed file called ``name``."""
    con = sqlite3.connect(index / "meta.sqlite")
    try:
        rows = con.execute("SELECT name, meta FROM files").fetchall()
    finally:
        con.close()
    meta: dict[str, Any] = next(json.loads(m) for n, m in rows if bytes(n).decode() == name)
    return meta

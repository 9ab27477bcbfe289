"""What an index holds, for ``mms info`` and for consistency checks."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mmsearch_cli.store import db
from mmsearch_cli.store.manifest import corrupt, open_database
from mmsearch_cli.store.state import SCHEMA_VERSION, SpaceInfo


def _disk_usage(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def index_info(index_dir: Path) -> dict[str, Any]:
    """Counts come from SQL aggregates in one snapshot: no row is loaded but failures, and
    no vector file is opened (nor numpy imported)."""
    con = open_database(index_dir)
    try:
        con.execute("BEGIN")
        meta = db.read_meta(con)
        spaces = db.read_spaces(con)
        counts = db.counts(con)
        failed = db.failed_files(con)
    except sqlite3.DatabaseError as exc:
        raise corrupt(index_dir, exc) from None
    finally:
        con.close()
    return {
        "index": str(index_dir),
        "schema": SCHEMA_VERSION,
        "generation": int(meta.get("generation", 0)),
        "profile": str(meta.get("profile", "builtin")),
        "created": meta.get("created", 0.0),
        "updated": meta.get("updated", 0.0),
        "roots": meta.get("roots", []),
        "files": sum(counts["by_modality"].values()),
        "files_by_modality": counts["by_modality"],
        "segments": counts["segments"],
        "failed": counts["failed"],  # deferred ones included
        "deferred": counts["deferred"],  # for want of a model, codec or library: retried
        "partial": counts["partial"],  # indexed up to a work limit (max_text_chunks)
        "unsupported_by_type": dict(meta.get("unsupported") or {}),  # at the last run
        "failed_files": [
            {"path": path, "error": error, "deferred": status == "deferred"}
            for path, error, status in failed
        ],
        "bytes_on_disk": _disk_usage(index_dir),
        "spaces": describe_spaces(spaces.values()),
    }


def describe_spaces(spaces: Iterable[SpaceInfo]) -> list[dict[str, Any]]:
    """The spaces as `mms info --json` lists them (the local store and the backend)."""
    return [
        {
            "name": s.name, "dim": s.dim, "metric": s.metric, "vectors": s.count,
            "encoders": s.encoders, "fingerprints": s.fingerprints, "options": s.options,
        }
        for s in spaces
    ]  # fmt: skip

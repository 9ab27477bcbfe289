"""The manifest, ``sidecar.json``: what an index is (schema, generation, profile, roots,
spaces with their models and vector files, the database's name), read first by everyone.

Light on purpose: ``mms info`` and the schema check import nothing heavy.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict
from pathlib import Path
from typing import Any

from mmsearch_cli.errors import IndexCorruptError, IndexMissingError
from mmsearch_cli.store import db
from mmsearch_cli.store.atomic import atomic_write_bytes
from mmsearch_cli.store.state import SCHEMA_VERSION, SpaceInfo

SIDECAR = "sidecar.json"


def sidecar_path(index_dir: Path) -> Path:
    return index_dir / SIDECAR


def database_path(index_dir: Path) -> Path:
    return index_dir / db.DATABASE


def read_manifest(index_dir: Path) -> dict[str, Any]:
    """The manifest, checked for a schema this mms reads (schema 1 is converted by the next
    ``mms index``)."""
    path = sidecar_path(index_dir)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise IndexMissingError(
            f"no index at {index_dir}", hint="run `mms index DIR` first, or pass --index"
        ) from None
    except OSError as exc:
        raise IndexMissingError(f"cannot read index {index_dir}: {exc.strerror}") from None
    try:
        data = json.loads(raw)
        schema = data["schema"]
        if not isinstance(schema, int) or isinstance(schema, bool) or schema < 1:
            raise ValueError("schema")
    except (ValueError, KeyError, TypeError, RecursionError):  # deep nesting: RecursionError
        raise IndexCorruptError(
            f"index manifest {path} is damaged", hint="run `mms doctor --repair`"
        ) from None
    if schema > SCHEMA_VERSION:
        raise IndexCorruptError(
            f"index {index_dir} was written by a newer mms (schema {schema})",
            hint=f"this mms reads schema {SCHEMA_VERSION}; upgrade mms",
        )
    if not isinstance(data, dict):
        raise IndexCorruptError(f"index manifest {path} is damaged", hint="run `mms doctor`")
    wrong = invalid_field(data) if schema >= SCHEMA_VERSION else None
    if wrong:
        raise IndexCorruptError(
            f"index manifest {path} is damaged ({wrong})", hint="run `mms doctor --repair`"
        )
    return data


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**62


def invalid_field(data: dict[str, Any]) -> str | None:
    """What is wrong with a current manifest's fields (hand edits, damage), or None."""
    if not _count(data.get("generation")):
        return "generation is not a count"
    if not _count(data.get("next_id")):
        return "next_id is not a count"
    roots = data.get("roots")
    if not isinstance(roots, list) or not all(isinstance(r, str) for r in roots):
        return "roots is not a list of paths"
    if data.get("database") != db.DATABASE:
        return f"database is not {db.DATABASE}"
    spaces = data.get("spaces")
    if not isinstance(spaces, dict):
        return "spaces is not an object"
    for name, info in spaces.items():
        if not isinstance(info, dict) or not _count(info.get("dim")) or not info["dim"]:
            return f"space {name} has no dimension"
    return None


def manifest_of(meta: dict[str, Any], spaces: dict[str, SpaceInfo]) -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        "generation": meta.get("generation", 0),
        "profile": meta.get("profile", "builtin"),
        "created": meta.get("created", 0.0),
        "updated": meta.get("updated", 0.0),
        "roots": meta.get("roots", []),
        "next_id": meta.get("next_id", 0),
        "database": db.DATABASE,
        "spaces": {name: asdict(info) for name, info in spaces.items()},
    }


def write_manifest(index_dir: Path, meta: dict[str, Any], spaces: dict[str, SpaceInfo]) -> None:
    data = json.dumps(manifest_of(meta, spaces), indent=1, ensure_ascii=True)
    atomic_write_bytes(sidecar_path(index_dir), data.encode() + b"\n")


def corrupt(index_dir: Path, exc: BaseException) -> IndexCorruptError:
    return IndexCorruptError(
        f"index database in {index_dir} cannot be read ({exc})", hint="run `mms doctor`"
    )


def open_database(index_dir: Path) -> sqlite3.Connection:
    """The database of a current index, read-only: checks the manifest's schema first (an
    index of an older mms says what to run)."""
    manifest = read_manifest(index_dir)
    if int(manifest["schema"]) < SCHEMA_VERSION:
        raise IndexCorruptError(
            f"index {index_dir} is in the format of an older mms (schema {manifest['schema']})",
            hint="run `mms index` on its folders once to convert it",
        )
    path = database_path(index_dir)
    if not path.is_file():
        raise IndexCorruptError(f"index database {path} is missing", hint="run `mms doctor`")
    try:
        return db.connect(path, write=False)
    except sqlite3.DatabaseError as exc:
        raise corrupt(index_dir, exc) from None

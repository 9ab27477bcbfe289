"""Convert an index of schema 1 (everything in ``sidecar.json``, one hnswlib file per
space) to schema 2 (SQLite + flat vectors), in place, on the next ``mms index``.

The new database and vector files are written beside the old ones while the old manifest
stays in charge; writing the schema 2 manifest is the switch. A kill before it leaves the
old index whole (the half-made new files are removed and the conversion starts over); a
kill after it leaves the new one, and the old files are removed by the next commit.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from mmsearch_cli.errors import IndexCorruptError
from mmsearch_cli.store import db, flat
from mmsearch_cli.store.lexical import body_of
from mmsearch_cli.store.state import IndexState, SegmentRecord, SpaceInfo
from mmsearch_cli.store.vectors import VectorIndex

log = logging.getLogger(__name__)
PREVIOUS = "sidecar.prev.json"  # schema 1's copy of the previous commit


def convert(index_dir: Path) -> None:
    from mmsearch_cli.store.manifest import database_path, sidecar_path, write_manifest

    side = sidecar_path(index_dir)
    try:
        state = IndexState.from_json(json.loads(side.read_bytes()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IndexCorruptError(
            f"cannot convert index {index_dir}: its sidecar is damaged ({exc})",
            hint="run `mms doctor --repair`",
        ) from None
    started = time.monotonic()
    path = database_path(index_dir)
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        p.unlink(missing_ok=True)  # a conversion killed halfway starts over
    con = db.connect(path, write=True)
    try:
        db.create(con)
        con.execute("BEGIN IMMEDIATE")
        spaces = {
            name: _convert_space(index_dir, state, info) for name, info in state.spaces.items()
        }
        by_file: dict[str, list[SegmentRecord]] = {}
        for seg in sorted(state.segments.values(), key=lambda s: s.id):
            by_file.setdefault(seg.file, []).append(seg)
        for rec in state.files.values():
            segs = by_file.get(rec.path, [])
            db.insert_file(con, rec, segs, [body_of(s) for s in segs])
        for info in spaces.values():
            db.write_space(con, info)
        meta = {
            "generation": state.generation + 1, "profile": state.profile,
            "created": state.created, "updated": time.time(), "roots": state.roots,
            "next_id": state.next_id, "previous_files": [],
        }  # fmt: skip
        db.write_meta(con, **meta)
        con.execute("COMMIT")
    finally:
        con.close()
    write_manifest(index_dir, meta, spaces)  # the switch: from here on it is schema 2
    for info in state.spaces.values():
        if info.file:
            (index_dir / info.file).unlink(missing_ok=True)
    (index_dir / PREVIOUS).unlink(missing_ok=True)
    print(
        f"mms: converted index {index_dir} to the new format (schema 2: SQLite + flat "
        f"vectors), {len(state.files)} files in {time.monotonic() - started:.1f} s",
        file=sys.stderr,
    )


def _convert_space(index_dir: Path, state: IndexState, info: SpaceInfo) -> SpaceInfo:
    live = sorted(sid for sid, seg in state.segments.items() if info.name in seg.spaces)
    base = f"spaces/{info.name.replace('/', '_').replace(':', '_')}.{state.generation + 1}"
    flat.remove(index_dir / base)
    rows = 0
    if info.file and live:
        try:
            graph = VectorIndex.load(index_dir / info.file, info.dim, set(live))
        except (RuntimeError, OSError, ValueError) as exc:
            raise IndexCorruptError(
                f"cannot convert index {index_dir}: vectors of '{info.name}' ({exc})",
                hint="run `mms doctor --repair` first",
            ) from None
        ids = np.asarray(live, dtype=np.int64)
        for start in range(0, len(ids), flat.CHUNK_ROWS):
            part = ids[start : start + flat.CHUNK_ROWS]
            rows = flat.append(index_dir / base, info.dim, rows, part, graph.get(part.tolist()))
    return SpaceInfo(
        name=info.name, dim=info.dim, metric=info.metric, encoders=info.encoders,
        fingerprints=info.fingerprints, options=info.options, weight=info.weight,
        count=rows, vectors=base if rows else None, rows=rows,
    )  # fmt: skip

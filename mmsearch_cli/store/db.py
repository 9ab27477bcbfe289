"""The index's metadata in SQLite (WAL): files, segments, tombstones, the lexical table,
and the generation with its spaces and vector files.

One writer (under the index lock) changes it in one transaction per commit; readers open
it read-only and read one snapshot (one read transaction), so the generation, the spaces'
vector files and every row they see belong together. A query reads only the rows it
shows and what its filters need.

Paths are stored as the bytes the file system gave (``os.fsencode``), so a name that is
not valid UTF-8 round-trips exactly; SQL ``GLOB`` reads them as text for ``--path``.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from mmsearch_cli.store.lexical import TOKENIZE, name_words
from mmsearch_cli.store.state import FileRecord, SegmentRecord, SpaceInfo

DATABASE = "meta.sqlite"

SCHEMA_SQL = f"""
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE spaces(name TEXT PRIMARY KEY, info TEXT NOT NULL);
CREATE TABLE files(
    id INTEGER PRIMARY KEY,
    path BLOB NOT NULL UNIQUE,
    name BLOB NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    modality TEXT NOT NULL,
    hash TEXT,
    status TEXT NOT NULL,
    error TEXT,
    indexed_at REAL NOT NULL,
    taken REAL NOT NULL,
    meta TEXT NOT NULL
);
CREATE INDEX files_modality ON files(modality, status);
CREATE INDEX files_taken ON files(taken);
CREATE INDEX files_size ON files(size);
CREATE TABLE segments(
    id INTEGER PRIMARY KEY,
    file_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    chunk INTEGER,
    start REAL,
    "end" REAL,
    text TEXT NOT NULL,
    why TEXT NOT NULL,
    spaces TEXT NOT NULL
);
CREATE INDEX segments_file ON segments(file_id);
CREATE TABLE tombstones(space TEXT NOT NULL, id INTEGER NOT NULL, PRIMARY KEY(space, id))
    WITHOUT ROWID;
CREATE VIRTUAL TABLE lexical USING fts5(body, names, tokenize='{TOKENIZE}');
"""

# Photo facts live in ``files.meta`` (JSON); expression indexes make their filters index
# lookups. A filter must use the same expression for SQLite to choose the index.
PEOPLE = "json_extract(f.meta, '$.people')"
LATITUDE = "json_extract(f.meta, '$.gps[0]')"
LONGITUDE = "json_extract(f.meta, '$.gps[1]')"
PHOTO_INDEXES_SQL = (
    "CREATE INDEX IF NOT EXISTS files_people ON files(json_extract(meta, '$.people'));\n"
    "CREATE INDEX IF NOT EXISTS files_latitude ON files(json_extract(meta, '$.gps[0]'));\n"
)
SCHEMA_SQL += PHOTO_INDEXES_SQL

# A file's status: 'ok'; 'failed' (the file's fault: tried again once it changes); or
# 'deferred' (the machine lacked a model, codec or library: tried again by every run).
# Indexes written before 'deferred' existed recorded those as failed, the exception's
# class name first: they read as deferred, so the next run tries them again.
STATUS = (
    "CASE WHEN status = 'failed' AND (error LIKE 'ModelUnavailableError:%' "
    "OR error LIKE 'ImportError:%' OR error LIKE 'ModuleNotFoundError:%') "
    "THEN 'deferred' ELSE status END"
)

_SEGMENT_COLS = 's.id, s.kind, s.chunk, s.start, s."end", s.text, s.why, s.spaces, f.path'
_FILE_COLS = (
    "f.id, f.path, f.size, f.mtime_ns, f.modality, f.hash, f.status, f.error, f.indexed_at, f.meta"
)


def clean(text: str) -> str:
    """Text SQLite can store: lone surrogates (undecodable bytes) become U+FFFD."""
    return text.encode("utf-8", "replace").decode("utf-8")


def connect(path: Path, *, write: bool) -> sqlite3.Connection:
    """Autocommit connection; transactions are explicit. Readers open read-only."""
    if write:
        con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=FULL")  # a commit is on disk when it returns
    else:
        uri = f"file:{path.as_posix()}?mode=ro"
        con = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    con.execute("PRAGMA busy_timeout=30000")
    con.create_function("mms_km", 4, distance_km, deterministic=True)
    return con


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine, mean Earth radius) for ``--near`` in SQL."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dlat, dlon = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dlat / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dlon / 2) ** 2
    return 2 * 6371.0088 * math.asin(min(1.0, math.sqrt(h)))


def add_photo_indexes(con: sqlite3.Connection) -> None:
    """The expression indexes for an index made before they existed (cheap, idempotent)."""
    con.executescript(PHOTO_INDEXES_SQL)


def create(con: sqlite3.Connection) -> None:
    con.executescript(SCHEMA_SQL)


def taken_time(meta: dict[str, Any], mtime_ns: int) -> float:
    """Capture time from EXIF when there is one, else the file's mtime (seconds)."""
    taken = meta.get("taken")
    if taken:
        try:
            return datetime.fromisoformat(str(taken)).timestamp()
        except ValueError:
            pass
    return mtime_ns / 1e9


@dataclass(frozen=True)
class FileFilter:
    """The structured filters of a search, evaluated in SQL."""

    types: frozenset[str] | None = None
    path_glob: str | None = None
    after: float | None = None  # seconds since the epoch
    before: float | None = None
    min_size: int | None = None
    max_size: int | None = None
    exclude_paths: frozenset[str] = frozenset()
    people: tuple[int, int | None] | None = None  # face count, at least .. at most
    near: tuple[float, float, float] | None = None  # latitude, longitude, radius km
    place: tuple[str, str | None] | None = None  # country code [, region] a photo was taken in

    def __bool__(self) -> bool:
        return any(
            v not in (None, frozenset())
            for v in (self.types, self.path_glob, self.after, self.before, self.min_size,
                      self.max_size, self.exclude_paths, self.people, self.near, self.place)
        )  # fmt: skip

    def where(self) -> tuple[str, list[Any]]:
        """A WHERE clause over files ``f`` (ok files only) and its parameters."""
        clauses: list[str] = ["f.status = 'ok'"]
        params: list[Any] = []
        if self.types:
            clauses.append(f"f.modality IN ({','.join('?' * len(self.types))})")
            params += sorted(self.types)
        if self.path_glob:
            glob = glob_for_sql(self.path_glob)
            clauses.append("(CAST(f.path AS TEXT) GLOB ? OR CAST(f.name AS TEXT) GLOB ?)")
            params += [glob, glob]
        if self.after is not None:
            clauses.append("f.taken >= ?")
            params.append(self.after)
        if self.before is not None:
            clauses.append("f.taken < ?")
            params.append(self.before)
        if self.min_size is not None:
            clauses.append("f.size >= ?")
            params.append(self.min_size)
        if self.max_size is not None:
            clauses.append("f.size <= ?")
            params.append(self.max_size)
        if self.people is not None:
            low, high = self.people
            clauses.append(f"{PEOPLE} >= ?")
            params.append(low)
            if high is not None:
                clauses.append(f"{PEOPLE} <= ?")
                params.append(high)
        if self.near is not None:
            lat, lon, km = self.near
            # A latitude band first (indexed), then the exact distance on what is left.
            band = km / 111.0
            clauses.append(f"{LATITUDE} BETWEEN ? AND ?")
            params += [lat - band, lat + band]
            clauses.append(f"mms_km({LATITUDE}, {LONGITUDE}, ?, ?) <= ?")
            params += [lat, lon, km]
        if self.place is not None:
            code, region = self.place
            clauses.append("json_extract(f.meta, '$.place.country_code') = ?")
            params.append(code)
            if region:
                clauses.append("json_extract(f.meta, '$.place.region') = ?")
                params.append(region)
        if self.exclude_paths:
            clauses.append(f"f.path NOT IN ({','.join('?' * len(self.exclude_paths))})")
            params += [os.fsencode(p) for p in sorted(self.exclude_paths)]
        return " AND ".join(clauses), params


def glob_for_sql(pattern: str) -> str:
    """fnmatch syntax to SQLite GLOB: the same but for negated sets, ``[!x]`` -> ``[^x]``."""
    return pattern.replace("[!", "[^")


# -- reading ---------------------------------------------------------------------------


def read_meta(con: sqlite3.Connection) -> dict[str, Any]:
    return {k: json.loads(v) for k, v in con.execute("SELECT key, value FROM meta")}


def read_spaces(con: sqlite3.Connection) -> dict[str, SpaceInfo]:
    out = {}
    for name, info in con.execute("SELECT name, info FROM spaces ORDER BY rowid"):
        out[name] = SpaceInfo(**json.loads(info))
    return out


def file_stats(con: sqlite3.Connection) -> dict[str, tuple[int, int, str, str | None]]:
    """path -> (size, mtime_ns, status, hash) of every file: what a re-index diffs."""
    rows = con.execute(f"SELECT path, size, mtime_ns, {STATUS}, hash FROM files")
    return {os.fsdecode(p): (size, mtime, status, h) for p, size, mtime, status, h in rows}


def _ids_param(ids: Iterable[int]) -> str:
    return json.dumps(sorted({int(i) for i in ids}))


def segments(con: sqlite3.Connection, ids: Iterable[int]) -> dict[int, SegmentRecord]:
    """The segments with these ids (and their file's path), read in one statement."""
    sql = (
        f"SELECT {_SEGMENT_COLS} FROM segments s JOIN files f ON f.id = s.file_id "
        "WHERE s.id IN (SELECT value FROM json_each(?))"
    )
    return {row[0]: _segment(row) for row in con.execute(sql, (_ids_param(ids),))}


def _segment(row: Sequence[Any]) -> SegmentRecord:
    sid, kind, chunk, start, end, text, why, spaces, path = row
    return SegmentRecord(
        id=sid, file=os.fsdecode(path), kind=kind, chunk=chunk, start=start, end=end,
        text=text, why=json.loads(why), spaces=json.loads(spaces),
    )  # fmt: skip


def files(
    con: sqlite3.Connection, paths: Iterable[str], *, with_segments: bool = False
) -> dict[str, FileRecord]:
    """File records by path (``with_segments``: also their segment ids)."""
    wanted = [os.fsencode(p) for p in paths]
    out: dict[str, FileRecord] = {}
    for start in range(0, len(wanted), 500):
        part = wanted[start : start + 500]
        sql = f"SELECT {_FILE_COLS} FROM files f WHERE f.path IN ({','.join('?' * len(part))})"
        for row in con.execute(sql, part):
            out[os.fsdecode(row[1])] = _file(con, row, with_segments)
    return out


def _file(con: sqlite3.Connection, row: Sequence[Any], with_segments: bool) -> FileRecord:
    fid, path, size, mtime_ns, modality, h, status, error, indexed_at, meta = row
    segs: list[int] = []
    if with_segments:
        segs = [
            s
            for (s,) in con.execute("SELECT id FROM segments WHERE file_id = ? ORDER BY id", (fid,))
        ]
    return FileRecord(
        path=os.fsdecode(path), size=size, mtime_ns=mtime_ns, modality=modality, hash=h,
        status=status, error=error, segments=segs, indexed_at=indexed_at,
        meta=json.loads(meta),
    )  # fmt: skip


def iter_files(con: sqlite3.Connection, *, status: str | None = None) -> Iterator[FileRecord]:
    sql = f"SELECT {_FILE_COLS} FROM files f"
    rows = con.execute(sql + " WHERE f.status = ?", (status,)) if status else con.execute(sql)
    for row in rows:
        yield _file(con, row, False)


def iter_segments(con: sqlite3.Connection) -> Iterator[SegmentRecord]:
    sql = f"SELECT {_SEGMENT_COLS} FROM segments s JOIN files f ON f.id = s.file_id ORDER BY s.id"
    for row in con.execute(sql):
        yield _segment(row)


def allowed_segments(con: sqlite3.Connection, flt: FileFilter) -> list[int]:
    """Ids of the segments whose files pass ``flt``, increasing."""
    where, params = flt.where()
    sql = (
        f"SELECT s.id FROM segments s JOIN files f ON f.id = s.file_id WHERE {where} ORDER BY s.id"
    )
    return [sid for (sid,) in con.execute(sql, params)]


def tombstones(con: sqlite3.Connection, space: str) -> list[int]:
    sql = "SELECT id FROM tombstones WHERE space = ? ORDER BY id"
    return [i for (i,) in con.execute(sql, (space,))]


def lexical(
    con: sqlite3.Connection, match: str, k: int, allowed: Sequence[int] | None = None
) -> list[tuple[int, float]]:
    """Top ``k`` (segment id, BM25 score, higher is better) for an FTS5 MATCH expression.
    File-name words weigh less than the content (0.5): they are few and repeated."""
    sql = "SELECT rowid, -bm25(lexical, 1.0, 0.5) AS score FROM lexical WHERE lexical MATCH ?"
    params: list[Any] = [match]
    if allowed is not None:
        sql += " AND rowid IN (SELECT value FROM json_each(?))"
        params.append(json.dumps(list(allowed)))
    sql += " ORDER BY score DESC, rowid LIMIT ?"
    params.append(k)
    try:
        return [(int(r), float(s)) for r, s in con.execute(sql, params)]
    except sqlite3.OperationalError:  # a malformed expression must never reach the user
        return []


def highlights(con: sqlite3.Connection, match: str, ids: Iterable[int]) -> dict[int, str]:
    """The matched words of each segment, bracketed in a short snippet (``--explain``)."""
    sql = (
        "SELECT rowid, snippet(lexical, -1, '[', ']', '…', 10) FROM lexical "
        "WHERE lexical MATCH ? AND rowid IN (SELECT value FROM json_each(?))"
    )
    try:
        return {int(r): s for r, s in con.execute(sql, (match, _ids_param(ids)))}
    except sqlite3.OperationalError:
        return {}


def counts(con: sqlite3.Connection) -> dict[str, Any]:
    by_modality = dict(
        con.execute("SELECT modality, COUNT(*) FROM files WHERE status = 'ok' GROUP BY modality")
    )
    failed = con.execute("SELECT COUNT(*) FROM files WHERE status != 'ok'").fetchone()[0]
    deferred = con.execute(f"SELECT COUNT(*) FROM files WHERE {STATUS} = 'deferred'").fetchone()[0]
    segs = con.execute("SELECT COUNT(*) FROM segments").fetchone()[0]
    partial = con.execute(
        "SELECT COUNT(*) FROM files "
        "WHERE status = 'ok' AND json_extract(meta, '$.partial') IS NOT NULL"
    ).fetchone()[0]
    return {"by_modality": by_modality, "failed": failed, "deferred": deferred, "segments": segs,
            "partial": partial}  # fmt: skip


def failed_files(con: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """(path, reason, status) of every file not indexed: failed or deferred."""
    sql = f"SELECT path, error, {STATUS} FROM files WHERE status != 'ok' ORDER BY path"
    return [(os.fsdecode(p), e or "", status) for p, e, status in con.execute(sql)]


# -- writing (inside the writer's transaction) ----------------------------------------


def write_meta(con: sqlite3.Connection, **values: Any) -> None:
    con.executemany(
        "INSERT INTO meta(key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [(k, json.dumps(v)) for k, v in values.items()],
    )


def write_space(con: sqlite3.Connection, info: SpaceInfo) -> None:
    con.execute(
        "INSERT INTO spaces(name, info) VALUES (?, ?) "
        "ON CONFLICT(name) DO UPDATE SET info = excluded.info",
        (info.name, json.dumps(asdict(info))),
    )


def drop_file(con: sqlite3.Connection, path: str) -> list[tuple[str, int]]:
    """Delete a file, its segments and their lexical rows; return the (space, id) of the
    vectors it had, which become tombstones."""
    row = con.execute("SELECT id FROM files WHERE path = ?", (os.fsencode(path),)).fetchone()
    if row is None:
        return []
    fid = row[0]
    dead: list[tuple[str, int]] = []
    for sid, spaces in con.execute("SELECT id, spaces FROM segments WHERE file_id = ?", (fid,)):
        dead += [(space, sid) for space in json.loads(spaces)]
        con.execute("DELETE FROM lexical WHERE rowid = ?", (sid,))
    con.execute("DELETE FROM segments WHERE file_id = ?", (fid,))
    con.execute("DELETE FROM files WHERE id = ?", (fid,))
    con.executemany("INSERT OR IGNORE INTO tombstones(space, id) VALUES (?, ?)", dead)
    return dead


def drop_segments(con: sqlite3.Connection, ids: Iterable[int]) -> dict[str, int]:
    """Delete segments by id (orphans), tombstoning their vectors; count them per space."""
    per_space: dict[str, int] = {}
    for sid in sorted(set(ids)):
        row = con.execute("SELECT spaces FROM segments WHERE id = ?", (sid,)).fetchone()
        if row is None:
            continue
        for space in json.loads(row[0]):
            con.execute("INSERT OR IGNORE INTO tombstones(space, id) VALUES (?, ?)", (space, sid))
            per_space[space] = per_space.get(space, 0) + 1
        con.execute("DELETE FROM segments WHERE id = ?", (sid,))
        con.execute("DELETE FROM lexical WHERE rowid = ?", (sid,))
    return per_space


def move_file(con: sqlite3.Connection, old: str, new: str, size: int, mtime_ns: int) -> None:
    """A file that moved keeps its segments and vectors; its path words change."""
    new_b = os.fsencode(new)
    con.execute(
        "UPDATE files SET path = ?, name = ?, size = ?, mtime_ns = ? WHERE path = ?",
        (new_b, os.fsencode(os.path.basename(new)), size, mtime_ns, os.fsencode(old)),
    )
    fid = con.execute("SELECT id FROM files WHERE path = ?", (new_b,)).fetchone()[0]
    names = name_words(new)
    for (sid,) in con.execute("SELECT id FROM segments WHERE file_id = ?", (fid,)).fetchall():
        body = con.execute("SELECT body FROM lexical WHERE rowid = ?", (sid,)).fetchone()
        con.execute("DELETE FROM lexical WHERE rowid = ?", (sid,))
        con.execute(
            "INSERT INTO lexical(rowid, body, names) VALUES (?, ?, ?)",
            (sid, body[0] if body else "", names),
        )


def insert_file(
    con: sqlite3.Connection, rec: FileRecord, segs: Sequence[SegmentRecord], bodies: Sequence[str]
) -> None:
    """Insert a file, its segments and their lexical rows (``bodies``: each segment's words)."""
    cur = con.execute(
        "INSERT INTO files(path, name, size, mtime_ns, modality, hash, status, error, "
        "indexed_at, taken, meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            os.fsencode(rec.path), os.fsencode(os.path.basename(rec.path)), rec.size,
            rec.mtime_ns, rec.modality, rec.hash, rec.status,
            clean(rec.error) if rec.error else None, rec.indexed_at,
            taken_time(rec.meta, rec.mtime_ns), json.dumps(rec.meta),
        ),
    )  # fmt: skip
    fid = cur.lastrowid
    con.executemany(
        'INSERT INTO segments(id, file_id, kind, chunk, start, "end", text, why, spaces) '
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (s.id, fid, s.kind, s.chunk, s.start, s.end, clean(s.text), json.dumps(s.why),
             json.dumps(s.spaces))
            for s in segs
        ],
    )  # fmt: skip
    names = name_words(rec.path)
    con.executemany(
        "INSERT INTO lexical(rowid, body, names) VALUES (?, ?, ?)",
        [(s.id, clean(body), names) for s, body in zip(segs, bodies, strict=True)],
    )

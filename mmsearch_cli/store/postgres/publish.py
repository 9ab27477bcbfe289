"""Publish a local index into the backend: what changed since the last publish, by root.

Each (host, root) is a source. Publishing a source compares the local index's generation
(and identity) with the one the source last published in full: equal, nothing more is
read (a no-op run costs one query). Otherwise the source's file signatures are read in
one statement and compared with the local files; each changed file's rows are replaced
and each vanished file's deleted, in transactions of a few hundred files that also keep
the source's counts (segments, tokens, vectors per space: BM25 and ``mms info`` read
them). The generation is recorded last, so a publish cut short by a kill or a dropped
connection is finished by the next run, which compares again and redoes only what
differs: the database ends as a clean run leaves it.

One indexer per source at a time: ``lock`` takes a session advisory lock per (host,
root), held from before the local run until the publish ends (exit 4 for a second one).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mmsearch_cli.errors import LockBusyError
from mmsearch_cli.store.db import clean
from mmsearch_cli.store.index import IndexReader
from mmsearch_cli.store.postgres.connect import (
    ConnectionLost,
    connect,
    guard,
    register_vector,
    retrying,
)
from mmsearch_cli.store.postgres.lexical import Tokenizer, tsvector
from mmsearch_cli.store.postgres.schema import POSTINGS_OF, ensure_spaces, migrate
from mmsearch_cli.store.postgres.url import redact

if TYPE_CHECKING:
    import psycopg

BATCH_FILES = 200  # files per transaction ...
BATCH_SEGMENTS = 2000  # ... or fewer, when they have many segments
ProgressFn = Callable[[int, int, str], None]

_FILE_SQL = (
    "SELECT id, path, size, mtime_ns, modality, hash, status, error, indexed_at, taken, meta "
    "FROM files"
)
_SEGMENT_SQL = (
    'SELECT s.id, s.file_id, s.kind, s.chunk, s.start, s."end", s.text, s.why, s.spaces, '
    "coalesce(l.body, ''), coalesce(l.names, '') "
    "FROM segments s LEFT JOIN lexical l ON l.rowid = s.id "
    "WHERE s.file_id IN (SELECT value FROM json_each(?)) ORDER BY s.id"
)
_SEG_COLS = 'file_id, local_id, kind, chunk, start, "end", text, why, spaces, body, names, tsv, dl'
_SEG_TYPES = ["int8", "int8", "text", "int4", "float8", "float8", "text", "text", "text[]",
              "text", "text", "text", "int4"]  # fmt: skip


def lock_key(host: str, root: str) -> int:
    """The advisory lock of one (host, root): 64 bits of its hash, signed."""
    digest = hashlib.sha256(f"mms\0{host}\0{root}".encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def under(path: bytes, root: bytes) -> bool:
    base = root.rstrip(b"/") + b"/"
    return path == root or path.startswith(base) or root == b"/"


def pg_text(text: str) -> str:
    """Text PostgreSQL stores: no lone surrogates (undecodable bytes), no NUL."""
    return clean(text).replace("\x00", "\ufffd")


def pg_json(value: Any) -> str:
    return pg_text(json.dumps(value, ensure_ascii=False)).replace("\\u0000", "\\ufffd")


@dataclass
class Published:
    """What a publish did, per root."""

    files: int = 0  # files whose rows were written
    removed: int = 0
    segments: int = 0
    unchanged: int = 0
    roots: dict[str, str] = field(default_factory=dict)  # root -> "published" / "unchanged"

    def to_dict(self) -> dict[str, Any]:
        return {"files": self.files, "removed": self.removed, "segments": self.segments,
                "unchanged": self.unchanged, "roots": self.roots}  # fmt: skip


@dataclass
class _Local:
    """A local file's row, as read from the local index."""

    fid: int
    path: bytes
    row: tuple[Any, ...]

    @property
    def signature(self) -> tuple[Any, ...]:
        _, _, size, mtime_ns, _, h, status, _, indexed_at, _, _ = self.row
        return (size, mtime_ns, status, h, indexed_at)


class Publisher:
    """One indexer's connection: its locks, and the publishing of local indexes."""

    def __init__(self, url: str, host: str) -> None:
        self.url = url
        self.host = host
        self.locked: list[str] = []
        self.con: psycopg.Connection[Any] | None = None
        self.columns: dict[str, str] = {}
        self._stage: tuple[str, ...] | None = None
        self._open()

    def _open(self) -> None:
        self.close()
        self.con = connect(self.url)
        self._stage = None
        with guard(self.url, "write"):
            migrate(self.con, self.url)
            register_vector(self.con)

    def _reconnect(self) -> None:
        self._open()
        held, self.locked = self.locked, []
        self.lock(held)

    def close(self) -> None:
        if self.con is not None:
            with contextlib.suppress(Exception):
                self.con.close()
            self.con = None

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def db(self) -> psycopg.Connection[Any]:
        if self.con is None or self.con.closed:
            raise ConnectionLost(f"lost the index database {redact(self.url)}")
        return self.con

    def lock(self, roots: Sequence[str]) -> None:
        """Take each root's advisory lock (for this session), or exit 4."""
        for root in roots:
            if root in self.locked:
                continue
            with guard(self.url, "write"):
                row = self.db.execute(
                    "SELECT pg_try_advisory_lock(%s)", (lock_key(self.host, root),)
                ).fetchone()
            if not row or not row[0]:
                raise LockBusyError(
                    f"{root} (host {self.host}) is being indexed into {redact(self.url)} "
                    "by another mms process",
                    hint="retry later",
                )
            self.locked.append(root)

    def foreign_sources(self, targets: Sequence[str]) -> list[tuple[str, str]]:
        """(host, root) of other hosts' sources at or under any of ``targets``."""
        if not targets:
            return []
        with guard(self.url, "read"):
            rows = self.db.execute(
                "SELECT host, root FROM mms_sources WHERE host <> %s ORDER BY id", (self.host,)
            ).fetchall()
        wanted = [os.fsencode(t) for t in targets]
        return [(h, r) for h, r in rows if any(under(os.fsencode(r), t) for t in wanted)]

    def drop_source(self, host: str, root: str) -> int:
        """Delete a source and all its rows (under its lock); return its file count."""
        key = lock_key(host, root)
        mine = host == self.host and root in self.locked
        with guard(self.url, "write"):
            if not mine:
                got = self.db.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
                if not got or not got[0]:
                    raise LockBusyError(f"{root} (host {host}) is being indexed right now",
                                        hint="retry later")  # fmt: skip
            try:
                row = self.db.execute(
                    "DELETE FROM mms_sources WHERE host = %s AND root = %s "
                    "RETURNING coalesce((stats->>'files')::int, 0)",
                    (host, pg_text(root)),
                ).fetchone()
            finally:
                if not mine:
                    self.db.execute("SELECT pg_advisory_unlock(%s)", (key,))
        return int(row[0]) if row else 0

    # -- publishing --------------------------------------------------------------------

    def publish(
        self, index_dir: Path, roots: Sequence[str] | None = None,
        progress: ProgressFn | None = None,
    ) -> Published:  # fmt: skip
        """Publish ``roots`` (default: all the index's roots) of the local index."""
        reader = IndexReader.open(index_dir)
        try:
            chosen = list(roots) if roots is not None else list(reader.meta.get("roots", []))
            self.lock(chosen)
            spaces = {n: i for n, i in reader.spaces.items()}
            self.columns = retrying(
                lambda: self._guarded(lambda: ensure_spaces(self.db, spaces, self.url)),
                self._reconnect,
            )
            done = Published()
            files = self._local_files(reader) if chosen else []
            for root in chosen:
                self._publish_root(reader, root, files, done, progress)
            return done
        finally:
            reader.close()

    def _guarded(self, step: Callable[[], Any]) -> Any:
        with guard(self.url, "write"):
            return step()

    def _local_files(self, reader: IndexReader) -> list[_Local]:
        return [_Local(row[0], bytes(row[1]), row) for row in reader.con.execute(_FILE_SQL)]

    def _source(self, root: str, generation: int, index_id: str) -> tuple[int, bool]:
        """The source's id, and whether it already holds this generation of this index."""
        with guard(self.url, "write"):
            self.db.execute(
                "INSERT INTO mms_sources(host, root) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (self.host, pg_text(root)),
            )
            row = self.db.execute(
                "SELECT id, generation, index_id FROM mms_sources WHERE host = %s AND root = %s",
                (self.host, pg_text(root)),
            ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1]) == generation and row[2] == index_id

    def _publish_root(
        self, reader: IndexReader, root: str, files: list[_Local], done: Published,
        progress: ProgressFn | None,
    ) -> None:  # fmt: skip
        generation, index_id = reader.generation, _index_id(reader)
        source, current = retrying(lambda: self._source(root, generation, index_id),
                                   self._reconnect)  # fmt: skip
        if current:
            done.roots[root] = "unchanged"
            return
        root_b = os.fsencode(root)
        local = {f.path: f for f in files if under(f.path, root_b)}
        remote = retrying(lambda: self._signatures(source), self._reconnect)
        changed = [f for p, f in local.items() if remote.get(p) != f.signature]
        gone = [p for p in remote if p not in local]
        done.unchanged += len(local) - len(changed)
        total, count = len(changed) + len(gone), 0
        for start in range(0, len(gone), 1000):
            part = gone[start : start + 1000]
            retrying(functools.partial(self._write, source, part, [], reader), self._reconnect)
            done.removed += len(part)
            count += len(part)
        for batch in _batches(reader, changed):
            paths = [f.path for f in batch]
            step = functools.partial(self._write, source, paths, batch, reader)
            segs = retrying(step, self._reconnect)
            done.files += len(batch)
            done.segments += segs
            count += len(batch)
            if progress is not None:
                progress(count, total, "publishing")
        retrying(lambda: self._finish(source, generation, index_id, reader), self._reconnect)
        done.roots[root] = "published"

    def _signatures(self, source: int) -> dict[bytes, tuple[Any, ...]]:
        with guard(self.url, "read"):
            rows = self.db.execute(
                "SELECT path, size, mtime_ns, status, hash, indexed_at FROM mms_files "
                "WHERE source_id = %s",
                (source,),
            ).fetchall()
        return {bytes(r[0]): tuple(r[1:]) for r in rows}

    def _finish(self, source: int, generation: int, index_id: str, reader: IndexReader) -> None:
        with guard(self.url, "write"), self.db.transaction():
            meta = {"calibration": reader.meta.get("calibration")}
            self.db.execute(
                "UPDATE mms_sources SET generation = %s, index_id = %s, profile = %s, "
                "updated = %s, meta = %s WHERE id = %s",
                (generation, index_id, reader.profile, time.time(), pg_json(meta), source),
            )

    def _write(
        self, source: int, paths: Sequence[bytes], files: Sequence[_Local], reader: IndexReader
    ) -> int:
        """One transaction: delete ``paths``' rows, insert ``files``' (with their segments
        and vectors), and move the source's counts by the difference."""
        rows = _segment_rows(reader, files, self.columns) if files else []
        with guard(self.url, "write"), self.db.transaction():
            con = self.db
            cols = sorted(self.columns.values(), key=lambda c: int(c[2:]))
            counts = ", ".join(f"count(s.{c})" for c in cols)
            before = con.execute(
                f"SELECT count(s.id), coalesce(sum(s.dl), 0){', ' + counts if counts else ''} "
                "FROM mms_files f JOIN mms_segments s ON s.file_id = f.id "
                "WHERE f.source_id = %s AND f.path = ANY(%s)",
                (source, list(paths)),
            ).fetchone()
            deleted = con.execute(
                "DELETE FROM mms_files WHERE source_id = %s AND path = ANY(%s) RETURNING id",
                (source, list(paths)),
            ).fetchall()
            if files:
                ids = self._insert_files(source, files)
                self._copy_segments(rows, ids, cols)
            assert before is not None
            delta = {"segments": len(rows) - int(before[0]),
                     "tokens": sum(r[1][11] for r in rows) - int(before[1]),
                     "files": len(files) - len(deleted)}  # fmt: skip
            vectors = {
                col: sum(1 for r in rows if r[2].get(col) is not None) - int(before[2 + n])
                for n, col in enumerate(cols)
            }
            _move_stats(con, source, delta, vectors)
        return len(rows)

    def _insert_files(self, source: int, files: Sequence[_Local]) -> dict[int, int]:
        """Insert the files' rows; return local file id -> database file id."""
        cols: list[list[Any]] = [[] for _ in range(12)]
        for f in files:
            _, path, size, mtime_ns, modality, h, status, error, indexed_at, taken, _ = f.row
            decoded = os.fsdecode(bytes(path))
            values = [
                source, bytes(path), pg_text(decoded), pg_text(os.path.basename(decoded)), size,
                mtime_ns, modality, h, status, pg_text(error) if error else None, indexed_at,
                taken,
            ]  # fmt: skip
            for n, v in enumerate(values):
                cols[n].append(v)
        metas = [pg_json(json.loads(f.row[10])) for f in files]
        got = self.db.execute(
            "INSERT INTO mms_files(source_id, path, path_text, name_text, size, mtime_ns, "
            "modality, hash, status, error, indexed_at, taken, meta) "
            "SELECT * FROM unnest(%s::int[], %s::bytea[], %s::text[], %s::text[], "
            "%s::bigint[], %s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[], "
            "%s::float8[], %s::float8[], %s::jsonb[]) RETURNING id, path",
            (*cols, metas),
        ).fetchall()
        by_path = {bytes(p): int(i) for i, p in got}
        return {f.fid: by_path[f.path] for f in files}

    def _copy_segments(
        self, rows: list[tuple[int, list[Any], dict[str, np.ndarray | None]]],
        ids: dict[int, int], cols: list[str],
    ) -> None:  # fmt: skip
        """Binary COPY into a session temp table, then one INSERT … SELECT that casts the
        tsvector and the JSON (psycopg has no binary form of a tsvector), and adds the
        segments' postings from their tsvectors."""
        if not rows:
            return
        con = self.db
        if self._stage != tuple(cols):
            con.execute("DROP TABLE IF EXISTS pg_temp.mms_stage")
            dims = {c: int(self._dims[c]) for c in cols}
            vec_cols = "".join(f", {c} vector({dims[c]})" for c in cols)
            con.execute(
                "CREATE TEMP TABLE mms_stage(file_id bigint, local_id bigint, kind text, "
                'chunk integer, start float8, "end" float8, text text, why text, '
                f"spaces text[], body text, names text, tsv text, dl integer{vec_cols})"
            )
            self._stage = tuple(cols)
        names = _SEG_COLS + "".join(f", {c}" for c in cols)
        with con.cursor() as cur:
            with cur.copy(f"COPY mms_stage ({names}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types([*_SEG_TYPES, *(["vector"] * len(cols))])
                for local_file, values, vecs in rows:
                    copy.write_row([ids[local_file], *values, *(vecs.get(c) for c in cols)])
            selected = names.replace("why", "why::jsonb").replace("tsv", "tsv::tsvector")
            cur.execute(
                f"WITH ins AS (INSERT INTO mms_segments ({names}) SELECT {selected} "
                "FROM mms_stage RETURNING id, tsv, dl) "
                f"INSERT INTO mms_postings(lex, seg, f, dl) SELECT {POSTINGS_OF.format(s='ins')} "
                "FROM ins, unnest(ins.tsv) u"
            )
            cur.execute("TRUNCATE mms_stage")

    @property
    def _dims(self) -> dict[str, int]:
        with guard(self.url, "read"):
            rows = self.db.execute("SELECT col, (info->>'dim')::int FROM mms_spaces").fetchall()
        return {c: d for c, d in rows}


def _index_id(reader: IndexReader) -> str:
    """A local index's identity: when it was created (``--rebuild`` makes a new one)."""
    return f"{reader.dir.resolve()}@{reader.meta.get('created', 0)}"


def _batches(reader: IndexReader, files: list[_Local]) -> Iterator[list[_Local]]:
    """The files in publishing batches: at most BATCH_FILES, or BATCH_SEGMENTS segments."""
    counts = dict(reader.con.execute("SELECT file_id, COUNT(*) FROM segments GROUP BY file_id"))
    batch: list[_Local] = []
    segs = 0
    for f in files:
        n = int(counts.get(f.fid, 0))
        if batch and (len(batch) >= BATCH_FILES or segs + n > BATCH_SEGMENTS):
            yield batch
            batch, segs = [], 0
        batch.append(f)
        segs += n
    if batch:
        yield batch


def _segment_rows(
    reader: IndexReader, files: Sequence[_Local], columns: dict[str, str]
) -> list[tuple[int, list[Any], dict[str, np.ndarray | None]]]:
    """(local file id, the row's values, column -> vector) of every segment of ``files``,
    tokenized as the local lexical table is, with the vectors read from the local files."""
    fids = json.dumps([f.fid for f in files])
    raw = reader.con.execute(_SEGMENT_SQL, (fids,)).fetchall()
    tokens = _tokenizer().split([(body, names) for *_, body, names in raw])
    wanted: dict[str, list[int]] = {}
    for row in raw:
        for space in json.loads(row[8]):
            wanted.setdefault(space, []).append(int(row[0]))
    found: dict[str, dict[int, np.ndarray]] = {}
    for space, ids in wanted.items():
        if space not in columns or space not in reader.spaces:
            continue
        vecs = reader.space(space).get(ids)
        found[columns[space]] = dict(zip(ids, np.asarray(vecs, dtype=np.float32), strict=True))
    out = []
    for row, (body_t, names_t) in zip(raw, tokens, strict=True):
        sid, fid, kind, chunk, start, end, text, why, spaces, body, names = row
        tsv, dl = tsvector(body_t, names_t)
        values = [sid, kind, chunk, start, end, pg_text(text), pg_json(json.loads(why)),
                  json.loads(spaces), pg_text(body), pg_text(names), tsv, dl]  # fmt: skip
        by_col = {col: got.get(sid) for col, got in found.items()}
        out.append((int(fid), values, by_col))
    return out


_TOKENIZER: Tokenizer | None = None


def _tokenizer() -> Tokenizer:
    global _TOKENIZER
    if _TOKENIZER is None:
        _TOKENIZER = Tokenizer()
    return _TOKENIZER


def _move_stats(
    con: psycopg.Connection[Any], source: int, delta: dict[str, int], vectors: dict[str, int]
) -> None:
    row = con.execute("SELECT stats FROM mms_sources WHERE id = %s FOR UPDATE", (source,))
    got = row.fetchone()
    stats: dict[str, Any] = dict(got[0]) if got and got[0] else {}
    for key, value in delta.items():
        stats[key] = int(stats.get(key, 0)) + value
    per = dict(stats.get("vectors") or {})
    for col, value in vectors.items():
        per[col] = int(per.get(col, 0)) + value
    stats["vectors"] = per
    con.execute("UPDATE mms_sources SET stats = %s WHERE id = %s", (json.dumps(stats), source))

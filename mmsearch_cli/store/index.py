"""Open an index for reading (one consistent snapshot) or for writing (under the lock).

Layout of an index directory (schema 2)::

    sidecar.json                  the manifest: schema, generation, profile, roots, spaces
                                  (fingerprints, vector files), the database's name
    meta.sqlite (+ -wal, -shm)    files, segments, tombstones, the lexical table (FTS5)
    spaces/<space>.<g>.vec/.ids   a space's vectors as flat rows, appended per commit
    spaces/<space>.<g>.hnsw       its hnswlib graph, once the space is large
    journal/batch-*.npz           batches embedded since the last commit
    lock                          flock held by the one writer

A commit appends the new vectors past each space's committed row count, then changes
the database in one transaction (rows, tombstones, the generation, each space's row
count), then rewrites the manifest. So a commit costs what changed, not the library.
Readers read one database snapshot, which names its generation's vector files and row
counts: rows appended later are not read, and a file that compaction replaced is kept
one generation longer. A kill at any moment leaves the last committed generation: bytes
a killed commit appended past the counts are cut by the next writer.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmsearch_cli.errors import IndexCorruptError, MmsError
from mmsearch_cli.store import db, flat
from mmsearch_cli.store.atomic import write_failed
from mmsearch_cli.store.db import FileFilter
from mmsearch_cli.store.journal import Batch, Journal
from mmsearch_cli.store.lexical import body_of, match_expression
from mmsearch_cli.store.manifest import (
    corrupt,
    database_path,
    open_database,
    read_manifest,
    sidecar_path,
    write_manifest,
)
from mmsearch_cli.store.state import SCHEMA_VERSION, FileRecord, SegmentRecord, SpaceInfo
from mmsearch_cli.store.vectors import (
    SpaceVectors,
    VectorIndex,
    build_graph,
    extend_graph,
    wants_graph,
)

LEXICAL = "lexical"  # the name of the FTS5 space in fusion, --space and --explain
COMPACT_AT = 0.3  # rewrite a space's vectors when this share of its rows is deleted
COMPACT_MIN_ROWS = 1024  # below this, deleted rows cost nothing worth a rewrite


def stale_tmp_files(index_dir: Path) -> list[Path]:
    """Temp files of atomic writes cut short by a kill (manifest, graphs, journal)."""
    found: list[Path] = []
    for sub in (index_dir, index_dir / "spaces", index_dir / "journal"):
        if sub.is_dir():
            found += [p for p in sub.glob(".*.tmp") if p.is_file()]
    return sorted(found)


def _write_error(index_dir: Path, exc: sqlite3.Error) -> MmsError:
    """A database write that failed: the disk (full, a size limit, read-only) is an
    ``IndexWriteError`` (the last commit is intact); anything else is damage."""
    text = str(exc).lower()
    if any(w in text for w in ("disk i/o", "full", "readonly", "unable to open")):
        return write_failed(database_path(index_dir), OSError(errno.EIO, str(exc)))
    return corrupt(index_dir, exc)


class _Connected:
    """What the reader and the writer share: a database connection and its meta table."""

    con: sqlite3.Connection
    meta: dict[str, Any]

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.con.close()

    @property
    def generation(self) -> int:
        return int(self.meta.get("generation", 0))


class IndexReader(_Connected):
    """A read-only snapshot: one database read transaction, vector files mapped lazily."""

    def __init__(self, index_dir: Path, con: sqlite3.Connection) -> None:
        self.dir = index_dir
        self.con = con
        try:
            con.execute("BEGIN")
            self.meta = db.read_meta(con)  # the first read pins the snapshot
            self.spaces = db.read_spaces(con)
        except sqlite3.DatabaseError as exc:
            raise corrupt(index_dir, exc) from None
        self._vectors: dict[str, SpaceVectors] = {}

    @classmethod
    def open(cls, index_dir: Path) -> IndexReader:
        return cls(index_dir, open_database(index_dir))

    @property
    def profile(self) -> str:
        return str(self.meta.get("profile", "builtin"))

    def space(self, name: str) -> SpaceVectors:
        """A space's vectors at this snapshot (mapped on first use)."""
        if name not in self._vectors:
            try:
                self._vectors[name] = self._open_space(name)
            except IndexCorruptError:
                # Files are kept one generation after they are replaced: a reader that
                # slept through two commits moves to the current snapshot instead.
                if not self._refresh():
                    raise
                self._vectors[name] = self._open_space(name)
        return self._vectors[name]

    def warm(self) -> None:
        """Map every space and load its graph now: a server answers its first query warm."""
        for name in self.spaces:
            self.space(name).warm()

    def _open_space(self, name: str) -> SpaceVectors:
        dead = np.asarray(db.tombstones(self.con, name), dtype=np.int64)
        return open_space(self.dir, self.spaces[name], dead)

    def _refresh(self) -> bool:
        """Move to the current snapshot; False if it is the one this reader has."""
        con = open_database(self.dir)
        con.execute("BEGIN")
        meta = db.read_meta(con)
        if int(meta.get("generation", 0)) == self.generation:
            con.close()
            return False
        self.close()
        self.con, self.meta, self.spaces, self._vectors = con, meta, db.read_spaces(con), {}
        return True

    def segments(self, ids: Iterable[int]) -> dict[int, SegmentRecord]:
        return db.segments(self.con, ids)

    def files(self, paths: Iterable[str]) -> dict[str, FileRecord]:
        return db.files(self.con, paths)

    def allowed_segments(self, flt: FileFilter) -> np.ndarray | None:
        """Ids of the segments passing ``flt`` (sorted), or None when nothing is filtered."""
        if not flt:
            return None
        return np.asarray(db.allowed_segments(self.con, flt), dtype=np.int64)

    def lexical(
        self, query: str, k: int, allowed: np.ndarray | None = None, *,
        plus: Sequence[str] = (), minus: Sequence[str] = (),
    ) -> list[tuple[int, float]]:  # fmt: skip
        """BM25 top ``k`` segments for a user's words ([] if none of them can match), with
        ``plus`` words ranking too and none matching ``minus`` (``--plus``/``--minus``)."""
        match = match_expression(query, plus, minus)
        if match is None:
            return []
        return db.lexical(self.con, match, k, None if allowed is None else allowed.tolist())

    def highlights(
        self, query: str, ids: Iterable[int], *, plus: Sequence[str] = ()
    ) -> dict[int, str]:
        match = match_expression(query, plus)
        return {} if match is None else db.highlights(self.con, match, ids)

    def ok_paths(self) -> set[str]:
        return {rec.path for rec in db.iter_files(self.con, status="ok")}


def open_space(index_dir: Path, info: SpaceInfo, dead: np.ndarray) -> SpaceVectors:
    try:
        vectors = (
            flat.FlatVectors.open(index_dir / info.vectors, info.dim, info.rows)
            if info.vectors
            else flat.FlatVectors.open(index_dir / "spaces" / "none", info.dim, 0)
        )
    except (OSError, ValueError) as exc:
        raise IndexCorruptError(
            f"vectors of space '{info.name}' cannot be read ({exc})", hint="run `mms doctor`"
        ) from None
    graph = (index_dir / info.file) if info.file and info.graph_rows else None
    return SpaceVectors(vectors, dead, graph, info.graph_rows, info.name)


@dataclass
class _Pending:
    """What a writer changed since its last commit."""

    files: dict[str, tuple[FileRecord, list[SegmentRecord]]]
    drops: set[str]
    moves: list[tuple[str, str, int, int]]
    vectors: dict[str, tuple[list[np.ndarray], list[np.ndarray]]]
    orphans: set[int]  # segments without a file (``mms doctor --repair``)
    resets: dict[str, SpaceInfo]  # spaces whose vectors are dropped (``mms doctor``)
    stray: dict[str, list[int]]  # vectors no segment owns (``mms doctor``)

    @classmethod
    def empty(cls) -> _Pending:
        return cls({}, set(), [], {}, set(), {}, {})


class IndexWriter(_Connected):
    """The one writer: its changes are journaled per batch and published by ``commit``."""

    def __init__(self, index_dir: Path, con: sqlite3.Connection, new: bool) -> None:
        self.dir = index_dir
        self.con = con
        self.new = new
        self.meta = db.read_meta(con)
        self.spaces = db.read_spaces(con)
        self.roots: list[str] = list(self.meta.get("roots", []))
        self.profile: str = str(self.meta.get("profile", "builtin"))
        self.next_id = int(self.meta.get("next_id", 0))
        self.journal = Journal(index_dir / "journal")
        self._pending = _Pending.empty()
        self._files: dict[str, tuple[int, int, str, str | None]] | None = None
        self.dirty = False
        self.last_commit = time.monotonic()

    @classmethod
    def open(
        cls, index_dir: Path, profile: str = "builtin", *, manifest: bool = True
    ) -> IndexWriter:
        """Open (the caller holds the lock), creating an empty index if there is none. A
        schema 1 index is converted first; a killed commit's leftovers are cut.
        ``manifest=False`` (``mms doctor``): trust the database alone."""
        index_dir.mkdir(parents=True, exist_ok=True)
        side, path = sidecar_path(index_dir), database_path(index_dir)
        if not manifest:
            pass
        elif side.exists():
            if int(read_manifest(index_dir)["schema"]) < SCHEMA_VERSION:
                from mmsearch_cli.store.migrate import convert

                convert(index_dir)
            elif not path.exists():
                raise IndexCorruptError(
                    f"index database {path} is missing", hint="run `mms doctor --repair`"
                )
        elif path.exists():  # a first run killed before its first commit: start over
            for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                p.unlink(missing_ok=True)
        new = not path.exists()
        try:
            con = db.connect(path, write=True)
            if new:
                db.create(con)
                now = time.time()
                con.execute("BEGIN IMMEDIATE")
                db.write_meta(con, generation=0, profile=profile, created=now, updated=0.0,
                              roots=[], next_id=0, previous_files=[])  # fmt: skip
                con.execute("COMMIT")
            else:
                db.add_photo_indexes(con)
        except sqlite3.Error as exc:
            raise _write_error(index_dir, exc) from None
        except OSError as exc:
            raise write_failed(path, exc) from None
        writer = cls(index_dir, con, new)
        writer._cut_uncommitted()
        return writer

    def _cut_uncommitted(self) -> None:
        for info in self.spaces.values():
            if info.vectors:
                flat.truncate(self.dir / info.vectors, info.dim, info.rows)

    # -- what the indexer reads -------------------------------------------------------

    @property
    def files(self) -> dict[str, tuple[int, int, str, str | None]]:
        """path -> (size, mtime_ns, status, hash), committed and pending."""
        if self._files is None:
            self._files = db.file_stats(self.con)
        return self._files

    def segment_ids(self, path: str) -> list[int]:
        pending = self._pending.files.get(path)
        if pending is not None:
            return [s.id for s in pending[1]]
        rec = db.files(self.con, [path], with_segments=True).get(path)
        return rec.segments if rec else []

    # -- changes ----------------------------------------------------------------------

    def add_space(self, info: SpaceInfo) -> None:
        self.spaces[info.name] = info
        self.dirty = True

    def new_ids(self, n: int) -> list[int]:
        start = self.next_id
        self.next_id += n
        return list(range(start, start + n))

    def replay(self) -> int:
        """Apply the journal of an interrupted run; return how many files it recovered.
        Batches written against another generation, or for spaces this one lacks, are
        dropped (their files are embedded again)."""
        replayed = 0
        seen: set[int] = set()
        for batch in self.journal.batches():
            if batch.base_generation != self.generation or not self.fits(batch, seen):
                break
            self.apply(batch)
            replayed += len(batch)
        if not replayed:
            self.journal.clear()
        return replayed

    def fits(self, batch: Batch, seen: set[int] | None = None) -> bool:
        """The batch's vectors go to spaces this index has, with their dimensions, and its
        ids are new: none committed (at or past ``next_id``), none in an earlier batch
        (``seen``, updated), each space's vector ids exactly its segments'. A batch that
        fails is not replayed: a colliding id would silently take a file's vector."""
        seen = set() if seen is None else seen
        ids = [s.id for s in batch.segments]
        files = {f.path for f in batch.files}
        if (
            len(set(ids)) != len(ids)
            or any(i < self.next_id for i in ids)
            or seen.intersection(ids)
            or any(s.file not in files for s in batch.segments)
        ):
            return False  # fmt: skip
        if not {name for s in batch.segments for name in s.spaces} <= set(batch.vectors):
            return False
        for name, (vec_ids, vecs) in batch.vectors.items():
            if name not in self.spaces or vecs.shape[1] != self.spaces[name].dim:
                return False
            listed = sorted(s.id for s in batch.segments if name in s.spaces)
            if sorted(np.asarray(vec_ids).tolist()) != listed:
                return False
        seen.update(ids)
        return True

    def write_batch(self, batch: Batch) -> None:
        """Journal first (durable), then apply in memory."""
        batch.base_generation = self.generation
        self.journal.append(batch)
        self.apply(batch)

    def apply(self, batch: Batch) -> None:
        by_file: dict[str, list[SegmentRecord]] = {rec.path: [] for rec in batch.files}
        for seg in batch.segments:
            by_file.setdefault(seg.file, []).append(seg)
            self.next_id = max(self.next_id, seg.id + 1)
        for rec in batch.files:
            self.drop_file(rec.path)
            self._pending.files[rec.path] = (rec, by_file.get(rec.path, []))
            self.files[rec.path] = (rec.size, rec.mtime_ns, rec.status, rec.hash)
        for space, (ids, vecs) in batch.vectors.items():
            got = self._pending.vectors.setdefault(space, ([], []))
            got[0].append(np.asarray(ids, dtype=np.int64))
            got[1].append(np.asarray(vecs, dtype=np.float32))
        self.dirty = True

    def drop_file(self, path: str) -> None:
        """Forget a file (committed or pending); its vectors become tombstones."""
        pending = self._pending.files.pop(path, None)
        if pending is not None:
            dead = {s.id for s in pending[1]}
            for space, (ids, vecs) in self._pending.vectors.items():
                keep = [~np.isin(part, list(dead)) for part in ids]
                self._pending.vectors[space] = (
                    [part[m] for part, m in zip(ids, keep, strict=True)],
                    [part[m] for part, m in zip(vecs, keep, strict=True)],
                )
        self._pending.drops.add(path)
        self.files.pop(path, None)
        self.dirty = True

    def move_file(self, old: str, new: str, size: int, mtime_ns: int) -> None:
        stat = self.files.pop(old)
        self.files[new] = (size, mtime_ns, stat[2], stat[3])
        self._pending.moves.append((old, new, size, mtime_ns))
        self.dirty = True

    def drop_space_vectors(self, name: str) -> int:
        """Forget every file with a vector in space ``name`` and empty the space (its files
        are unreadable); return how many files will be embedded again."""
        sql = (
            "SELECT DISTINCT f.path FROM segments s JOIN files f ON f.id = s.file_id, "
            "json_each(s.spaces) j WHERE j.value = ?"
        )
        paths = [os.fsdecode(p) for (p,) in self.con.execute(sql, (name,))]
        for path in paths:
            self.drop_file(path)
        info = self.spaces[name]
        self._pending.resets[name] = SpaceInfo(
            name=info.name, dim=info.dim, metric=info.metric, encoders=info.encoders,
            fingerprints=info.fingerprints, options=info.options, weight=info.weight,
        )  # fmt: skip
        self.dirty = True
        return len(paths)

    def tombstone(self, space: str, ids: Iterable[int]) -> None:
        """Mark stored vectors deleted (``mms doctor``: vectors no segment owns)."""
        self._pending.stray.setdefault(space, []).extend(int(i) for i in ids)
        self.dirty = True

    def drop_orphans(self, ids: Iterable[int]) -> None:
        self._pending.orphans |= set(ids)
        self.dirty = True

    def set_roots(self, roots: list[str]) -> None:
        if roots != self.roots:
            self.roots = roots
            self.dirty = True

    @property
    def root_devices(self) -> dict[str, int]:
        """The device each root was on when it last held files (``indexing.guard``)."""
        return {str(k): int(v) for k, v in dict(self.meta.get("root_devices") or {}).items()}

    @property
    def sniffed_binaries(self) -> dict[str, list[int]]:
        """Extensionless files found not to be text, with their (size, mtime_ns)."""
        return dict(self.meta.get("sniffed_binaries") or {})

    def set_sniffed_binaries(self, binaries: dict[str, list[int]]) -> None:
        if binaries != self.sniffed_binaries:
            self.meta["sniffed_binaries"] = binaries
            self.dirty = True

    def set_unsupported(self, counts: dict[str, int]) -> None:
        """The last full run's unsupported files by type, for ``mms info``."""
        if counts != self.meta.get("unsupported"):
            self.meta["unsupported"] = counts
            self.dirty = True

    def set_calibration(self, data: dict[str, Any]) -> None:
        """What chance scores look like in this index (``search.calibrate``)."""
        if data != self.meta.get("calibration"):
            self.meta["calibration"] = data
            self.dirty = True

    def set_root_device(self, root: str, device: int) -> None:
        devices = self.root_devices
        if devices.get(root) != device:
            self.meta["root_devices"] = {**devices, root: device}
            self.dirty = True

    # -- publishing -------------------------------------------------------------------

    def commit(self) -> None:
        """Publish a new generation: vectors appended first, then the database in one
        transaction, then the manifest; then maintenance (compaction, graphs)."""
        self._publish()
        self._maintain()
        self.last_commit = time.monotonic()

    def _publish(self, rewrites: dict[str, SpaceInfo] | None = None) -> None:
        gen = self.generation + 1
        pending, self._pending = self._pending, _Pending.empty()
        appended = self._append_vectors(pending, gen)
        previous = self._referenced_files()
        try:
            self.con.execute("BEGIN IMMEDIATE")
            dead: dict[str, int] = {}
            for path in sorted(pending.drops):
                for space, _ in db.drop_file(self.con, path):
                    dead[space] = dead.get(space, 0) + 1
            for name, n in db.drop_segments(self.con, pending.orphans).items():
                dead[name] = dead.get(name, 0) + n
            for name, ids in pending.stray.items():
                rows = [(name, i) for i in ids]
                self.con.executemany("INSERT OR IGNORE INTO tombstones VALUES (?, ?)", rows)
                dead[name] = dead.get(name, 0) + len(rows)
            for old, new, size, mtime_ns in pending.moves:
                db.move_file(self.con, old, new, size, mtime_ns)
            for rec, segs in pending.files.values():
                db.insert_file(self.con, rec, segs, [body_of(s) for s in segs])
            rewrites = {**(rewrites or {}), **pending.resets}
            for name, info in list(self.spaces.items()):
                info.count += appended.get(name, 0) - dead.get(name, 0)
                if name in rewrites:
                    info = rewrites[name]
                    self.spaces[name] = info
                    self.con.execute("DELETE FROM tombstones WHERE space = ?", (name,))
                db.write_space(self.con, info)
            self.meta.update(
                generation=gen, updated=time.time(), roots=self.roots, next_id=self.next_id,
                profile=self.profile, previous_files=sorted(previous),
            )  # fmt: skip
            db.write_meta(self.con, **self.meta)
            self.con.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                self.con.execute("ROLLBACK")
            self._reload()
            raise _write_error(self.dir, exc) from None
        write_manifest(self.dir, self.meta, self.spaces)
        self.journal.clear()
        self._retire(keep=self._referenced_files() | previous)
        for tmp in stale_tmp_files(self.dir):  # left by killed runs; we hold the lock
            with contextlib.suppress(OSError):
                tmp.unlink()
        self.dirty = False

    def _reload(self) -> None:
        """After a failed transaction: the committed state again (the journal is kept)."""
        self.meta = db.read_meta(self.con)
        self.spaces = db.read_spaces(self.con)
        self._files = None
        self._cut_uncommitted()

    def _append_vectors(self, pending: _Pending, gen: int) -> dict[str, int]:
        appended: dict[str, int] = {}
        for name, (id_parts, vec_parts) in pending.vectors.items():
            info = self.spaces[name]
            ids = np.concatenate(id_parts) if id_parts else np.empty(0, np.int64)
            if ids.size == 0:
                continue
            vecs = np.concatenate(vec_parts).reshape(-1, info.dim)
            order = np.argsort(ids, kind="stable")  # rows stay in id order: lookups bisect
            if info.vectors is None:
                info.vectors = f"spaces/{_safe(name)}.{gen}"
            try:
                info.rows = flat.append(self.dir / info.vectors, info.dim, info.rows,
                                        ids[order], vecs[order])  # fmt: skip
            except OSError as exc:
                self._reload()
                raise write_failed(flat.with_suffix(self.dir / info.vectors, ".vec"), exc) from None
            appended[name] = int(ids.size)
        return appended

    def _referenced_files(self) -> set[str]:
        out: set[str] = set()
        for info in self.spaces.values():
            if info.vectors:
                out |= {info.vectors + ".vec", info.vectors + ".ids"}
            if info.file:
                out.add(info.file)
        return out

    def _retire(self, keep: set[str]) -> None:
        folder = self.dir / "spaces"
        if not folder.is_dir():
            return
        for path in folder.iterdir():
            rel = f"spaces/{path.name}"
            if rel not in keep and not path.name.startswith("."):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()

    def _maintain(self) -> None:
        """Compact spaces with many deleted rows; build or extend graphs of large spaces.
        Each is one more (small) commit, so a kill in between loses nothing."""
        rewrites: dict[str, SpaceInfo] = {}
        gen = self.generation + 1
        for name, info in self.spaces.items():
            deleted = info.rows - info.count
            if info.rows >= COMPACT_MIN_ROWS and deleted > COMPACT_AT * info.rows:
                rewrites[name] = self._compacted(info, gen)
            elif wants_graph(info):
                rewrites[name] = self._with_graph(info, gen)
        if rewrites:
            self._publish(rewrites)

    def _compacted(self, info: SpaceInfo, gen: int) -> SpaceInfo:
        dead = np.asarray(db.tombstones(self.con, info.name), dtype=np.int64)
        src = open_space(self.dir, info, dead)
        keep = ~np.isin(np.asarray(src.flat.ids), dead)
        base = f"spaces/{_safe(info.name)}.{gen}"
        flat.remove(self.dir / base)
        ids, rows = np.asarray(src.flat.ids)[keep], np.flatnonzero(keep)
        count = 0
        for start in range(0, len(rows), flat.CHUNK_ROWS):
            part = rows[start : start + flat.CHUNK_ROWS]
            count = flat.append(self.dir / base, info.dim, count, ids[start : start + len(part)],
                                np.asarray(src.flat.vectors[part]))  # fmt: skip
        new = SpaceInfo(**{**asdict(info), "vectors": base, "rows": count, "count": count,
                           "file": None, "graph_rows": 0})  # fmt: skip
        return self._with_graph(new, gen) if wants_graph(new) else new

    def _with_graph(self, info: SpaceInfo, gen: int) -> SpaceInfo:
        assert info.vectors is not None
        dead = np.asarray(db.tombstones(self.con, info.name), dtype=np.int64)
        vectors = flat.FlatVectors.open(self.dir / info.vectors, info.dim, info.rows)
        if info.file and info.graph_rows:  # extend: only the rows the graph lacks are added
            graph = VectorIndex.load_graph(self.dir / info.file, info.dim)
            graph.delete(dead)
            extend_graph(graph, vectors, dead, start=info.graph_rows)
        else:
            graph = build_graph(vectors, dead)
        rel = f"spaces/{_safe(info.name)}.{gen}.hnsw"
        graph.save(self.dir / rel)
        return SpaceInfo(**{**asdict(info), "file": rel, "graph_rows": info.rows})


def _safe(name: str) -> str:
    return name.replace("/", "_").replace(":", "_")

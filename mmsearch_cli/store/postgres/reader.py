"""Read the backend as the search code reads a local index (``store.index.IndexReader``).

One REPEATABLE READ, read-only transaction per reader: every statement of a query (and
of an ``mms eval`` run) sees one snapshot, as a local reader does. Each space searches
in SQL, with the structured filters joined to the files (``allowed_segments`` gives the
engine a ``SqlFilter`` where a local reader gives an id array: no id list travels).

Dense search is exact (``ORDER BY distance, id``) while a space is small, as the local
store answers a cold query; from ``EXACT_ROWS`` vectors on it walks the HNSW index with
``hnsw.ef_search`` as the local graph's ``ef_for`` (a filtered walk that comes back short
is done exactly: pgvector 0.6 filters after the walk).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from mmsearch_cli.store import db
from mmsearch_cli.store.db import FileFilter
from mmsearch_cli.store.lexical import match_expression
from mmsearch_cli.store.postgres import lexical
from mmsearch_cli.store.postgres.connect import connect, guard, register_vector
from mmsearch_cli.store.postgres.filters import SqlFilter, where
from mmsearch_cli.store.postgres.schema import check_readable, read_spaces
from mmsearch_cli.store.postgres.url import host_name
from mmsearch_cli.store.state import FileRecord, SegmentRecord, SpaceInfo
from mmsearch_cli.store.vectors import GRAPH_MIN_ROWS, ef_for

if TYPE_CHECKING:
    import psycopg

EXACT_ROWS = GRAPH_MIN_ROWS  # below this a space is searched exactly, as locally
EF_SEARCH_MAX = 1000  # pgvector's limit
EMPTY_IDS = np.empty(0, np.int64)
EMPTY_SCORES = np.empty(0, np.float32)

_SEGMENT_COLS = (
    's.id, s.kind, s.chunk, s.start, s."end", s.text, s.why, s.spaces, f.path, f.source_id'
)
_FILE_COLS = (
    "f.id, f.path, f.size, f.mtime_ns, f.modality, f.hash, f.status, f.error, f.indexed_at, "
    "f.meta, f.source_id"
)


class PgSpace:
    """One space's vector column, searched in SQL."""

    def __init__(self, reader: PgReader, info: SpaceInfo, col: str) -> None:
        self.reader = reader
        self.info = info
        self.col = col
        self.name = info.name

    def __len__(self) -> int:
        return self.info.count

    def warm(self) -> None:
        """Nothing to load: the server keeps its pages warm."""

    def search(
        self, query: np.ndarray, k: int, allowed: SqlFilter | np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k segment ids and cosines, best first, among segments passing ``allowed``."""
        if k <= 0 or self.info.count == 0:
            return EMPTY_IDS, EMPTY_SCORES
        vec = np.asarray(query, dtype=np.float32).reshape(-1)
        flt = _as_filter(allowed)
        if self.info.count >= EXACT_ROWS:
            ids, scores = self._run(vec, k, flt, exact=False)
            if flt is None or len(ids) >= k:
                return ids, scores
        return self._run(vec, k, flt, exact=True)

    def _run(
        self, vec: np.ndarray, k: int, flt: SqlFilter | None, *, exact: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        col = self.col
        join = "JOIN mms_files f ON f.id = s.file_id" if flt else ""
        cond = f" AND {flt.where}" if flt else ""
        # An index scan needs ORDER BY the distance alone; the id breaks ties as locally.
        order = f"s.{col} <=> %s" + (", s.id" if exact else "")
        sql = (
            f"SELECT s.id, 1 - (s.{col} <=> %s) FROM mms_segments s {join} "
            f"WHERE s.{col} IS NOT NULL{cond} ORDER BY {order} LIMIT %s"
        )
        params = (vec, *(flt.params if flt else ()), vec, k)
        con = self.reader.con
        with self.reader.guard():
            if not exact:
                ef = min(EF_SEARCH_MAX, max(ef_for(k, self.info.count), k))
                con.execute(f"SET LOCAL hnsw.ef_search = {int(ef)}")
            rows = con.execute(sql, params).fetchall()
        if not rows:
            return EMPTY_IDS, EMPTY_SCORES
        ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
        scores = np.fromiter((r[1] for r in rows), np.float32, len(rows))
        return ids, scores

    def get(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """The vectors of ``ids``, in that order."""
        wanted = [int(i) for i in ids]
        with self.reader.guard():
            rows = self.reader.con.execute(
                f"SELECT id, {self.col} FROM mms_segments WHERE id = ANY(%s)",
                (wanted,),
                binary=True,  # vectors as float32 bytes: parsing their text costs ms each
            ).fetchall()
        got = {int(i): np.asarray(v.to_numpy() if hasattr(v, "to_numpy") else v, np.float32)
               for i, v in rows if v is not None}  # fmt: skip
        out = np.zeros((len(wanted), self.info.dim), dtype=np.float32)
        for n, i in enumerate(wanted):
            if i in got:
                out[n] = got[i]
        return out


def _as_filter(allowed: SqlFilter | np.ndarray | None) -> SqlFilter | None:
    if allowed is None or isinstance(allowed, SqlFilter):
        return allowed
    ids = [int(i) for i in np.asarray(allowed).tolist()]  # an id array (a caller of our own)
    return SqlFilter("s.id = ANY(%s)", (ids,))


class PgReader:
    """A read-only snapshot of the backend, with ``IndexReader``'s surface."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.dir = None
        self.con: psycopg.Connection[Any] = connect(url, autocommit=False)
        self._hosts: dict[int, str] = {}
        self._paths_host: dict[str, str] = {}
        self._tokenizer: lexical.Tokenizer | None = None
        self.host = host_name()
        with self.guard():
            self.con.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            check_readable(self.con, url)
            register_vector(self.con)
            self._load()

    @classmethod
    def open(cls, url: str) -> PgReader:
        return cls(url)

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        with guard(self.url, "read"):
            yield

    def _load(self) -> None:
        sources = self.con.execute(
            "SELECT id, host, root, generation, profile, updated, stats, meta FROM mms_sources "
            "ORDER BY id"
        ).fetchall()
        self._hosts = {int(r[0]): str(r[1]) for r in sources}
        counts: dict[str, int] = {}
        for r in sources:
            for col, n in dict((r[6] or {}).get("vectors") or {}).items():
                counts[col] = counts.get(col, 0) + int(n)
        self.spaces: dict[str, SpaceInfo] = {}
        self._cols: dict[str, str] = {}
        for name, (info, col) in read_spaces(self.con).items():
            info.count = counts.get(col, 0)
            self.spaces[name] = info
            self._cols[name] = col
        published = [r for r in sources if int(r[3]) >= 0]
        self.meta: dict[str, Any] = {
            "generation": sum(int(r[3]) for r in published),
            "profile": next((r[4] for r in published if r[4]), "builtin"),
            "updated": max((float(r[5]) for r in published), default=0.0),
            "roots": [f"{r[1]}:{r[2]}" for r in sources],
            "sources": [{"host": r[1], "root": r[2], "generation": int(r[3]),
                         "updated": float(r[5]), "stats": r[6]} for r in sources],
        }  # fmt: skip
        # Score calibration (``search.calibrate``) is made per local index over its own
        # content: the largest source's stands for the database (exact with one source).
        largest = max(published, key=lambda r: int((r[6] or {}).get("segments", 0)), default=None)
        if largest is not None and (largest[7] or {}).get("calibration"):
            self.meta["calibration"] = largest[7]["calibration"]
        self._spaces_cache: dict[str, PgSpace] = {}

    @property
    def generation(self) -> int:
        return int(self.meta["generation"])

    @property
    def profile(self) -> str:
        return str(self.meta["profile"])

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.con.close()

    def warm(self) -> None:
        """Nothing to map: the database server holds the data."""

    def space(self, name: str) -> PgSpace:
        if name not in self._spaces_cache:
            self._spaces_cache[name] = PgSpace(self, self.spaces[name], self._cols[name])
        return self._spaces_cache[name]

    # -- records ---------------------------------------------------------------------

    def segments(self, ids: Iterable[int]) -> dict[int, SegmentRecord]:
        wanted = sorted({int(i) for i in ids})
        with self.guard():
            rows = self.con.execute(
                f"SELECT {_SEGMENT_COLS} FROM mms_segments s JOIN mms_files f "
                "ON f.id = s.file_id WHERE s.id = ANY(%s)",
                (wanted,),
            ).fetchall()
        out = {}
        for sid, kind, chunk, start, end, text, why, spaces, path, source in rows:
            name = os.fsdecode(bytes(path))
            self._paths_host[name] = self._hosts.get(int(source), "")
            out[int(sid)] = SegmentRecord(
                id=int(sid), file=name, kind=kind, chunk=chunk, start=start, end=end,
                text=text, why=why, spaces=list(spaces),
            )  # fmt: skip
        return out

    def files(self, paths: Iterable[str]) -> dict[str, FileRecord]:
        wanted = [os.fsencode(p) for p in paths]
        with self.guard():
            rows = self.con.execute(
                f"SELECT {_FILE_COLS} FROM mms_files f WHERE f.path = ANY(%s) ORDER BY f.id",
                (wanted,),
            ).fetchall()
        out: dict[str, FileRecord] = {}
        for row in rows:
            rec = _file(row)
            self._paths_host.setdefault(rec.path, self._hosts.get(int(row[10]), ""))
            out.setdefault(rec.path, rec)  # a path two hosts share: the first published
        return out

    def ok_paths(self) -> set[str]:
        with self.guard():
            rows = self.con.execute("SELECT path FROM mms_files WHERE status = 'ok'").fetchall()
        return {os.fsdecode(bytes(p)) for (p,) in rows}

    def exists(self, path: str) -> bool:
        """A result's file is still there: checked here for this host's files; another
        host's are trusted (their indexer prunes them)."""
        host = self._paths_host.get(path)
        return host not in (None, self.host) or os.path.exists(path)

    # -- search ----------------------------------------------------------------------

    def allowed_segments(self, flt: FileFilter) -> SqlFilter | None:
        """The filters as SQL for the spaces to join (None when nothing is filtered)."""
        return where(flt) if flt else None

    def _tok(self) -> lexical.Tokenizer:
        if self._tokenizer is None:
            self._tokenizer = lexical.Tokenizer()
        return self._tokenizer

    def lexical(
        self, query: str, k: int, allowed: SqlFilter | np.ndarray | None = None, *,
        plus: Sequence[str] = (), minus: Sequence[str] = (),
    ) -> list[tuple[int, float]]:  # fmt: skip
        """BM25 top ``k`` segments for a user's words, as the local FTS5 ranks them."""
        q = lexical.query(query, self._tok(), plus, minus)
        if q is None or k <= 0:
            return []
        flt = _as_filter(allowed)
        where = f"AND {flt.where}" if flt else ""
        params: dict[str, object]
        if q.words_only:  # the common case: read only the query words' postings
            sql = lexical.POSTINGS_SQL.format(
                exclude=lexical.POSTINGS_EXCLUDE if q.excluded else "",
                join=_SCORED_JOIN if flt else "",
                where=where,
            )
            params = lexical.postings_params(q, k)
        else:  # a phrase: matched on the tsvectors
            sql = lexical.BM25_SQL.format(
                join="JOIN mms_files f ON f.id = s.file_id" if flt else "", where=where
            )
            params = lexical.bm25_params(q, k)
        if flt:  # positional filter parameters inside a named statement: name them
            for n, value in enumerate(flt.params):
                params[f"f{n}"] = value
            sql = _name_params(sql, len(flt.params))
        with self.guard():
            rows = self.con.execute(sql, params).fetchall()
        return [(int(i), float(s)) for i, s in rows]

    def highlights(
        self, query: str, ids: Iterable[int], *, plus: Sequence[str] = (),
        minus: Sequence[str] = (),
    ) -> dict[int, str]:  # fmt: skip
        """The matched words of each segment, bracketed, as the local FTS5 ``snippet``
        gives them: the segments' texts go into an in-memory FTS5 table."""
        match = _match(query, plus, minus)
        wanted = sorted({int(i) for i in ids})
        if match is None or not wanted:
            return {}
        with self.guard():
            rows = self.con.execute(
                "SELECT id, body, names FROM mms_segments WHERE id = ANY(%s)", (wanted,)
            ).fetchall()
        mem = sqlite3.connect(":memory:")
        try:
            mem.execute(
                f"CREATE VIRTUAL TABLE lexical USING fts5(body, names, tokenize='{db.TOKENIZE}')"
            )
            mem.executemany("INSERT INTO lexical(rowid, body, names) VALUES (?, ?, ?)", rows)
            return db.highlights(mem, match, wanted)
        finally:
            mem.close()


def _match(query: str, plus: Sequence[str], minus: Sequence[str]) -> str | None:
    return match_expression(query, plus, minus)


_SCORED_JOIN = "JOIN mms_segments s ON s.id = scored.id JOIN mms_files f ON f.id = s.file_id"
_FILTER_AFTER = ("WHERE s.tsv @@", "WHERE TRUE")  # the filter follows these (one per statement)


def _name_params(sql: str, n: int) -> str:
    """Replace the filter's ``%s`` (in order) by ``%(f0)s``…: the BM25 statement names its
    parameters, and psycopg takes one style per statement."""
    marker = next(m for m in _FILTER_AFTER if m in sql)
    head, sep, tail = sql.partition(marker)
    for i in range(n):
        tail = tail.replace("%s", f"%(f{i})s", 1)
    return head + sep + tail


def _file(row: Sequence[Any]) -> FileRecord:
    _, path, size, mtime_ns, modality, h, status, error, indexed_at, meta, _ = row
    return FileRecord(
        path=os.fsdecode(bytes(path)), size=int(size), mtime_ns=int(mtime_ns),
        modality=modality, hash=h, status=status, error=error, indexed_at=float(indexed_at),
        meta=meta if isinstance(meta, dict) else json.loads(meta),
    )  # fmt: skip

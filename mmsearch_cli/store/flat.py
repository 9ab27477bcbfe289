"""A space's vectors as flat float32 rows on disk: appended per commit, memory-mapped by
readers, scanned exactly or read by id.

Two files per space: ``<name>.<gen>.vec`` (rows of ``dim`` little-endian float32) and
``<name>.<gen>.ids`` (one int64 segment id per row, increasing, because ids are handed out
in order). A commit appends the new rows past the committed count and the database then
records the new count, so a commit writes what changed, not the library. Readers map only
the committed rows: rows appended by a later commit, or left by a killed one past the
count, are never read. A new file (a new ``gen`` in the name) is written only when
compaction drops deleted rows.

Why flat rows and not only the hnswlib graph: a cold ``mms query`` must read the whole
graph file before its first search (1.3 s at 1M x 384), while an exact scan of a mapped
file touches the same bytes once and needs no build (measured in ``benchmarks/scale.py``).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np

from mmsearch_cli.store.atomic import fsync_dir

CHUNK_ROWS = 32_768  # rows per matrix product in a scan: ~48 MB at 384-d, cache friendly
EMPTY_IDS = np.empty(0, np.int64)
EMPTY_SCORES = np.empty(0, np.float32)


class FlatVectors:
    """The committed rows of one space (read-only view)."""

    def __init__(self, vectors: np.ndarray, ids: np.ndarray, dim: int) -> None:
        self.vectors = vectors  # (rows, dim) float32, usually a read-only memmap
        self.ids = ids  # (rows,) int64, increasing
        self.dim = dim

    @classmethod
    def open(cls, base: Path, dim: int, rows: int) -> FlatVectors:
        """Map the first ``rows`` rows of ``base``.vec/.ids; ValueError if they are short."""
        vec_path, ids_path = with_suffix(base, ".vec"), with_suffix(base, ".ids")
        if rows == 0:
            return cls(np.empty((0, dim), np.float32), EMPTY_IDS, dim)
        need_vec, need_ids = rows * dim * 4, rows * 8
        have_vec, have_ids = _size(vec_path), _size(ids_path)
        if have_vec < need_vec or have_ids < need_ids:
            raise ValueError(
                f"{vec_path.name} holds {min(have_vec // (dim * 4), have_ids // 8)} rows, "
                f"the index expects {rows}"
            )
        vectors = np.memmap(vec_path, dtype="<f4", mode="r", shape=(rows, dim))
        ids = np.memmap(ids_path, dtype="<i8", mode="r", shape=(rows,))
        return cls(vectors, ids, dim)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def rows_of(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ids found, their rows), in the order of ``ids``; ids not stored are skipped."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(self) == 0 or ids.size == 0:
            return EMPTY_IDS, EMPTY_IDS
        rows = np.searchsorted(self.ids, ids)
        rows = np.minimum(rows, len(self) - 1)
        hit = self.ids[rows] == ids
        return ids[hit], rows[hit]

    def get(self, ids: list[int] | np.ndarray) -> np.ndarray:
        """Vectors of ``ids`` (each must be stored), in order: reads only those rows."""
        found, rows = self.rows_of(np.asarray(ids, dtype=np.int64))
        if len(found) != len(ids):
            raise KeyError(f"{len(ids) - len(found)} ids are not stored in this space")
        return np.asarray(self.vectors[rows], dtype=np.float32)

    def search(
        self, query: np.ndarray, k: int, *, rows: np.ndarray | None = None,
        dead: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """Exact top-k (ids, cosines) over all rows, or only ``rows`` (sorted row numbers),
        never returning ``dead`` ids."""
        query = np.asarray(query, dtype=np.float32).reshape(-1)
        best_ids: list[np.ndarray] = []
        best_scores: list[np.ndarray] = []
        if rows is None:
            spans = [(s, min(s + CHUNK_ROWS, len(self))) for s in range(0, len(self), CHUNK_ROWS)]
            parts = ((self.vectors[a:b], self.ids[a:b]) for a, b in spans)
        else:
            parts = (
                (self.vectors[rows[s : s + CHUNK_ROWS]], self.ids[rows[s : s + CHUNK_ROWS]])
                for s in range(0, len(rows), CHUNK_ROWS)
            )
        for vecs, ids in parts:
            scores = np.asarray(vecs, dtype=np.float32) @ query
            if dead is not None and dead.size:
                scores = np.where(np.isin(ids, dead), -np.inf, scores)
            top = _top(scores, k)
            best_ids.append(np.asarray(ids[top], dtype=np.int64))
            best_scores.append(scores[top])
        if not best_ids:
            return EMPTY_IDS, EMPTY_SCORES
        ids_all, scores_all = np.concatenate(best_ids), np.concatenate(best_scores)
        keep = np.isfinite(scores_all)
        ids_all, scores_all = ids_all[keep], scores_all[keep]
        order = np.lexsort((ids_all, -scores_all))[:k]  # ties: lower id first, stable
        return ids_all[order], scores_all[order].astype(np.float32)


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    if k >= len(scores):
        return np.arange(len(scores))
    return np.argpartition(-scores, k - 1)[:k]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def with_suffix(base: Path, suffix: str) -> Path:
    return base.with_name(base.name + suffix)


def append(base: Path, dim: int, committed: int, ids: np.ndarray, vectors: np.ndarray) -> int:
    """Write ``vectors`` (with their ``ids``) after the first ``committed`` rows; return the
    new row count. Bytes past ``committed`` (a killed run's) are cut first; on a failed write
    the files are cut back, so a full disk leaves them as they were."""
    ids = np.ascontiguousarray(ids, dtype="<i8")
    vectors = np.ascontiguousarray(vectors, dtype="<f4").reshape(-1, dim)
    if len(ids) != len(vectors):
        raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
    base.parent.mkdir(parents=True, exist_ok=True)
    created = not with_suffix(base, ".vec").exists()
    for suffix, width, data in ((".vec", dim * 4, vectors), (".ids", 8, ids)):
        _append_bytes(with_suffix(base, suffix), committed * width, data.tobytes())
    if created:
        fsync_dir(base.parent)
    return committed + len(ids)


def _append_bytes(path: Path, offset: int, data: bytes) -> None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.ftruncate(fd, offset)
        try:
            view, done = memoryview(data), 0
            while done < len(view):  # pwrite may write less than asked (large buffers)
                n = os.pwrite(fd, view[done:], offset + done)
                if n <= 0:
                    raise OSError(errno.ENOSPC, f"short write, {done} of {len(data)} bytes")
                done += n
            os.fsync(fd)
        except OSError:
            os.ftruncate(fd, offset)  # needs no space: the committed bytes stay as they were
            raise
    finally:
        os.close(fd)


def truncate(base: Path, dim: int, rows: int) -> None:
    """Cut rows a killed writer appended past the committed count."""
    for suffix, width in ((".vec", dim * 4), (".ids", 8)):
        path = with_suffix(base, suffix)
        if _size(path) > rows * width:
            os.truncate(path, rows * width)


def remove(base: Path) -> None:
    for suffix in (".vec", ".ids"):
        with_suffix(base, suffix).unlink(missing_ok=True)

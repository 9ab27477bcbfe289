"""Searching a space: exact over its flat rows, or an hnswlib graph plus the rows it does
not cover yet. Inner product on unit vectors (= cosine).

When each is used (measured by ``python benchmarks/scale.py``): a fresh process must read
a whole graph file before its first search, about as many bytes as an exact scan reads,
so one query is answered exactly at every size we measured; a reader that answers many
queries (``mms eval``, a server) loads the graph once and then pays ~0.1 ms per query.
A space gets a graph once it holds ``GRAPH_MIN_ROWS`` rows; rows added later are scanned
exactly until they pass a quarter of the graph, when the graph is extended.
"""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mmsearch_cli.store.atomic import atomic_save
from mmsearch_cli.store.flat import CHUNK_ROWS, EMPTY_IDS, EMPTY_SCORES, FlatVectors

M = 16
EF_CONSTRUCTION = 200
EF_SEARCH_MIN = 64
# Below this many allowed ids a filtered query is scored exactly: cheaper than a
# filtered graph walk, and never short of results.
EXACT_FILTER_LIMIT = 20_000
GRAPH_MIN_ROWS = 50_000  # smaller spaces are always scanned exactly
TAIL_FRACTION = 0.25  # extend the graph when the rows it lacks pass this share of it
WARM_QUERIES = 8  # a reader that answered this many queries loads the graph


def ef_for(k: int, n: int) -> int:
    """Query-time ef: grows with k and slowly with the space (recall@10 >= 0.98 measured
    by ``benchmarks/scale.py`` on real embeddings)."""
    return int(max(EF_SEARCH_MIN, 4 * k, 16 * np.log2(max(n, 2))))


def wants_graph(info: Any) -> bool:
    """A space large enough for a graph whose graph lacks too many of its rows."""
    if info.vectors is None or info.count < GRAPH_MIN_ROWS:
        return False
    return bool(info.rows - info.graph_rows > TAIL_FRACTION * max(info.graph_rows, 1))


class VectorIndex:
    def __init__(self, index: object, dim: int, deleted: set[int] | None = None) -> None:
        self._index = index
        self.dim = dim
        # hnswlib keeps a deleted label listed (and exposes no count) until its slot is
        # reused, so deletions are tracked here; the sidecar is the truth after a load.
        self._deleted: set[int] = deleted or set()

    @classmethod
    def empty(cls, dim: int, capacity: int = 1024) -> VectorIndex:
        import hnswlib

        index = hnswlib.Index(space="ip", dim=dim)
        index.init_index(
            max_elements=capacity, ef_construction=EF_CONSTRUCTION, M=M, allow_replace_deleted=True
        )
        index.set_num_threads(1)
        return cls(index, dim)

    @classmethod
    def load(cls, path: Path, dim: int, live: set[int]) -> VectorIndex:
        """Load a saved index; ``live`` are the ids the sidecar says it must hold."""
        import hnswlib

        _check_header(path, dim)
        index = hnswlib.Index(space="ip", dim=dim)
        index.load_index(str(path), allow_replace_deleted=True)
        index.set_num_threads(1)
        labels = set(index.get_ids_list())
        missing = live - labels
        if missing:
            raise ValueError(f"{len(missing)} vectors the sidecar lists are not in the file")
        return cls(index, dim, labels - live)

    @classmethod
    def load_graph(cls, path: Path, dim: int) -> VectorIndex:
        """Load a graph file; which of its ids are deleted is the database's to say."""
        import hnswlib

        _check_header(path, dim)
        index = hnswlib.Index(space="ip", dim=dim)
        index.load_index(str(path), allow_replace_deleted=True)
        index.set_num_threads(1)
        return cls(index, dim)

    @property
    def _idx(self) -> Any:  # hnswlib ships no type stubs
        return self._index

    def __len__(self) -> int:
        return int(self._idx.element_count - len(self._deleted))

    def live_ids(self) -> set[int]:
        return set(self._idx.get_ids_list()) - self._deleted

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        needed = self._idx.element_count + len(ids)
        if needed > self._idx.get_max_elements():
            self._idx.resize_index(max(needed, int(self._idx.get_max_elements() * 1.5) + 1024))
        ids = np.asarray(ids, dtype=np.int64)
        self._idx.add_items(vectors, ids, replace_deleted=bool(self._deleted))
        if self._deleted:  # reused slots drop their old labels
            self._deleted &= set(self._idx.get_ids_list())
            self._deleted -= set(ids.tolist())

    def delete(self, ids: list[int] | np.ndarray) -> None:
        present = set(self._idx.get_ids_list()) - self._deleted
        for i in map(int, ids):
            if i in present:
                self._idx.mark_deleted(i)
                self._deleted.add(i)

    def get(self, ids: list[int]) -> np.ndarray:
        return np.asarray(self._idx.get_items(ids, return_type="numpy"), dtype=np.float32)

    def search(
        self, query: np.ndarray, k: int, allowed: set[int] | None = None,
        exact_below: int = EXACT_FILTER_LIMIT,
    ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """Top-k ids and cosine scores, best first. ``allowed`` restricts the candidates."""
        live = len(self)
        if live == 0 or k <= 0:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        query = np.asarray(query, dtype=np.float32).reshape(1, -1)
        if allowed is not None and len(allowed) <= exact_below:
            return self._exact(query[0], k, allowed)
        k = min(k, live)
        self._idx.set_ef(max(ef_for(k, live), k))  # ef must be >= k
        filt: Callable[[int], bool] | None = None
        if allowed is not None:
            filt = allowed.__contains__
        while True:
            try:
                labels, dists = self._idx.knn_query(query, k=k, filter=filt)
                break
            except RuntimeError:  # fewer than k reachable under the filter
                if k == 1:
                    return np.empty(0, np.int64), np.empty(0, np.float32)
                k = max(1, k // 2)
        return labels[0].astype(np.int64), (1.0 - dists[0]).astype(np.float32)

    def _exact(self, query: np.ndarray, k: int, allowed: set[int]) -> tuple[np.ndarray, np.ndarray]:
        ids = sorted(allowed & self.live_ids())
        if not ids:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        vecs = self.get(ids)
        scores = vecs @ query
        order = np.argsort(-scores, kind="stable")[:k]
        return np.asarray(ids, dtype=np.int64)[order], scores[order].astype(np.float32)

    def save(self, path: Path) -> None:
        def write(tmp: str) -> None:
            # hnswlib does not check its stream: a full disk or a file size limit gives
            # a short file and no error, so the size is checked here.
            self._idx.save_index(tmp)
            expected, actual = int(self._idx.index_file_size()), os.path.getsize(tmp)
            if actual != expected:
                raise OSError(
                    errno.ENOSPC,
                    f"short write, {actual} of {expected} bytes (disk full or a size limit?)",
                )

        atomic_save(path, write)


def _check_header(path: Path, dim: int) -> None:
    """hnswlib loads a file of another dimension without complaint (and then reads out of
    bounds); its header's label and data offsets give the vector size, so check it."""
    with open(path, "rb") as fh:
        head = fh.read(48)
    if len(head) < 48:
        raise ValueError("file too short for an hnswlib index")
    _, _, _, _, label_offset, offset_data = struct.unpack("<6Q", head)
    if label_offset - offset_data != 4 * dim:
        raise ValueError(
            f"file holds {(label_offset - offset_data) // 4}-d vectors, expected {dim}-d"
        )


def build_graph(vectors: FlatVectors, dead: np.ndarray) -> VectorIndex:
    """An hnswlib graph over every live row of ``vectors`` (in chunks: bounded memory)."""
    index = VectorIndex.empty(vectors.dim, capacity=max(len(vectors), 1))
    extend_graph(index, vectors, dead, start=0)
    return index


def extend_graph(index: VectorIndex, vectors: FlatVectors, dead: np.ndarray, start: int) -> None:
    """Add the live rows of ``vectors`` from row ``start`` on: a graph grows by what is new,
    never rebuilt (a rebuild of 1M vectors takes minutes)."""
    for first in range(start, len(vectors), CHUNK_ROWS):
        ids = np.asarray(vectors.ids[first : first + CHUNK_ROWS])
        rows = np.asarray(vectors.vectors[first : first + CHUNK_ROWS])
        live = ~np.isin(ids, dead)
        index.add(ids[live], rows[live])


class SpaceVectors:
    """One space at one snapshot: flat rows (and a graph over the first ``graph_rows``),
    with the ids deleted since they were written (``dead``)."""

    def __init__(
        self, flat: FlatVectors, dead: np.ndarray, graph_path: Path | None, graph_rows: int,
        name: str = "",
    ) -> None:  # fmt: skip
        self.flat = flat
        self.dead = np.sort(np.asarray(dead, dtype=np.int64))
        self.graph_path = graph_path
        self.graph_rows = graph_rows if graph_path is not None else 0
        self.name = name
        self.queries = 0
        self._graph: VectorIndex | None = None

    def __len__(self) -> int:
        return len(self.flat) - int(np.isin(self.dead, self.flat.ids).sum())

    def get(self, ids: list[int] | np.ndarray) -> np.ndarray:
        return self.flat.get(ids)

    def search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k ids and cosines, best first; ``allowed`` (sorted ids) restricts them."""
        self.queries += 1
        if k <= 0 or len(self.flat) == 0:
            return EMPTY_IDS, EMPTY_SCORES
        if allowed is not None:
            found, rows = self.flat.rows_of(allowed)
            if len(found) <= EXACT_FILTER_LIMIT or not self._use_graph():
                return self.flat.search(query, k, rows=np.sort(rows), dead=self.dead)
        elif not self._use_graph():
            return self.flat.search(query, k, dead=self.dead)
        return self._graph_search(query, k, allowed)

    def warm(self) -> None:
        """For a long-lived reader (``mms serve``): use the graph from the first query and
        load it now, not during one."""
        self.queries = max(self.queries, WARM_QUERIES)
        if self.graph_rows > 0:
            self._load_graph()

    def _use_graph(self) -> bool:
        """A graph pays off for a reader that answers many queries (see module doc)."""
        return self.graph_rows > 0 and self.queries >= WARM_QUERIES

    def _load_graph(self) -> VectorIndex:
        if self._graph is None:
            assert self.graph_path is not None
            graph = VectorIndex.load_graph(self.graph_path, self.flat.dim)
            graph.delete(self.dead)
            self._graph = graph
        return self._graph

    def _graph_search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        graph = self._load_graph()
        allowed_set = set(allowed.tolist()) if allowed is not None else None
        ids, scores = graph.search(query, k, allowed_set, exact_below=0)
        tail = np.arange(self.graph_rows, len(self.flat))
        if allowed is not None and tail.size:
            tail = tail[np.isin(np.asarray(self.flat.ids[tail]), allowed)]
        if tail.size:
            t_ids, t_scores = self.flat.search(query, k, rows=tail, dead=self.dead)
            ids, scores = np.concatenate([ids, t_ids]), np.concatenate([scores, t_scores])
            order = np.lexsort((ids, -scores))[:k]
            ids, scores = ids[order], scores[order]
        return ids, scores

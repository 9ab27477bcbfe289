"""One hnswlib index per space, with inner-product search on unit vectors (= cosine)."""

from __future__ import annotations

import errno
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mmsearch_cli.store.atomic import atomic_save

M = 16
EF_CONSTRUCTION = 200
EF_SEARCH_MIN = 64
# Below this many allowed ids a filtered query is scored exactly: cheaper than a
# filtered graph walk, and never short of results.
EXACT_FILTER_LIMIT = 20_000


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
        self, query: np.ndarray, k: int, allowed: set[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k ids and cosine scores, best first. ``allowed`` restricts the candidates."""
        live = len(self)
        if live == 0 or k <= 0:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        query = np.asarray(query, dtype=np.float32).reshape(1, -1)
        if allowed is not None and len(allowed) <= EXACT_FILTER_LIMIT:
            return self._exact(query[0], k, allowed)
        k = min(k, live)
        self._idx.set_ef(max(EF_SEARCH_MIN, k))  # ef must be >= k
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

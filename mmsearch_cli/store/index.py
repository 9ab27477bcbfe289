"""Open an index for reading (a consistent snapshot) or for writing (under the lock).

Layout of an index directory::

    sidecar.json              committed metadata; names the vector files of its generation
    sidecar.prev.json         the previous commit's sidecar (hard link), for repairs
    spaces/<space>.<gen>.hnsw one hnswlib file per space and generation
    journal/batch-*.npz       batches embedded since the last commit
    lock                      flock held by the one writer

A commit writes the new generation's vector files, then atomically replaces the
sidecar. Readers only ever follow the sidecar, so they see the old or the new
generation, never a mix. The previous generation is kept one commit longer so a
reader that read the old sidecar can still open its files.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

import numpy as np

from mmsearch_cli.errors import IndexCorruptError, IndexMissingError
from mmsearch_cli.store.atomic import atomic_write_bytes
from mmsearch_cli.store.journal import Batch, Journal
from mmsearch_cli.store.state import SCHEMA_VERSION, IndexState, SpaceInfo
from mmsearch_cli.store.vectors import VectorIndex

SIDECAR = "sidecar.json"
PREVIOUS = "sidecar.prev.json"  # the sidecar one commit back, for `mms doctor --repair`


def sidecar_path(index_dir: Path) -> Path:
    return index_dir / SIDECAR


def keep_previous(index_dir: Path) -> None:
    """Hard-link the current sidecar as the previous one (free: the commit replaces the
    sidecar by a new inode). Its vector files are kept one commit longer anyway."""
    current, tmp = sidecar_path(index_dir), index_dir / f".{PREVIOUS}.tmp"
    if not current.exists():
        return
    with contextlib.suppress(OSError):  # a convenience for repairs, never a reason to fail
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.link(current, tmp)
        os.replace(tmp, index_dir / PREVIOUS)


def stale_tmp_files(index_dir: Path) -> list[Path]:
    """Temp files of atomic writes cut short by a kill (sidecar, vector files, journal)."""
    found: list[Path] = []
    for sub in (index_dir, index_dir / "spaces", index_dir / "journal"):
        if sub.is_dir():
            found += [p for p in sub.glob(".*.tmp") if p.is_file()]
    return sorted(found)


def read_state(index_dir: Path) -> IndexState:
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
        schema = int(data["schema"])
    except (ValueError, KeyError, TypeError):
        raise IndexCorruptError(
            f"index sidecar {path} is damaged", hint="run `mms doctor` to rebuild what it can"
        ) from None
    if schema > SCHEMA_VERSION:
        raise IndexCorruptError(
            f"index {index_dir} was written by a newer mms (schema {schema})",
            hint=f"this mms reads schema {SCHEMA_VERSION}; upgrade mms",
        )
    try:
        return IndexState.from_json(data)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise IndexCorruptError(
            f"index sidecar {path} is damaged", hint="run `mms doctor` to rebuild what it can"
        ) from None


def load_space(index_dir: Path, info: SpaceInfo, live: set[int]) -> VectorIndex:
    if info.file is None:
        return VectorIndex.empty(info.dim)
    path = index_dir / info.file
    try:
        index = VectorIndex.load(path, info.dim, live)
    except (RuntimeError, OSError, ValueError) as exc:
        raise IndexCorruptError(
            f"vector file {path} cannot be read ({exc})", hint="run `mms doctor`"
        ) from None
    if len(index) != info.count:
        raise IndexCorruptError(
            f"vector file {path} holds {len(index)} vectors, the sidecar expects {info.count}",
            hint="run `mms doctor`",
        )
    return index


def live_ids(state: IndexState, space: str) -> set[int]:
    return {sid for sid, seg in state.segments.items() if space in seg.spaces}


class IndexReader:
    """A read-only snapshot; vector files load lazily per space."""

    def __init__(self, index_dir: Path, state: IndexState) -> None:
        self.dir = index_dir
        self.state = state
        self._spaces: dict[str, VectorIndex] = {}

    @classmethod
    def open(cls, index_dir: Path) -> IndexReader:
        return cls(index_dir, read_state(index_dir))

    def space(self, name: str) -> VectorIndex:
        if name not in self._spaces:
            try:
                self._spaces[name] = load_space(
                    self.dir, self.state.spaces[name], live_ids(self.state, name)
                )
            except IndexCorruptError:
                # A commit may have retired this generation between our two reads.
                fresh = read_state(self.dir)
                if fresh.generation == self.state.generation:
                    raise
                self.state, self._spaces = fresh, {}
                self._spaces[name] = load_space(
                    self.dir, self.state.spaces[name], live_ids(self.state, name)
                )
        return self._spaces[name]


class IndexWriter:
    """Mutable state plus vectors; every batch is journaled, ``commit`` publishes."""

    def __init__(self, index_dir: Path, state: IndexState, vectors: dict[str, VectorIndex]):
        self.dir = index_dir
        self.state = state
        self.vectors = vectors
        self.journal = Journal(index_dir / "journal")
        self.dirty = False
        self.last_commit = time.monotonic()

    @classmethod
    def open(
        cls,
        index_dir: Path,
        new_state: IndexState,
        *,
        replay: bool = True,
        state: IndexState | None = None,
    ) -> tuple[IndexWriter, int]:
        """Open (``state`` if the caller already read the sidecar, else read it, else create
        from ``new_state``); replay the journal unless told not to (the indexer first adds
        the spaces a first run's batches need); return (writer, replayed)."""
        if state is None:
            state = read_state(index_dir) if sidecar_path(index_dir).exists() else new_state
        vectors = {
            name: load_space(index_dir, info, live_ids(state, name))
            for name, info in state.spaces.items()
        }
        writer = cls(index_dir, state, vectors)
        return writer, writer.replay() if replay else 0

    def replay(self) -> int:
        """Apply the journal of an interrupted run; return how many files it recovered.
        Batches written against another state, or for spaces this one lacks, are dropped."""
        replayed = 0
        for batch in self.journal.batches():
            if batch.base_generation != self.state.generation or not self.fits(batch):
                break  # its files will be embedded again
            self.apply(batch)
            replayed += len(batch)
        if replayed:
            self.dirty = True
        else:
            self.journal.clear()
        return replayed

    def fits(self, batch: Batch) -> bool:
        """The batch's vectors go to spaces this state has, with their dimensions."""
        spaces = self.state.spaces
        return all(
            name in spaces and vecs.shape[1] == spaces[name].dim
            for name, (_, vecs) in batch.vectors.items()
        )

    def add_space(self, info: SpaceInfo) -> None:
        self.state.spaces[info.name] = info
        self.vectors[info.name] = VectorIndex.empty(info.dim)
        self.dirty = True

    def new_ids(self, n: int) -> list[int]:
        start = self.state.next_id
        self.state.next_id += n
        return list(range(start, start + n))

    def write_batch(self, batch: Batch) -> None:
        """Journal first (durable), then apply in memory."""
        batch.base_generation = self.state.generation
        self.journal.append(batch)
        self.apply(batch)

    def apply(self, batch: Batch) -> None:
        """Apply a batch in memory (replay, or after journaling it)."""
        for rec in batch.files:
            self.remove_vectors(self.state.drop_file(rec.path))
        for rec in batch.files:
            self.state.files[rec.path] = rec
        for seg in batch.segments:
            self.state.segments[seg.id] = seg
            self.state.next_id = max(self.state.next_id, seg.id + 1)
        for space, (ids, vecs) in batch.vectors.items():
            self.vectors[space].add(ids, vecs)
        self.dirty = True

    def remove_vectors(self, ids: list[int]) -> None:
        if not ids:
            return
        for index in self.vectors.values():
            index.delete(ids)
        self.dirty = True

    def drop_file(self, path: str) -> None:
        self.remove_vectors(self.state.drop_file(path))

    def commit(self) -> None:
        """Publish a new generation: vector files first, then the sidecar, then clean up."""
        gen = self.state.generation + 1
        spaces_dir = self.dir / "spaces"
        spaces_dir.mkdir(parents=True, exist_ok=True)
        for name, index in self.vectors.items():
            rel = f"spaces/{name.replace('/', '_').replace(':', '_')}.{gen}.hnsw"
            index.save(self.dir / rel)
            info = self.state.spaces[name]
            info.file, info.count = rel, len(index)
        self.state.generation = gen
        self.state.updated = time.time()
        data = json.dumps(self.state.to_json(), separators=(",", ":")).encode()
        keep_previous(self.dir)
        atomic_write_bytes(sidecar_path(self.dir), data)
        self.journal.clear()
        self._retire(keep={gen, gen - 1})
        for tmp in stale_tmp_files(self.dir):  # left by killed runs; we hold the lock
            with contextlib.suppress(OSError):
                tmp.unlink()
        self.dirty = False
        self.last_commit = time.monotonic()

    def _retire(self, keep: set[int]) -> None:
        for path in (self.dir / "spaces").glob("*"):
            parts = path.name.split(".")
            stale_tmp = path.name.startswith(".") and path.name.endswith(".tmp")
            old = len(parts) >= 3 and parts[-2].isdigit() and int(parts[-2]) not in keep
            if stale_tmp or old:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()


def vector_counts(reader: IndexReader) -> dict[str, int]:
    return {name: info.count for name, info in reader.state.spaces.items()}


def as_matrix(rows: list[np.ndarray], dim: int) -> np.ndarray:
    if not rows:
        return np.empty((0, dim), dtype=np.float32)
    return np.vstack(rows).astype(np.float32)

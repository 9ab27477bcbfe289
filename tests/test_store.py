"""The store on its own: vectors, journal replay, atomic commits, the lock, the sidecar."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path

import numpy as np
import pytest

from mmsearch_cli.errors import IndexCorruptError, IndexMissingError, LockBusyError
from mmsearch_cli.store.index import IndexReader, IndexWriter, read_state, sidecar_path
from mmsearch_cli.store.journal import Batch
from mmsearch_cli.store.lock import index_lock
from mmsearch_cli.store.state import FileRecord, IndexState, SegmentRecord, SpaceInfo
from mmsearch_cli.store.vectors import VectorIndex


def unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def new_state() -> IndexState:
    return IndexState(profile="test", spaces={"s": SpaceInfo(name="s", dim=8)})


def batch_for(writer: IndexWriter, path: str, vecs: np.ndarray) -> Batch:
    ids = writer.new_ids(len(vecs))
    rec = FileRecord(path=path, size=1, mtime_ns=1, modality="text", segments=ids)
    segs = [SegmentRecord(id=i, file=path, kind="chunk", spaces=["s"]) for i in ids]
    return Batch(files=[rec], segments=segs, vectors={"s": (np.array(ids), vecs)})


def test_vector_index_grows_deletes_and_finds_exact_neighbour() -> None:
    rng = np.random.default_rng(0)
    vecs = unit(rng, 3000, 16)
    index = VectorIndex.empty(16, capacity=10)  # forces resize_index
    index.add(np.arange(3000), vecs)
    ids, scores = index.search(vecs[42], 5)
    assert ids[0] == 42 and scores[0] == pytest.approx(1.0, abs=1e-5)
    index.delete([42])
    ids, _ = index.search(vecs[42], 5)
    assert 42 not in ids and len(index) == 2999
    # Filtered search only returns allowed ids, even when they are few.
    ids, _ = index.search(vecs[7], 10, allowed={1, 2, 3})
    assert set(ids.tolist()) == {1, 2, 3}


def test_commit_then_reader_sees_same_vectors(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    writer, _ = IndexWriter.open(tmp_path, new_state())
    vecs = unit(rng, 4, 8)
    writer.write_batch(batch_for(writer, "/a.txt", vecs))
    writer.commit()
    reader = IndexReader.open(tmp_path)
    assert reader.state.files["/a.txt"].segments == [0, 1, 2, 3]
    ids, _ = reader.space("s").search(vecs[2], 1)
    assert ids.tolist() == [2]


def test_journal_replays_after_a_crash_without_commit(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    writer, _ = IndexWriter.open(tmp_path, new_state())
    writer.write_batch(batch_for(writer, "/a.txt", unit(rng, 2, 8)))
    writer.commit()
    writer.write_batch(batch_for(writer, "/b.txt", unit(rng, 3, 8)))
    del writer  # "killed": the batch is journaled but never committed
    assert "/b.txt" not in read_state(tmp_path).files  # readers see the last commit only
    again, replayed = IndexWriter.open(tmp_path, new_state())
    assert replayed == 1
    assert again.state.files["/b.txt"].segments == [2, 3, 4]
    assert len(again.vectors["s"]) == 5
    again.commit()
    assert len(list((tmp_path / "journal").glob("*.npz"))) == 0


def test_replacing_a_file_drops_its_old_vectors(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    writer, _ = IndexWriter.open(tmp_path, new_state())
    writer.write_batch(batch_for(writer, "/a.txt", unit(rng, 3, 8)))
    writer.write_batch(batch_for(writer, "/a.txt", unit(rng, 1, 8)))
    writer.commit()
    state = read_state(tmp_path)
    assert state.files["/a.txt"].segments == [3]
    assert sorted(state.segments) == [3]
    assert state.spaces["s"].count == 1


def test_old_generations_are_retired(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    writer, _ = IndexWriter.open(tmp_path, new_state())
    for n in range(4):
        writer.write_batch(batch_for(writer, f"/{n}.txt", unit(rng, 1, 8)))
        writer.commit()
    files = sorted(p.name for p in (tmp_path / "spaces").iterdir())
    assert files == ["s.3.hnsw", "s.4.hnsw"]  # current and previous generation


def test_missing_damaged_and_future_sidecars_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(IndexMissingError):
        read_state(tmp_path / "nothing")
    writer, _ = IndexWriter.open(tmp_path, new_state())
    writer.commit()
    good = sidecar_path(tmp_path).read_bytes()
    sidecar_path(tmp_path).write_bytes(good[: len(good) // 2])
    with pytest.raises(IndexCorruptError, match="damaged"):
        read_state(tmp_path)
    data = json.loads(good)
    data["schema"] = 99
    sidecar_path(tmp_path).write_text(json.dumps(data))
    with pytest.raises(IndexCorruptError, match="newer mms"):
        read_state(tmp_path)


def test_vector_file_that_does_not_match_the_sidecar_is_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    writer, _ = IndexWriter.open(tmp_path, new_state())
    writer.write_batch(batch_for(writer, "/a.txt", unit(rng, 3, 8)))
    writer.commit()
    data = json.loads(sidecar_path(tmp_path).read_text())
    data["spaces"]["s"]["count"] = 7
    sidecar_path(tmp_path).write_text(json.dumps(data))
    with pytest.raises(IndexCorruptError, match="holds 3 vectors"):
        IndexReader.open(tmp_path).space("s")


def _hold_lock(path: str, ready: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    with index_lock(Path(path)):
        ready.set()
        time.sleep(30)


def test_lock_is_exclusive_and_released_when_the_holder_dies(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(tmp_path), ready))
    holder.start()
    assert ready.wait(10)
    with pytest.raises(LockBusyError, match=f"pid {holder.pid}"), index_lock(tmp_path):
        pass
    os.kill(holder.pid, 9)  # SIGKILL: no cleanup code runs
    holder.join()
    with index_lock(tmp_path, wait=5):  # the kernel released the flock
        pass

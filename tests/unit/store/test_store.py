"""The store on its own: flat vectors, the database, journal replay, commits that write what
changed, compaction, the manifest, the lock."""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest

from mmsearch_cli.errors import IndexCorruptError, IndexMissingError, LockBusyError
from mmsearch_cli.store import flat
from mmsearch_cli.store.db import FileFilter
from mmsearch_cli.store.index import IndexReader, IndexWriter
from mmsearch_cli.store.journal import Batch
from mmsearch_cli.store.lock import index_lock
from mmsearch_cli.store.manifest import database_path, read_manifest, sidecar_path
from mmsearch_cli.store.state import FileRecord, SegmentRecord, SpaceInfo
from mmsearch_cli.store.vectors import VectorIndex


def unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def open_writer(path: Path) -> IndexWriter:
    writer = IndexWriter.open(path, "test")
    if "s" not in writer.spaces:
        writer.add_space(SpaceInfo(name="s", dim=8))
    return writer


def batch_for(
    writer: IndexWriter, path: str, vecs: np.ndarray, text: str = "", **meta: object
) -> Batch:
    ids = writer.new_ids(len(vecs))
    rec = FileRecord(path=path, size=1, mtime_ns=1, modality="text", segments=ids, meta=meta)
    segs = [SegmentRecord(id=i, file=path, kind="chunk", text=text, spaces=["s"]) for i in ids]
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


def test_flat_vectors_append_only_what_changed_and_read_back_by_id(tmp_path: Path) -> None:
    rng = np.random.default_rng(10)
    base = tmp_path / "s.1"
    first = unit(rng, 5, 8)
    rows = flat.append(base, 8, 0, np.arange(5), first)
    size = base.with_name("s.1.vec").stat().st_size
    rows = flat.append(base, 8, rows, np.arange(5, 7), unit(rng, 2, 8))
    assert rows == 7 and base.with_name("s.1.vec").stat().st_size == size + 2 * 8 * 4
    view = flat.FlatVectors.open(base, 8, 7)
    np.testing.assert_allclose(view.get([3, 1]), first[[3, 1]])
    ids, scores = view.search(first[2], 3, dead=np.array([2]))
    assert 2 not in ids.tolist() and len(ids) == 3 and bool(np.all(np.diff(scores) <= 0))
    # A killed commit's rows past the committed count are never read, then cut.
    flat.append(base, 8, 7, np.arange(7, 9), unit(rng, 2, 8))
    assert len(flat.FlatVectors.open(base, 8, 7)) == 7
    flat.truncate(base, 8, 7)
    assert base.with_name("s.1.ids").stat().st_size == 7 * 8


def test_commit_then_reader_sees_same_vectors(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    writer = open_writer(tmp_path)
    vecs = unit(rng, 4, 8)
    writer.write_batch(batch_for(writer, "/a.txt", vecs))
    writer.commit()
    reader = IndexReader.open(tmp_path)
    assert reader.files(["/a.txt"])["/a.txt"].modality == "text"
    assert sorted(reader.segments(range(10))) == [0, 1, 2, 3]
    ids, _ = reader.space("s").search(vecs[2], 1)
    assert ids.tolist() == [2]


def test_a_reader_keeps_its_snapshot_while_the_writer_commits(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    writer = open_writer(tmp_path)
    writer.write_batch(batch_for(writer, "/a.txt", unit(rng, 2, 8)))
    writer.commit()
    reader = IndexReader.open(tmp_path)
    writer.write_batch(batch_for(writer, "/b.txt", unit(rng, 3, 8)))
    writer.drop_file("/a.txt")
    writer.commit()
    assert reader.generation == 1 and len(reader.space("s")) == 2
    assert set(reader.files(["/a.txt", "/b.txt"])) == {"/a.txt"}
    fresh = IndexReader.open(tmp_path)
    assert fresh.generation == 2 and len(fresh.space("s")) == 3
    assert set(fresh.files(["/a.txt", "/b.txt"])) == {"/b.txt"}


def test_journal_replays_after_a_crash_without_commit(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    writer = open_writer(tmp_path)
    writer.write_batch(batch_for(writer, "/a.txt", unit(rng, 2, 8)))
    writer.commit()
    writer.write_batch(batch_for(writer, "/b.txt", unit(rng, 3, 8)))
    del writer  # "killed": the batch is journaled but never committed
    assert "/b.txt" not in IndexReader.open(tmp_path).files(["/b.txt"])
    again = open_writer(tmp_path)
    assert again.replay() == 1
    assert again.segment_ids("/b.txt") == [2, 3, 4]
    again.commit()
    assert len(list((tmp_path / "journal").glob("*.npz"))) == 0
    assert len(IndexReader.open(tmp_path).space("s")) == 5


def test_replacing_a_file_drops_its_old_vectors(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    writer = open_writer(tmp_path)
    writer.write_batch(batch_for(writer, "/a.txt", unit(rng, 3, 8)))
    writer.commit()
    writer.write_batch(batch_for(writer, "/a.txt", unit(rng, 1, 8)))
    writer.commit()
    reader = IndexReader.open(tmp_path)
    assert sorted(reader.segments(range(10))) == [3]
    assert reader.spaces["s"].count == 1 and len(reader.space("s")) == 1
    assert reader.space("s").dead.tolist() == [0, 1, 2]  # tombstones until compaction


def test_a_commit_writes_what_changed_not_the_library(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    writer = open_writer(tmp_path)
    for n in range(50):
        writer.write_batch(batch_for(writer, f"/{n}.txt", unit(rng, 4, 8)))
    writer.commit()
    vec = next((tmp_path / "spaces").glob("*.vec"))
    before = vec.stat().st_size
    writer.write_batch(batch_for(writer, "/new.txt", unit(rng, 1, 8)))
    writer.commit()
    assert vec.stat().st_size == before + 8 * 4  # one row appended, same file
    assert sorted(p.name for p in (tmp_path / "spaces").iterdir()) == ["s.1.ids", "s.1.vec"]


def test_many_deletions_compact_the_vectors(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    writer = open_writer(tmp_path)
    vecs = unit(rng, 2000, 8)
    for n in range(20):
        writer.write_batch(batch_for(writer, f"/{n}.txt", vecs[n * 100 : (n + 1) * 100]))
    writer.commit()
    for n in range(10):
        writer.drop_file(f"/{n}.txt")
    writer.commit()  # 50% deleted: past the 30% bar, so the rows are rewritten
    reader = IndexReader.open(tmp_path)
    info = reader.spaces["s"]
    assert info.rows == info.count == 1000 and reader.space("s").dead.size == 0
    ids, _ = reader.space("s").search(vecs[1500], 1)
    assert ids.tolist() == [1500]
    names = sorted(p.name for p in (tmp_path / "spaces").iterdir())
    assert names == ["s.1.ids", "s.1.vec", "s.3.ids", "s.3.vec"]  # previous kept one commit


def test_filters_and_words_are_answered_in_sql(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    writer = open_writer(tmp_path)
    writer.write_batch(batch_for(writer, "/p/2019-07 Iceland/DSC_0042.jpg", unit(rng, 1, 8),
                                 "a glacier", taken="2019-07-14T10:00:00"))  # fmt: skip
    writer.write_batch(batch_for(writer, "/p/notes/router.txt", unit(rng, 2, 8),
                                 "error code 404 on the router"))  # fmt: skip
    writer.commit()
    reader = IndexReader.open(tmp_path)
    only_dsc = reader.allowed_segments(FileFilter(path_glob="DSC_*"))
    assert only_dsc is not None and only_dsc.tolist() == [0]
    assert reader.allowed_segments(FileFilter()) is None
    assert [sid for sid, _ in reader.lexical("iceland 2019", 10)] == [0]
    assert {sid for sid, _ in reader.lexical("error 404", 10)} == {1, 2}
    assert reader.lexical('"code 404"', 10) and not reader.lexical('"404 code"', 10)
    assert reader.lexical("the of and", 10) == []  # only stop words: nothing to match
    assert reader.lexical('NEAR( "unbalanced', 10) == []  # never a syntax error
    assert "[404]" in reader.highlights("404", [1])[1]


def test_missing_damaged_and_future_manifests_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(IndexMissingError):
        IndexReader.open(tmp_path / "nothing")
    writer = open_writer(tmp_path)
    writer.commit()
    good = sidecar_path(tmp_path).read_bytes()
    sidecar_path(tmp_path).write_bytes(good[: len(good) // 2])
    with pytest.raises(IndexCorruptError, match="damaged"):
        IndexReader.open(tmp_path)
    data = json.loads(good)
    data["schema"] = 99
    sidecar_path(tmp_path).write_text(json.dumps(data))
    with pytest.raises(IndexCorruptError, match="newer mms"):
        IndexReader.open(tmp_path)
    assert read_manifest  # the same check serves the writer


def test_vector_files_that_do_not_match_the_database_are_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    writer = open_writer(tmp_path)
    writer.write_batch(batch_for(writer, "/a.txt", unit(rng, 3, 8)))
    writer.commit()
    writer.close()
    con = sqlite3.connect(database_path(tmp_path))
    info = json.loads(con.execute("SELECT info FROM spaces WHERE name='s'").fetchone()[0])
    info["rows"] = 7
    con.execute("UPDATE spaces SET info = ? WHERE name = 's'", (json.dumps(info),))
    con.commit()
    con.close()
    with pytest.raises(IndexCorruptError, match="holds 3 rows"):
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


def test_large_spaces_get_a_graph_that_grows_with_the_rows_and_agrees_with_exact_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mmsearch_cli.store import vectors

    monkeypatch.setattr(vectors, "GRAPH_MIN_ROWS", 100)
    rng = np.random.default_rng(8)
    data = unit(rng, 400, 8)
    writer = open_writer(tmp_path)
    writer.write_batch(batch_for(writer, "/a.txt", data[:150]))
    writer.commit()
    first = IndexReader.open(tmp_path).spaces["s"]
    assert first.file and first.graph_rows == 150
    writer.write_batch(batch_for(writer, "/b.txt", data[150:170]))
    writer.commit()  # 20 new rows: under a quarter of the graph, scanned exactly
    assert IndexReader.open(tmp_path).spaces["s"].graph_rows == 150
    writer.write_batch(batch_for(writer, "/c.txt", data[170:400]))
    writer.drop_file("/b.txt")
    writer.commit()  # 230 more: the graph is extended, and /b.txt's vectors are deleted in it
    reader = IndexReader.open(tmp_path)
    info = reader.spaces["s"]
    assert info.graph_rows == 400 and info.file != first.file
    space = reader.space("s")
    for q in data[::37]:
        exact = space.search(q, 5)
        space.queries = vectors.WARM_QUERIES  # a long-lived reader: the graph answers
        approx = space.search(q, 5)
        space.queries = 0
        assert approx[0].tolist() == exact[0].tolist()
        assert not set(approx[0].tolist()) & set(range(150, 170))


def test_a_reader_that_slept_through_two_commits_moves_to_the_current_snapshot(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(9)
    vecs = unit(rng, 2000, 8)
    writer = open_writer(tmp_path)
    for n in range(20):
        writer.write_batch(batch_for(writer, f"/{n}.txt", vecs[n * 100 : (n + 1) * 100]))
    writer.commit()
    reader = IndexReader.open(tmp_path)  # generation 1, vectors in s.1.*
    for n in range(10):
        writer.drop_file(f"/{n}.txt")
    writer.commit()  # compaction: s.3.* written, s.1.* kept one generation longer
    writer.write_batch(batch_for(writer, "/new.txt", vecs[:1]))
    writer.commit()  # s.1.* retired
    assert not list((tmp_path / "spaces").glob("s.1.*"))
    ids, _ = reader.space("s").search(vecs[1500], 1)
    assert ids.tolist() == [1500] and reader.generation == 4

"""Journal batches are checked before they are replayed (issue 20, defect 3): a crafted
batch can neither inflate into gigabytes nor take another file's vector."""

from __future__ import annotations

import json
import tracemalloc
import zipfile
from io import BytesIO
from pathlib import Path

import numpy as np

from mmsearch_cli.store.index import IndexReader
from mmsearch_cli.store.journal import Batch, Journal
from mmsearch_cli.store.state import FileRecord, SegmentRecord
from tests.conftest import copy_tree
from tests.hardening.bounded import invoke


def indexed(tmp_path: Path) -> tuple[Path, Path]:
    lib = copy_tree(["text/owls.txt", "text/frogs.txt"], tmp_path / "lib")
    index = tmp_path / "index"
    assert invoke("index", lib, "--index", index, "-q").code == 0
    return lib, index


def test_a_compressed_bomb_in_the_journal_is_refused_unread(tmp_path: Path) -> None:
    _, index = indexed(tmp_path)
    meta = json.dumps({"base_generation": 1, "files": [], "segments": []}).encode()
    buf = BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("meta.npy", "w") as fh:
            np.lib.format.write_array(fh, np.frombuffer(meta, np.uint8))
        with archive.open("vec__text.npy", "w", force_zip64=True) as fh:  # 400 MB of zeros
            np.lib.format.write_array(fh, np.zeros((260_000, 384), np.float32))
        with archive.open("ids__text.npy", "w") as fh:
            np.lib.format.write_array(fh, np.arange(260_000, dtype=np.int64))
    bomb = index / "journal" / "batch-00000000.npz"
    bomb.parent.mkdir(exist_ok=True)
    bomb.write_bytes(buf.getvalue())
    assert bomb.stat().st_size < 2_000_000
    tracemalloc.start()
    assert list(Journal(index / "journal").batches()) == []
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20_000_000  # not the 400 MB it claims
    assert invoke("doctor", "--index", index).code == 0  # a journal note, not damage
    assert invoke("index", tmp_path / "lib", "--index", index, "-q").code == 0


def test_a_batch_whose_ids_collide_is_not_replayed(tmp_path: Path) -> None:
    lib, index = indexed(tmp_path)
    reader = IndexReader.open(index)
    owls = next(s for s in reader.segments(range(100)).values() if s.file.endswith("owls.txt"))
    before = reader.space("text").get([owls.id]).copy()
    generation = reader.generation
    reader.close()
    # A journaled "new file" that reuses the owls note's segment id, with another vector.
    fake = str(lib / "text" / "fake.txt")
    batch = Batch(
        files=[FileRecord(fake, 10, 1, "text", segments=[owls.id], indexed_at=1.0)],
        segments=[SegmentRecord(owls.id, fake, "chunk", chunk=0, text="fake", spaces=["text"])],
        vectors={"text": (np.asarray([owls.id]), np.ones((1, 384), np.float32) / 384**0.5)},
        base_generation=generation,
    )
    Journal(index / "journal").append(batch)
    res = invoke("index", lib, "--index", index, "--json")
    assert res.code == 0, res.err
    assert json.loads(res.out)["resumed"] == 0
    reader = IndexReader.open(index)
    assert np.array_equal(reader.space("text").get([owls.id]), before)  # its own vector
    assert not reader.files([fake])
    reader.close()
    assert invoke("doctor", "--index", index).code == 0

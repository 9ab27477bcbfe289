"""Files that change while mms reads them (issue 20, defect 5): a FIFO or a device is
never read, a file is read no further than the size the scan saw, and one that changes
while it is decoded is left whole for the next run."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from mmsearch_cli import api
from mmsearch_cli.errors import MediaError
from mmsearch_cli.indexing.diff import content_hash
from tests.hardening.bounded import invoke


def test_special_files_are_scan_problems_and_never_read(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "note.txt").write_text("A note about lighthouses.\n")
    os.mkfifo(lib / "pipe.txt")
    (lib / "zero.txt").symlink_to("/dev/zero")
    started = time.monotonic()
    res = invoke("index", lib, "--index", tmp_path / "index", "--json")
    assert time.monotonic() - started < 60  # neither blocks nor reads without end
    assert res.code == 0, res.err
    summary = json.loads(res.out)
    problems = {Path(p["path"]).name: p["reason"] for p in summary["scan_problems"]}
    assert problems == {"pipe.txt": "not a regular file (a FIFO): skipped",
                        "zero.txt": "not a regular file (a device): skipped"}  # fmt: skip
    assert summary["added"] == 1


def test_a_path_that_became_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "was-a-photo.jpg"
    os.mkfifo(fifo)
    done: list[BaseException] = []

    def read() -> None:
        try:
            content_hash(str(fifo), 100)
        except MediaError as exc:
            done.append(exc)

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "opening a FIFO blocked"
    assert done and "not a regular file" in str(done[0])


def test_a_growing_file_is_hashed_only_as_far_as_the_scan_saw(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    path.write_bytes(b"a" * 1000)
    before = content_hash(str(path), 1000)
    with path.open("ab") as fh:
        fh.write(b"b" * 5_000_000)  # it grew after the scan
    assert content_hash(str(path), 1000) == before


def test_a_file_changed_while_it_is_read_is_left_for_the_next_run(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    for name in ("a.txt", "b.txt"):
        (lib / name).write_text(f"The {name} note about tides.\n")
    index = tmp_path / "index"

    def touch_b(done: int, total: int, path: str) -> None:
        if path.endswith("b.txt"):  # its turn: it changes as it is read
            with open(path, "a") as fh:
                fh.write("A line written during the run.\n")

    summary = api.index([lib], index_dir=index, progress=touch_b)
    assert (summary.added, summary.changed, summary.failed) == (1, 1, 0)
    again = api.index([lib], index_dir=index)
    assert (again.added, again.changed) == (1, 0)  # taken whole by the next run
    found = invoke("query", "written during the run", "--index", index, "-f", "paths", "-k", "1")
    assert found.text.strip().endswith("b.txt")


@pytest.fixture(autouse=True)
def _no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMS_NO_SERVER", "1")

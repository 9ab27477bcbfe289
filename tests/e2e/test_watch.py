"""`mms serve --watch`: real files changing under a real server, found by real queries."""

from __future__ import annotations

import json
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmsearch_cli.serve import watch
from tests.conftest import SAMPLE, copy_tree, invoke
from tests.e2e.test_serve import Served

PHOTO = SAMPLE / "images" / "world_animals" / "giraffe.webp"


def indexed(index: Path) -> set[str]:
    res = invoke("query", "anything at all", "--index", index, "-f", "paths", "-k", "1000",
                 "--no-server")  # fmt: skip
    return {Path(p).name for p in res.text.splitlines()}


def eventually(check, timeout: float = 30.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def generation(index: Path) -> int:
    return int(json.loads((index / "sidecar.json").read_text())["generation"])


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[tuple[Path, Path, Served]]:
    lib = copy_tree(["text/hand_tools.md", "images/tools/hammer1.webp"], tmp_path / "lib")
    index = tmp_path / "index"
    assert invoke("index", lib, "--index", index, "-q").code == 0
    server = Served(index, tmp_path / "serve.log", "--watch", "--debounce", "0.3")
    yield lib, index, server
    server.stop()


def test_created_moved_and_deleted_files_follow_within_seconds(
    watched: tuple[Path, Path, Served],
) -> None:
    lib, index, server = watched
    started = time.monotonic()
    shutil.copy(PHOTO, lib / "new giraffe.webp")
    assert eventually(lambda: "new giraffe.webp" in indexed(index))
    assert time.monotonic() - started < 15
    (lib / "sub").mkdir()
    (lib / "new giraffe.webp").rename(lib / "sub" / "tall.webp")
    assert eventually(lambda: {"tall.webp"} <= indexed(index) - {"new giraffe.webp"})
    # Usually "1 moved" (its vectors kept); into a folder made a moment before, inotify may
    # report the two halves apart, and the file is embedded again: the result is the same.
    assert server.logged("1 moved") or server.logged("1 added", times=2)
    (lib / "sub" / "tall.webp").unlink()
    (lib / "text" / "hand_tools.md").unlink()
    assert eventually(lambda: not {"tall.webp", "hand_tools.md"} & indexed(index))
    assert indexed(index) == {"hammer1.webp"}
    assert invoke("doctor", "--index", index).code == 0


def test_a_download_in_progress_is_indexed_once_under_its_final_name(
    watched: tuple[Path, Path, Served],
) -> None:
    lib, index, _ = watched
    part = lib / "photo.jpg.part"
    data = (SAMPLE / "images" / "tools" / "hammer5.jpg").read_bytes()
    with part.open("wb") as fh:
        fh.write(data[: len(data) // 2])
        fh.flush()
        time.sleep(1.5)  # several debounce periods with a half-written file
        fh.write(data[len(data) // 2 :])
    time.sleep(1.0)
    assert "photo.jpg.part" not in indexed(index) and "photo.jpg" not in indexed(index)
    part.rename(lib / "photo.jpg")
    assert eventually(lambda: "photo.jpg" in indexed(index))
    assert invoke("info", "--index", index, "--json").code == 0
    failed = invoke("info", "--index", index, "--failed", "--json")
    assert b"photo.jpg" not in failed.out


def test_a_flood_of_files_is_indexed_in_a_few_commits(watched: tuple[Path, Path, Served]) -> None:
    lib, index, _ = watched
    before = generation(index)
    flood = lib / "flood"
    flood.mkdir()
    for i in range(300):
        (flood / f"note{i:03d}.txt").write_text(f"Memo {i} about crate {i % 7} in aisle {i}.\n")
    assert eventually(lambda: len(indexed(index)) == 302, timeout=120)
    commits = generation(index) - before
    assert 1 <= commits <= 10, commits  # batches, not one commit per file


def test_a_root_without_events_is_rescanned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A root on a network file system gives no events: the watcher rescans it. The file
    system type is the one thing faked (the test machine has no NFS mount)."""
    from mmsearch_cli.config import load_settings
    from mmsearch_cli.serve.server import ServeOptions

    lib = copy_tree(["text/hand_tools.md"], tmp_path / "lib")
    index = tmp_path / "index"
    assert invoke("index", lib, "--index", index, "-q").code == 0
    monkeypatch.setattr(watch, "filesystem_of", lambda path: "nfs4")
    notes: list[str] = []
    watcher = watch.Watcher(load_settings(index_dir=index), ServeOptions(rescan=1.0), notes.append)
    watcher.start()
    try:
        assert watcher.describe()["roots"] == {str(lib): "rescan (nfs4)"}
        assert any("sends no change events" in n for n in notes)
        copy_tree(["text/owls.txt"], lib)
        assert eventually(lambda: "owls.txt" in indexed(index))
    finally:
        watcher.stop()


def test_killing_the_server_mid_batch_loses_nothing_for_good(tmp_path: Path) -> None:
    lib = copy_tree(["text/hand_tools.md"], tmp_path / "lib")
    index = tmp_path / "index"
    assert invoke("index", lib, "--index", index, "-q").code == 0
    server = Served(index, tmp_path / "a.log", "--watch", "--debounce", "0.2")
    texts = sorted((SAMPLE / "text").iterdir())
    for src in texts:
        shutil.copy(src, lib / src.name)
    journal = index / "journal"
    assert eventually(lambda: any(journal.iterdir()) or server.logged("added", timeout=0),
                      timeout=60)  # fmt: skip
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(timeout=30)
    assert invoke("doctor", "--index", index).code == 0  # the last commit is whole
    again = Served(index, tmp_path / "b.log", "--watch")  # its catch-up finishes the job
    try:
        assert eventually(lambda: indexed(index) == {p.name for p in texts}, timeout=120)
    finally:
        again.stop()
    assert invoke("doctor", "--index", index).code == 0


def test_collapse_keeps_the_outermost_paths() -> None:
    assert watch.collapse(["/a/b/c.jpg", "/a/b", "/a/bc.jpg", "/a/b", "/d"]) == [
        "/a/b", "/a/bc.jpg", "/d",
    ]  # fmt: skip

"""An unmounted drive must not empty the index (issue 20, defect 1): a root that is missing,
empty, on another device, or about to lose most of its files keeps them; exit 6 says so."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.hardening.bounded import invoke


def notes(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"note{i:02d}.txt").write_text(f"Note {i}: the tide tables for harbour {i}.\n")
    return folder


def indexed_count(index: Path) -> int:
    res = invoke("info", "--index", index, "--json")
    assert res.code == 0, res.err
    return int(json.loads(res.out)["files"])


def run(root: Path, index: Path, *extra: str) -> tuple[int, dict, str]:
    res = invoke("index", root, "--index", index, "--json", *extra)
    return res.code, json.loads(res.out) if res.out else {}, res.err


def test_an_emptied_mount_point_keeps_its_files(tmp_path: Path) -> None:
    drive, index = notes(tmp_path / "drive", 6), tmp_path / "index"
    assert run(drive, index)[0] == 0
    shutil.move(drive, tmp_path / "elsewhere")  # the drive is unmounted...
    drive.mkdir()  # ...and its empty mount point stays
    code, summary, err = run(drive, index)
    assert code == 6
    assert summary["removed"] == 0 and summary["held_back"][0]["root"] == str(drive)
    assert "is empty" in err and "--force-prune" in err and "Traceback" not in err
    assert indexed_count(index) == 6
    code, summary, _ = run(drive, index, "--force-prune")  # on purpose: pruned
    assert code == 0 and summary["removed"] == 6 and indexed_count(index) == 0


def test_a_missing_root_keeps_its_files(tmp_path: Path) -> None:
    drive, index = notes(tmp_path / "drive", 4), tmp_path / "index"
    assert run(drive, index)[0] == 0
    shutil.move(drive, tmp_path / "gone")
    res = invoke("index", drive, "--index", index)  # a usage error: nothing is touched
    assert res.code == 2 and "no such file or folder" in res.err
    assert indexed_count(index) == 4
    from mmsearch_cli import api  # the watcher's path takes missing paths: guarded too

    summary = api.update([drive], index_dir=index)
    assert summary.removed == 0 and "is missing" in summary.held_back[str(drive)]
    assert indexed_count(index) == 4
    assert invoke("forget", drive, "--index", index).code == 0  # the way to drop them
    assert indexed_count(index) == 0


def test_a_root_on_another_device_keeps_its_files(tmp_path: Path) -> None:
    """The root is a symlink that first leads to a tmpfs folder, then to a folder on the
    test's own file system: the same path on another device, as after an unmount."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on its own file system")
    on_tmpfs = notes(shm / f"mms-guard-{os.getpid()}", 5)
    try:
        root, index = tmp_path / "photos", tmp_path / "index"
        root.symlink_to(on_tmpfs)
        assert run(root, index)[0] == 0
        root.unlink()
        local = tmp_path / "local"
        local.mkdir()
        (local / "other.txt").write_text("A note on the local disk.\n")
        root.symlink_to(local, target_is_directory=True)
        code, summary, err = run(root, index)
        assert code == 6 and summary["removed"] == 0 and "another device" in err
        assert indexed_count(index) == 5 + 1
    finally:
        shutil.rmtree(on_tmpfs)


def test_a_run_may_not_drop_most_of_a_root_at_once(tmp_path: Path) -> None:
    root, index = notes(tmp_path / "notes", 30), tmp_path / "index"
    assert run(root, index)[0] == 0
    for path in sorted(root.iterdir())[:20]:
        path.unlink()
    code, summary, err = run(root, index)
    assert code == 6 and summary["removed"] == 0
    assert "would lose 20 of its 30" in err
    code, summary, _ = run(root, index, "--max-delete", "80")
    assert code == 0 and summary["removed"] == 20 and indexed_count(index) == 10


def test_ordinary_deletions_are_pruned(tmp_path: Path) -> None:
    root, index = notes(tmp_path / "notes", 30), tmp_path / "index"
    assert run(root, index)[0] == 0
    for path in sorted(root.iterdir())[:5]:
        path.unlink()
    code, summary, _ = run(root, index)
    assert code == 0 and summary["removed"] == 5 and summary["held_back"] == []
    small, small_index = notes(tmp_path / "few", 4), tmp_path / "small-index"
    assert run(small, small_index)[0] == 0
    for path in sorted(small.iterdir())[:3]:
        path.unlink()  # 3 of 4: a small root is not held to the share
    code, summary, _ = run(small, small_index)
    assert code == 0 and summary["removed"] == 3

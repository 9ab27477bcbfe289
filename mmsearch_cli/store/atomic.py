"""Crash-safe file replacement: write a temp file beside the target, fsync, rename.

``os.replace`` is atomic on POSIX, so a reader sees either the old or the new file,
never a half-written one; the directory fsync makes the rename itself durable.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from mmsearch_cli.errors import IndexWriteError


def write_failed(target: Path, exc: OSError) -> IndexWriteError:
    reason = exc.strerror or str(exc)
    return IndexWriteError(
        f"cannot write {target}: {reason}",
        hint="the previous index is intact; free space or fix permissions and re-run",
    )


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _mkstemp(target: Path) -> tuple[int, str]:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        return tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise write_failed(target, exc) from None


@contextlib.contextmanager
def atomic_writer(target: Path) -> Iterator[BinaryIO]:
    """Yield a binary file; on clean exit it replaces ``target`` atomically."""
    fd, tmp = _mkstemp(target)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        fsync_dir(target.parent)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise write_failed(target, exc) from None
        raise


def atomic_write_bytes(target: Path, data: bytes) -> None:
    with atomic_writer(target) as fh:
        fh.write(data)


def atomic_save(target: Path, save: Callable[[str], None]) -> None:
    """For libraries that write by path (hnswlib): save to a temp path, fsync, rename."""
    fd, tmp = _mkstemp(target)
    os.close(fd)
    try:
        save(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
        fsync_dir(target.parent)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise write_failed(target, exc) from None
        raise

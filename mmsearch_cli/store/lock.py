"""One writer per index: an advisory ``flock`` on ``<index>/lock``.

The kernel drops a flock when its process dies, so a SIGKILLed ``mms index`` can never
leave a stale lock behind; the pid written into the file is only for the message.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from mmsearch_cli.errors import LockBusyError


@contextlib.contextmanager
def index_lock(index_dir: Path, *, wait: float = 0.0) -> Iterator[None]:
    """Hold the writer lock. ``wait`` seconds to wait for it (0: fail at once, <0: forever)."""
    index_dir.mkdir(parents=True, exist_ok=True)
    path = index_dir / "lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = None if wait < 0 else time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    holder = _read_holder(path)
                    raise LockBusyError(
                        f"index {index_dir} is being updated by another mms process{holder}",
                        hint="retry later, or pass --wait SECONDS",
                    ) from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # closing releases the flock


def _read_holder(path: Path) -> str:
    try:
        pid = path.read_text().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""

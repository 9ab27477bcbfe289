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
from mmsearch_cli.store.atomic import write_failed


@contextlib.contextmanager
def index_lock(index_dir: Path, *, wait: float = 0.0) -> Iterator[None]:
    """Hold the writer lock. ``wait`` seconds to wait for it (0: fail at once, <0: forever)."""
    path = index_dir / "lock"
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise write_failed(path, exc) from None
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
        with contextlib.suppress(OSError):  # the pid is only for messages; a full disk
            os.ftruncate(fd, 0)  # must not stop us here
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


def lock_holder(index_dir: Path) -> str | None:
    """None if no process holds the writer lock, else a note naming the holder.

    Reads /proc/locks, so a check never takes the lock (a writer starting at that
    instant would see it busy); elsewhere, probes with a flock released at once."""
    path = index_dir / "lock"
    try:
        st = os.stat(path)
        table = Path("/proc/locks").read_text()
    except FileNotFoundError:
        return None if not path.exists() else _probe(path)
    except OSError:
        return _probe(path)
    key = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    me = str(os.getpid())
    for line in table.splitlines():
        parts = line.split()
        # Our own lock (doctor --repair holds it while it checks) does not count.
        if len(parts) >= 6 and parts[1:2] == ["FLOCK"] and parts[5] == key and parts[4] != me:
            return f"held by another mms process (pid {parts[4]})"
    return None


def _probe(path: Path) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return f"held by another mms process{_read_holder(path)}"
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)

"""``mms serve --watch``: keep the index fresh as files are created, changed, moved or deleted.

watchdog delivers the events (inotify, FSEvents, kqueue). A batch is taken once no
event came for ``debounce`` seconds (or, in a steady stream of events, once the oldest
waited ``MAX_WAIT`` debounces); it holds the paths quiet that long whose size and mtime
held still, so a photo being copied or a download in progress is read once, whole, and
both halves of a move land in one batch (the move keeps its vectors). Ready paths go in
batches through ``api.update``: the same index lock, journal and crash safety as
``mms index``, one commit per batch however many events (an untarred tree is a handful
of commits, not one per file).

At start, and every ``rescan`` seconds for a root that gives no events (a network file
system, or past the inotify watch limit), the whole root is brought up to date: that
also catches what changed while no server was running, or what a killed batch lost.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from mmsearch_cli import api
from mmsearch_cli.config import Settings
from mmsearch_cli.errors import LockBusyError, MmsError
from mmsearch_cli.items import file_signature

# Editors' and browsers' files in progress: never indexed under these names; the final
# name arrives as a move (or create) of its own once the writer is done.
IN_PROGRESS = ("*.part", "*.crdownload", "*.download", "*.partial", "*.tmp", "*~", "*.swp",
               "*.swx", ".#*", "#*#", "*.kate-swp", ".goutputstream-*")  # fmt: skip
# File systems whose changes made on other machines raise no local events.
NO_EVENTS = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "fuse.sshfs", "sshfs", "9p", "afs", "ceph",
    "fuse.rclone", "davfs", "fuse.davfs2", "glusterfs", "fuse.glusterfs", "lustre",
})  # fmt: skip
BATCH_MAX = 5000  # paths per commit; more wait for the next round
MAX_WAIT = 8  # debounces: in a steady stream of events, a batch is taken at least this often
LOCK_WAIT = 60.0  # a cron `mms index` holding the lock is waited for, then retried


class Watcher:
    def __init__(self, settings: Settings, options: Any, note: Callable[[str], None]) -> None:
        self.settings = settings
        self.debounce = float(options.debounce)
        self.rescan_every = float(options.rescan)
        self.note = note
        self.index_dir = os.path.realpath(settings.index_dir)
        self.roots: list[str] = []
        self.modes: dict[str, str] = {}  # root -> "events" | "rescan (why)"
        self.pending: dict[str, tuple[float, tuple[int, int] | None]] = {}
        self.last_event = 0.0
        self.cond = threading.Condition()
        self.stopping = False
        self.batches = 0
        self.busy = False  # a batch is being indexed
        self.last_batch: dict[str, Any] = {}
        self._observer: Any = None
        self._thread: threading.Thread | None = None
        self._last_rescan = time.monotonic()

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> None:
        from mmsearch_cli.store.manifest import read_manifest

        self.roots = [str(r) for r in read_manifest(self.settings.index_dir).get("roots", [])]
        self._observer = Observer()
        self._observer.start()
        handler = _Handler(self)
        for root in self.roots:
            self.modes[root] = self._schedule(root, handler)
        self._thread = threading.Thread(target=self._loop, name="mms-watch", daemon=True)
        self._thread.start()

    def _schedule(self, root: str, handler: FileSystemEventHandler) -> str:
        fstype = filesystem_of(root)
        if fstype in NO_EVENTS:
            self.note(f"watch: {root} is on {fstype}, which sends no change events; "
                      f"rescanning it every {self.rescan_every:.0f} s")  # fmt: skip
            return f"rescan ({fstype})"
        if not os.path.isdir(root):
            return "rescan (not a folder)"
        try:
            self._observer.schedule(handler, root, recursive=True)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EMFILE):
                self.note(f"watch: the inotify watch limit is reached under {root}; rescanning "
                          f"it every {self.rescan_every:.0f} s (raise fs.inotify."
                          "max_user_watches: README, \"Watching\")")  # fmt: skip
                return "rescan (inotify limit)"
            self.note(f"watch: cannot watch {root} ({exc.strerror}); rescanning it instead")
            return "rescan (cannot watch)"
        return "events"

    def stop(self) -> None:
        """Stop watching; a batch being indexed is finished first (nothing half-written)."""
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        if self._observer is not None:
            with contextlib.suppress(Exception):
                self._observer.stop()
                self._observer.join(timeout=5)
        if self._thread is not None:
            self._thread.join()

    def describe(self) -> dict[str, Any]:
        with self.cond:
            pending = len(self.pending)
        return {"roots": dict(self.modes), "pending": pending, "busy": self.busy,
                "batches": self.batches, "last_batch": self.last_batch}  # fmt: skip

    # -- events --------------------------------------------------------------------------

    def saw(self, path: str) -> None:
        """Note an event on ``path`` (called on watchdog's thread)."""
        if self._ignored(path):
            return
        if path.lower().endswith(".xmp"):  # a photo's sidecar: its folder's scan re-reads it
            path = os.path.dirname(path)
        with self.cond:
            self.last_event = time.monotonic()
            self.pending[path] = (self.last_event, file_signature(path))
            self.cond.notify_all()

    def _ignored(self, path: str) -> bool:
        if path == self.index_dir or path.startswith(self.index_dir + os.sep):
            return True  # our own writes
        name = os.path.basename(path)
        return name.startswith(".") or any(fnmatch.fnmatch(name, p) for p in IN_PROGRESS)

    def _ready(self) -> list[str]:
        """Paths quiet for ``debounce`` seconds whose size and mtime held still (caller
        holds ``cond``); a path still growing is re-armed."""
        now = time.monotonic()
        oldest = min((seen for seen, _ in self.pending.values()), default=now)
        quiet = now - self.last_event >= self.debounce
        if not quiet and now - oldest < MAX_WAIT * self.debounce:
            return []
        ready = []
        for path, (seen, sig) in list(self.pending.items()):
            if now - seen < self.debounce:
                continue
            current = file_signature(path)
            if current != sig:
                self.pending[path] = (now, current)  # still being written
                continue
            ready.append(path)
            if len(ready) >= BATCH_MAX:
                break
        for path in ready:
            del self.pending[path]
        return collapse(ready)

    # -- the batch thread ----------------------------------------------------------------

    def _loop(self) -> None:
        self._run_batch(list(self.roots), "catch-up")
        while True:
            with self.cond:
                if self.stopping:
                    return
                self.cond.wait(timeout=min(0.25, self.debounce / 2) if self.pending else 1.0)
                if self.stopping:
                    return
                batch = self._ready()
            if time.monotonic() - self._last_rescan >= self.rescan_every:
                self._last_rescan = time.monotonic()
                batch += [r for r in self.roots if self.modes.get(r) != "events"]
            if batch:
                self._run_batch(batch, "changes")

    def _run_batch(self, paths: list[str], why: str) -> None:
        started = time.monotonic()
        self.busy = True
        try:
            summary = api.update(paths, settings=self.settings, wait=LOCK_WAIT)
        except LockBusyError:
            self.note(f"watch: the index is busy; {len(paths)} path(s) retried later")
            with self.cond:
                for path in paths:
                    self.pending.setdefault(path, (time.monotonic(), file_signature(path)))
            return
        except MmsError as exc:
            self.note(f"watch: batch of {len(paths)} path(s) failed: {exc}")
            return
        finally:
            self.busy = False
        self.batches += 1
        done = summary.to_dict()
        self.last_batch = {
            "paths": len(paths), "seconds": round(time.monotonic() - started, 3),
            "at": time.time(),
            **{k: done[k] for k in ("added", "updated", "removed", "moved", "failed")},
        }  # fmt: skip
        changed = sum(done[k] for k in ("added", "updated", "removed", "moved"))
        if changed or summary.failed:
            self.note(
                f"watch: {why}: {done['added']} added, {done['updated']} updated, "
                f"{done['removed']} removed, {done['moved']} moved, {done['failed']} failed "
                f"({len(paths)} paths, {self.last_batch['seconds']:.1f} s)"
            )


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        if event.is_directory and event.event_type == "modified":
            return  # a folder's mtime moves with every file in it: the file events say it
        self.watcher.saw(os.fsdecode(event.src_path))
        if getattr(event, "dest_path", ""):
            self.watcher.saw(os.fsdecode(event.dest_path))


def collapse(paths: list[str]) -> list[str]:
    """Drop paths under another path of the list (the folder's scan covers them)."""
    out: list[str] = []
    for path in sorted(set(paths)):
        if out and (path == out[-1] or path.startswith(out[-1].rstrip(os.sep) + os.sep)):
            continue
        out.append(path)
    return out


def filesystem_of(path: str) -> str:
    """The type of the file system holding ``path`` (Linux ``/proc/mounts``), or ""."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return ""
    real = os.path.realpath(path)
    best, fstype = "", ""
    for line in mounts:
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1].replace("\\040", " ")
        if (real == point or real.startswith(point.rstrip("/") + "/")) and len(point) > len(best):
            best, fstype = point, parts[2]
    return fstype

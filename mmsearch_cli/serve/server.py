"""``mms serve``: one index, its models and its vectors kept warm, answering on a socket.

- One server per index: its pid file is ``flock``-ed (a second server gets exit 4; a
  killed one leaves a socket that the next server replaces).
- The socket is 0600 in a 0700 folder, and on Linux each peer's uid is checked
  (``SO_PEERCRED``), so no other user can query it.
- Requests are answered one at a time through ``api`` (the in-process path), so a
  served result is the in-process result. Connections are accepted on threads, so a
  queued client still hears "accepted" at once.
- A commit (``mms index``, or the watcher) is noticed by its manifest generation, between
  requests and every ``REFRESH_S``; the new snapshot is opened and swapped in, and the
  old one is closed (no request is ever using it then: they hold the same lock).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import resource
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from mmsearch_cli import api
from mmsearch_cli.config import Settings
from mmsearch_cli.errors import ExitStatus, LockBusyError, MmsError, UsageError, first_line
from mmsearch_cli.serve.protocol import (
    PROTOCOL,
    decode,
    encode,
    error_reply,
    pid_path,
    read_line,
    socket_path,
)

REFRESH_S = 2.0  # how often an idle server looks for a new commit
QUERY_ARGS = frozenset({
    "text", "media", "k", "rerank", "reranker", "candidates", "types", "path_glob", "space",
    "segments", "after", "before", "min_size", "max_size", "people", "near",
    "plus", "minus", "plus_media", "minus_media",  # query arithmetic: words, absolute paths
    "min_score",  # "auto" or a score (api.cut_rows); the CLI cuts the rows itself
})  # fmt: skip


@dataclass
class ServeOptions:
    idle_exit: float | None = None  # seconds without a request, then exit 0
    log: Path | None = None  # one line per request; None: stderr
    quiet: bool = False  # no per-request lines
    watch: bool = False  # keep the index fresh as files change (``serve.watch``)
    debounce: float = 1.0  # watcher: seconds a path must be quiet before it is indexed
    rescan: float = 300.0  # watcher: seconds between rescans of roots without events


class Server:
    def __init__(self, settings: Settings, options: ServeOptions) -> None:
        self.settings = settings
        self.options = options
        self.index_dir = settings.index_dir
        self.sock_path = socket_path(self.index_dir)
        self.started = time.time()
        self.last_request = time.monotonic()
        self.served = 0
        self.lock = threading.Lock()  # one request at a time against the snapshot
        self.stopping = threading.Event()
        self.reader: Any = None
        self.watcher: Any = None
        self._log: IO[str] = sys.stderr
        self._server: socketserver.ThreadingUnixStreamServer | None = None

    # -- life cycle ----------------------------------------------------------------------

    def run(self) -> int:
        """Serve until stopped (``mms serve stop``, SIGTERM/SIGINT, or idle). Exit status."""
        from mmsearch_cli.store.index import IndexReader
        from mmsearch_cli.store.manifest import read_manifest

        read_manifest(self.index_dir)  # no index: say so now, not per request
        pid_fd = self._claim()
        try:
            if self.options.log is not None:
                self._log = open(self.options.log, "a", buffering=1, encoding="utf-8")  # noqa: SIM115
            self.reader = IndexReader.open(self.index_dir)
            self._warm()
            self._server = self._bind()
            self._note(
                f"serving {self.index_dir} on {self.sock_path} (pid {os.getpid()}, "
                f"generation {self.reader.generation})"
            )
            if self.options.watch:
                from mmsearch_cli.serve.watch import Watcher

                self.watcher = Watcher(self.settings, self.options, self._note)
                self.watcher.start()
            self._install_signals()
            threading.Thread(target=self._housekeeping, daemon=True).start()
            self._server.serve_forever(poll_interval=0.2)
            return ExitStatus.OK
        finally:
            self._shutdown(pid_fd)

    def _claim(self) -> int:
        """Hold the pid file's flock (exit 4 if another server has it); clear a stale socket."""
        folder = self.sock_path.parent
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = folder.stat()
        if folder != self.index_dir and (st.st_uid != os.getuid() or st.st_mode & 0o022):
            # a shared folder (/tmp/mms-<uid>) someone else made or can write to
            raise UsageError(f"the socket folder {folder} is not private to this user",
                             hint="remove it, or set XDG_RUNTIME_DIR")  # fmt: skip
        pid_file = pid_path(self.sock_path)
        fd = os.open(pid_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            raise LockBusyError(
                f"a server for {self.index_dir} is already running"
                + (f" (pid {holder})" if holder.isdigit() else ""),
                hint="`mms serve status` shows it; `mms serve stop` stops it",
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        with contextlib.suppress(FileNotFoundError):
            self.sock_path.unlink()  # a killed server's socket: nobody answers on it
        return fd

    def _bind(self) -> socketserver.ThreadingUnixStreamServer:
        handler = _handler_for(self)
        old = os.umask(0o177)  # the socket is born 0600: no window where others can connect
        try:
            server = socketserver.ThreadingUnixStreamServer(os.fspath(self.sock_path), handler)
        finally:
            os.umask(old)
        server.daemon_threads = True
        os.chmod(self.sock_path, 0o600)
        return server

    def _warm(self) -> None:
        """Load the models and map the vectors now, so the first client is not the one
        that pays for them."""
        self.reader.warm()
        with contextlib.suppress(MmsError):
            api.query_rows("warm up", settings=self.settings, k=1, reader=self.reader)

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # embedded in a program that owns its signals
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, lambda *_: self.stop())

    def stop(self) -> None:
        if not self.stopping.is_set():
            self.stopping.set()
            if self._server is not None:
                threading.Thread(target=self._server.shutdown, daemon=True).start()

    def _shutdown(self, pid_fd: int) -> None:
        if self.watcher is not None:
            self.watcher.stop()  # finishes the batch in flight: nothing half-indexed
        if self._server is not None:
            self._server.server_close()
            with contextlib.suppress(FileNotFoundError):
                self.sock_path.unlink()
        if self.reader is not None:
            self.reader.close()
        with contextlib.suppress(OSError):
            pid_path(self.sock_path).unlink()
        os.close(pid_fd)
        self._note(f"stopped after {self.served} requests")
        if self._log is not sys.stderr:
            self._log.close()

    def _housekeeping(self) -> None:
        """Swap in new commits while idle (an old snapshot pins the database's WAL), and
        exit after ``idle_exit`` seconds without a request."""
        while not self.stopping.wait(REFRESH_S):
            with self.lock:
                self._refresh()
            idle = time.monotonic() - self.last_request
            if self.options.idle_exit and idle >= self.options.idle_exit:
                self._note(f"idle for {idle:.0f} s, exiting")
                self.stop()

    def _refresh(self) -> None:
        """Move to the newest snapshot if a commit happened (caller holds ``lock``)."""
        from mmsearch_cli.store.index import IndexReader
        from mmsearch_cli.store.manifest import read_manifest

        try:
            generation = int(read_manifest(self.index_dir).get("generation", 0))
        except (MmsError, ValueError, TypeError):
            return  # mid-repair or gone: keep answering from the snapshot we have
        if generation == self.reader.generation:
            return
        fresh = IndexReader.open(self.index_dir)
        fresh.warm()
        old, self.reader = self.reader, fresh
        old.close()
        self._note(f"now at generation {fresh.generation}")

    # -- requests ------------------------------------------------------------------------

    def handle(self, op: str, args: dict[str, Any]) -> Any:
        """The result of one request; raises MmsError for the client to re-raise."""
        if op == "status":
            return self.status()
        if op == "stop":
            self.stop()
            return {"stopping": True, "pid": os.getpid()}
        with self.lock:
            self._refresh()
            if op == "query":
                return self._query(args)
            if op == "rerank":
                return api.rerank_rows(
                    str(args["text"]), args["rows"], settings=self.settings, k=args.get("k"),
                    reranker=args.get("reranker"), alpha=args.get("alpha"),
                )  # fmt: skip
            if op == "eval":
                return self._eval(args)
        raise UsageError(f"unknown request '{op}'")

    def _query(self, args: dict[str, Any]) -> Any:
        unknown = set(args) - QUERY_ARGS
        if unknown:
            raise UsageError(f"unknown query field(s): {', '.join(sorted(unknown))}")
        opts = dict(args)
        for key in ("after", "before"):
            if opts.get(key):
                opts[key] = datetime.fromisoformat(opts[key])
        if opts.get("types") is not None:
            opts["types"] = frozenset(opts["types"])
        text, media = opts.pop("text", None), opts.pop("media", None)
        return api.query_rows(text, media=media, settings=self.settings, reader=self.reader,
                              **opts)  # fmt: skip

    def _eval(self, args: dict[str, Any]) -> Any:
        result = api.evaluate(
            args["queries"], settings=self.settings, root=args.get("root"), k=args.get("k", 10),
            first_stage=args.get("first_stage", True), rerank=args.get("rerank", False),
            reranker=args.get("reranker"), alpha=args.get("alpha"), space=args.get("space"),
            per_query=bool(args.get("per_query", True)), reader=self.reader,
        )  # fmt: skip
        return result.wire()

    def status(self) -> dict[str, Any]:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        return {
            "pid": os.getpid(),
            "index": os.fspath(self.index_dir),
            "socket": os.fspath(self.sock_path),
            "generation": self.reader.generation if self.reader is not None else None,
            "started": self.started,
            "uptime_s": round(time.time() - self.started, 1),
            "requests": self.served,
            "peak_rss_mib": round(rss / 1024, 1),
            "watching": self.watcher.describe() if self.watcher is not None else None,
            "protocol": PROTOCOL,
        }

    def _note(self, text: str) -> None:
        if not self.options.quiet or text.startswith(("serving", "stopped")):
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
            with contextlib.suppress(OSError, ValueError):
                self._log.write(f"{stamp} mms serve: {text}\n")
                self._log.flush()


def _handler_for(server: Server) -> type[socketserver.BaseRequestHandler]:
    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            conn: socket.socket = self.request
            conn.settimeout(30.0)  # a client that connects and says nothing is dropped
            started = time.perf_counter()
            if not _same_user(conn):
                with contextlib.suppress(OSError):
                    conn.sendall(encode({"v": PROTOCOL, "accepted": False, "error": "uid"}))
                return
            op, summary = "?", ""
            try:
                request = decode(read_line(conn, bytearray()) or b"null")
                if not isinstance(request, dict) or request.get("v") != PROTOCOL:
                    conn.sendall(encode({"v": PROTOCOL, "accepted": False, "error": "protocol"}))
                    return
                op = str(request.get("op"))
                args = request.get("args") or {}
                if not isinstance(args, dict):
                    raise UsageError("request args must be an object")
                conn.sendall(encode({"v": PROTOCOL, "accepted": True}))
                server.last_request = time.monotonic()
                result = server.handle(op, args)
                reply: dict[str, Any] = {"ok": True, "result": result}
                summary = _summary(op, args, result)
            except MmsError as exc:
                reply, summary = error_reply(exc), f"error: {exc}"
            except (ValueError, KeyError, TypeError) as exc:  # malformed: answer, keep serving
                reply = error_reply(UsageError(f"malformed request: {first_line(exc)}"))
                summary = f"malformed: {first_line(exc)}"
            except OSError:
                return  # the client went away
            except Exception as exc:  # a bug answering one request must not end the server
                reply = {"ok": False, "error": {"status": 1, "message":
                         f"internal error: {type(exc).__name__}: {first_line(exc)}"}}  # fmt: skip
                summary = f"internal error: {type(exc).__name__}: {first_line(exc)}"
            finally:
                server.last_request = time.monotonic()
            with contextlib.suppress(OSError):
                conn.sendall(encode(reply))
            server.served += 1
            ms = 1000 * (time.perf_counter() - started)
            server._note(f"{op} {summary} {ms:.0f} ms")

    return Handler


def _same_user(conn: socket.socket) -> bool:
    """The peer runs as our uid (Linux ``SO_PEERCRED``; elsewhere the 0600 socket in a
    0700 folder is the guard)."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return True
    try:
        raw = conn.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    except OSError:
        return False
    _, uid, _ = struct.unpack("3i", raw)
    return bool(uid == os.getuid())


def _summary(op: str, args: dict[str, Any], result: Any) -> str:
    """The log line's middle: what was asked and how much came back."""
    if op == "query":
        asked = args.get("text") or args.get("media") or ""
        return f"{str(asked)[:60]!r} k={args.get('k', 10)} -> {len(result)} rows"
    if op == "rerank":
        return f"{str(args.get('text', ''))[:60]!r} {len(args.get('rows', []))} rows"
    if op == "eval":
        return f"{args.get('queries')}"
    return ""

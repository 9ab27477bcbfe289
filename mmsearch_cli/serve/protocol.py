"""The wire between ``mms`` and ``mms serve``: where the socket lives and what is said on it.

One request per connection, newline-delimited JSON (``json`` escapes a path's surrogate
bytes, so any path survives the trip)::

    client → {"v": 1, "op": "query", "args": {...}}
    server → {"v": 1, "accepted": true}            at once, before any work
    server → {"ok": true, "result": ...}  or  {"ok": false, "error": {"status": 2, ...}}

The early "accepted" line lets a client tell a live server from a hung one within a
short timeout, whatever the query costs. A server of another protocol version answers
``accepted: false`` and the client falls back to answering in-process.

Standard library only: the client side of every command imports this and nothing heavy.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from pathlib import Path
from typing import Any

from mmsearch_cli.errors import ExitStatus, MmsError

PROTOCOL = 1
MAX_LINE = 64 << 20  # a rerank request carries its rows; anything bigger is not ours
SOCKET_NAME_MAX = 100  # sun_path holds 108 bytes on Linux, 104 on macOS


def socket_path(index_dir: Path) -> Path:
    """``$XDG_RUNTIME_DIR/mms/<hash of the index's real path>.sock``; without a runtime
    dir, ``<index>/serve.sock``; if that path is too long for a Unix socket, a private
    folder in the temporary directory."""
    real = os.path.realpath(index_dir)
    digest = hashlib.sha1(os.fsencode(real)).hexdigest()[:16]
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    candidates = []
    if runtime and os.path.isdir(runtime):
        candidates.append(Path(runtime) / "mms" / f"{digest}.sock")
    candidates.append(Path(real) / "serve.sock")
    tmp = os.environ.get("TMPDIR") or "/tmp"  # not tempfile: 3 ms of every client
    candidates.append(Path(tmp) / f"mms-{os.getuid()}" / f"{digest}.sock")
    for path in candidates:
        if len(os.fsencode(path)) <= SOCKET_NAME_MAX:
            return path
    return candidates[-1]


def pid_path(sock: Path) -> Path:
    """The server's pid file: ``flock``-ed while it runs, so a second server sees it busy
    and a killed one (the kernel drops its lock) leaves nothing that blocks a new one."""
    return sock.with_name(sock.name + ".pid")


def encode(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode() + b"\n"


def decode(line: bytes) -> Any:
    return json.loads(line.decode("utf-8", "surrogateescape"))


def read_line(sock: socket.socket, buffer: bytearray) -> bytes:
    """One line from ``sock`` (``buffer`` keeps what came after it); b"" when the peer
    closed first. Raises ValueError past ``MAX_LINE``."""
    while True:
        end = buffer.find(b"\n")
        if end >= 0:
            line = bytes(buffer[:end])
            del buffer[: end + 1]
            return line
        if len(buffer) > MAX_LINE:
            raise ValueError("request too large")
        chunk = sock.recv(1 << 16)
        if not chunk:
            return b""
        buffer += chunk


def error_reply(exc: MmsError) -> dict[str, Any]:
    return {
        "ok": False,
        "error": {"status": int(exc.status), "message": exc.message, "hint": exc.hint},
    }


class RemoteError(MmsError):
    """An error the server met while answering: the client re-raises it with the server's
    exit status, so both paths fail the same way."""

    def __init__(self, status: int, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        try:
            self.status = ExitStatus(status)
        except ValueError:
            self.status = ExitStatus.ERROR

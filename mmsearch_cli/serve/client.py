"""Ask a running ``mms serve`` to answer; ``None`` means "answer in-process instead".

Imports the standard library only (no numpy, onnxruntime or hnswlib), so a command
that a warm server answers costs an interpreter, the CLI and one round trip.
"""

from __future__ import annotations

import contextlib
import os
import socket
from pathlib import Path
from typing import Any

from mmsearch_cli.serve.protocol import (
    PROTOCOL,
    RemoteError,
    decode,
    encode,
    read_line,
    socket_path,
)

CONNECT_TIMEOUT = 0.5  # to connect and hear "accepted": a hung server is skipped quickly
REPLY_TIMEOUT = 900.0  # the answer itself (a first rerank loads a model)


def disabled() -> bool:
    """``MMS_NO_SERVER=1`` (or ``--no-server``, which sets it) forces the in-process path."""
    return os.environ.get("MMS_NO_SERVER", "") not in ("", "0")


def call(
    index_dir: Path, op: str, args: dict[str, Any] | None = None, *,
    connect_timeout: float = CONNECT_TIMEOUT, reply_timeout: float = REPLY_TIMEOUT,
) -> Any | None:  # fmt: skip
    """The server's result for ``op``, or None when there is no server for ``index_dir``,
    it does not answer in time, speaks another protocol, or goes away mid-answer. An
    error the server reports is raised as ``RemoteError`` with its exit status."""
    path = socket_path(index_dir)
    if not path.exists():
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(connect_timeout)
        sock.connect(os.fspath(path))
        sock.sendall(encode({"v": PROTOCOL, "op": op, "args": args or {}}))
        buffer = bytearray()
        hello = decode(read_line(sock, buffer) or b"null")
        if not isinstance(hello, dict) or not hello.get("accepted") or hello.get("v") != PROTOCOL:
            return None
        sock.settimeout(reply_timeout)
        reply = decode(read_line(sock, buffer) or b"null")
    except (OSError, ValueError):  # no server, refused, timed out, garbled: fall back
        return None
    finally:
        with contextlib.suppress(OSError):
            sock.close()
    if not isinstance(reply, dict):
        return None
    if not reply.get("ok"):
        err = reply.get("error") or {}
        raise RemoteError(int(err.get("status", 1)), str(err.get("message", "server error")),
                          err.get("hint"))  # fmt: skip
    return reply.get("result")

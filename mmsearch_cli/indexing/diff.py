"""What changed since the last run: new, changed, unchanged, moved and vanished files.

Unchanged files (same size and mtime) cost one ``stat``. A file that moved (same size
and content hash as one that vanished in the same scan) keeps its vectors. A file that
failed is tried again when it changes (or with ``--retry-failed``); one deferred for
want of a model, codec or library (``embed.failure``) by every run.

Content fingerprints: files up to 1 MiB are hashed whole; larger ones by their size plus
three 256 KiB samples (head, middle, tail). The hash only recognises a file that moved,
never skips re-embedding a file whose size or mtime changed, so a sampled hash cannot
hide an edit.
"""

from __future__ import annotations

import hashlib
import os
import stat
from typing import TYPE_CHECKING, BinaryIO

from mmsearch_cli.errors import MediaError
from mmsearch_cli.indexing.guard import held_back
from mmsearch_cli.indexing.scan import FoundFile, under_roots
from mmsearch_cli.store.index import IndexWriter

if TYPE_CHECKING:
    from mmsearch_cli.indexing.run import IndexOptions, IndexSummary

WHOLE_LIMIT = 1 << 20
SAMPLE = 256 << 10


def open_regular(path: str) -> BinaryIO:
    """Open a file for reading only if it is a regular file: a path that became a FIFO
    (whose open would block forever, holding the index lock) or a device such as
    /dev/zero (endless) since the scan is refused."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise MediaError("not a regular file (a FIFO, device or socket)")
    return os.fdopen(fd, "rb")


def content_hash(path: str, size: int | None = None) -> str:
    """The content fingerprint of the first ``size`` bytes (the size the scan saw: a file
    still growing is not read without bound)."""
    digest = hashlib.blake2b(digest_size=16)
    with open_regular(path) as fh:
        size = os.fstat(fh.fileno()).st_size if size is None else size
        digest.update(size.to_bytes(8, "little"))
        if size <= WHOLE_LIMIT:
            digest.update(fh.read(size))
        else:
            for offset in (0, size // 2 - SAMPLE // 2, size - SAMPLE):
                fh.seek(offset)
                digest.update(fh.read(SAMPLE))
    return digest.hexdigest()


def diff_files(
    writer: IndexWriter,
    files: dict[str, FoundFile],
    roots: list[str],
    opts: IndexOptions,
    summary: IndexSummary,
    full_reembed: bool,
) -> list[tuple[FoundFile, str]]:
    """Decide per file: unchanged, moved, new, changed, or deferred before ("retry").
    Drops vanished files."""
    known = writer.files  # path -> (size, mtime_ns, status, hash)
    todo: list[tuple[FoundFile, str]] = []
    for path, found in files.items():
        rec = known.get(path)
        if rec is None:
            todo.append((found, "added"))
        elif rec[2] == "deferred":
            todo.append((found, "retry"))
        elif (
            full_reembed
            or rec[0] != found.size
            or rec[1] != found.mtime_ns
            or (rec[2] == "failed" and opts.retry_failed)
        ):
            todo.append((found, "updated"))
        else:
            summary.unchanged += 1
    vanished = [
        p for p in known if p not in files and under_roots(p, roots) and not os.path.exists(p)
    ]
    # Moves: a new path with the size and hash of a vanished one keeps its vectors.
    by_key: dict[tuple[int, str], str] = {}
    for p in vanished:
        size, _, status, digest = known[p]
        if digest and status == "ok":
            by_key[(size, digest)] = p
    still_todo = []
    for found, why in todo:
        if why == "added" and by_key:
            try:
                digest = content_hash(found.path, found.size)
            except (OSError, MediaError):
                digest = ""
            old = by_key.pop((found.size, digest), None)
            if old is not None:
                writer.move_file(old, found.path, found.size, found.mtime_ns)
                vanished.remove(old)
                summary.moved += 1
                continue
        still_todo.append((found, why))
    if opts.prune:
        hold = {} if opts.force_prune else held_back(
            [r for r in roots if r in writer.roots], known, files, vanished,
            writer.root_devices, opts.max_delete,
        )  # fmt: skip
        summary.held_back.update(hold)
        for p in vanished:
            if not under_roots(p, list(hold)):
                writer.drop_file(p)
                summary.removed += 1
    return still_todo

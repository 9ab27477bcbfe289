"""Content fingerprints for move detection, cheap on large media.

Files up to 1 MiB are hashed whole; larger ones by their size plus three 256 KiB samples
(head, middle, tail). It is used only to recognise a file that moved (new path, same
size, same hash as a path that vanished in the same scan), never to skip re-embedding
a file whose size or mtime changed, so a sampled hash cannot hide an edit.
"""

from __future__ import annotations

import hashlib
import os

WHOLE_LIMIT = 1 << 20
SAMPLE = 256 << 10


def content_hash(path: str) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        digest.update(size.to_bytes(8, "little"))
        if size <= WHOLE_LIMIT:
            digest.update(fh.read())
        else:
            for offset in (0, size // 2 - SAMPLE // 2, size - SAMPLE):
                fh.seek(offset)
                digest.update(fh.read(SAMPLE))
    return digest.hexdigest()

"""Files the extension does not name: extensionless notes (README, NEWS, TODO) are read as
text when their first bytes are text; everything else is counted as unsupported, by type,
so nothing is skipped silently.

Sniffing reads 8 KB, so its answers are remembered per (size, mtime): an unchanged tree
still costs one ``stat`` per file. A file the index already holds as text is trusted
without a read; binaries found before are remembered in the index's meta.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping

from mmsearch_cli.indexing.scan import FoundFile

SNIFF_BYTES = 8192
NO_EXTENSION = "without extension"


def type_label(path: str) -> str:
    """What a user calls an unsupported file's type: ".xyz", or "without extension"."""
    ext = os.path.splitext(os.path.basename(path))[1].lower()
    return ext or NO_EXTENSION


def looks_like_text(path: str) -> bool:
    """True when the file's first bytes decode as text (charset-normalizer, which also
    knows legacy single-byte and CJK encodings) and hold no NUL byte."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError:
        return False
    if not head.strip() or b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
        return True
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 3:  # the read ended inside a multi-byte character
            return True
    from charset_normalizer import from_bytes

    best = from_bytes(head).best()
    return best is not None and best.chaos < 0.2


def resolve(
    candidates: Mapping[str, FoundFile],
    known: Mapping[str, tuple[int, int, str, str | None]],
    binaries: Mapping[str, list[int]],
) -> tuple[dict[str, FoundFile], dict[str, list[int]]]:
    """The extensionless ``candidates`` that are text (as text files), and the binaries
    among them with their (size, mtime_ns), to remember for the next run."""
    texts: dict[str, FoundFile] = {}
    still_binary: dict[str, list[int]] = {}
    for path, found in candidates.items():
        signature = [found.size, found.mtime_ns]
        rec = known.get(path)
        if rec is not None and (rec[0], rec[1]) == (found.size, found.mtime_ns):
            texts[path] = found  # indexed as text before and unchanged: no read
        elif list(binaries.get(path) or []) == signature:
            still_binary[path] = signature
        elif looks_like_text(path):
            texts[path] = found
        else:
            still_binary[path] = signature
    return texts, still_binary


def count_by_type(paths: list[str]) -> Counter[str]:
    return Counter(type_label(p) for p in paths)

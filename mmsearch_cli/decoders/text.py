"""Text documents: bounded reads, encoding fallback, and overlapping chunks for MiniLM."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mmsearch_cli.errors import MediaError

# all-MiniLM-L6-v2 truncates at 256 word pieces (~190 English words). Chunks stay under
# that so no text is silently cut, and overlap so a phrase on a boundary is kept whole.
CHUNK_WORDS = 160
OVERLAP_WORDS = 40

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# Blank lines between paragraphs. Found by position, not by matching the paragraphs: an
# alternation per character cost ~115 bytes of regex state per character (2.5 GB for a
# 20 MB text without blank lines).
_BLANK = re.compile(r"\n[ \t\r\f\v]*\n\s*")


@dataclass
class TextChunk:
    index: int
    text: str
    start_char: int


def read_text(path: Path, *, max_bytes: int) -> tuple[str, str]:
    """Return (text, encoding). Binary files are refused; bad UTF-8 falls back to cp1252."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(max_bytes)
    except IsADirectoryError:
        raise MediaError("is a directory") from None
    except OSError as exc:
        raise MediaError(f"cannot read: {exc.strerror}") from None
    if b"\x00" in raw[:8192]:
        raise MediaError("binary content in a text file")
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    if len(raw) == max_bytes:  # a capped read may end inside a multi-byte character
        for cut in (1, 2, 3):
            try:
                return raw[:-cut].decode("utf-8"), "utf-8"
            except UnicodeDecodeError:
                continue
    return raw.decode("cp1252", errors="replace"), "cp1252"


def title_of(text: str, fallback: str) -> str:
    """First heading or first non-empty line, used to give each chunk its context."""
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line and not set(line) <= set("=-~*^_`:.'\" "):
            return line[:120]
    return fallback


def paragraphs(text: str) -> Iterator[tuple[int, str]]:
    """(start, paragraph) between blank lines, as slices (no copy of the whole text)."""
    pos = 0
    for gap in _BLANK.finditer(text):
        if text[pos : gap.start()].strip():
            yield pos, text[pos : gap.start()]
        pos = gap.end()
    if text[pos:].strip():
        yield pos, text[pos:]


def sentences_of(text: str) -> Iterator[tuple[int, str]]:
    for start, para in paragraphs(text):
        offset = len(para) - len(para.lstrip())
        for part in _SENTENCE_END.split(para.strip()):
            idx = para.find(part, offset)
            yield start + max(idx, 0), " ".join(part.split())
            offset = max(offset, idx)


def chunk_text(
    text: str, *, words: int = CHUNK_WORDS, overlap: int = OVERLAP_WORDS,
    max_chunks: int | None = None,
) -> list[TextChunk]:  # fmt: skip
    """Split into chunks of about ``words`` words on sentence boundaries, with overlap;
    at most ``max_chunks`` (a work budget: each chunk is one embedding)."""
    chunks: list[TextChunk] = []
    limit = max_chunks if max_chunks is not None else float("inf")
    current: list[tuple[int, str]] = []
    count = 0
    for start, sent in sentences_of(text):
        if len(chunks) >= limit:
            return chunks
        n = len(sent.split())
        if current and count + n > words:
            chunks.append(_make_chunk(len(chunks), current))
            # Carry the tail sentences (up to `overlap` words) into the next chunk.
            tail: list[tuple[int, str]] = []
            tail_words = 0
            for item in reversed(current):
                tail_words += len(item[1].split())
                if tail_words > overlap:
                    break
                tail.insert(0, item)
            current, count = tail, sum(len(s.split()) for _, s in tail)
        if n > words:  # one giant "sentence" (a log line, a table): split by words
            parts = sent.split()
            for i in range(0, len(parts), words - overlap):
                if len(chunks) >= limit:
                    return chunks
                chunks.append(TextChunk(len(chunks), " ".join(parts[i : i + words]), start))
            current, count = [], 0
            continue
        current.append((start, sent))
        count += n
    if current and len(chunks) < limit:
        chunks.append(_make_chunk(len(chunks), current))
    return chunks


def _make_chunk(index: int, sentences: list[tuple[int, str]]) -> TextChunk:
    return TextChunk(index, " ".join(s for _, s in sentences), sentences[0][0])

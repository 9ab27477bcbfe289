"""A file to items, by its modality: the one entry point into the decoders."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mmsearch_cli.config import Limits, Settings
from mmsearch_cli.decoders.text import chunk_text, read_text, title_of
from mmsearch_cli.errors import MediaError
from mmsearch_cli.items import DOCUMENT_EXTENSIONS, MediaItem


def decode(path: str, modality: str, settings: Settings) -> tuple[dict[str, Any], list[MediaItem]]:
    """Decode a file into items. Raises MediaError with a one-line reason."""
    p = Path(path)
    limits = settings.limits
    if modality == "text":
        if p.suffix.lower() in DOCUMENT_EXTENSIONS:
            from mmsearch_cli.decoders.documents import decode_document

            return decode_document(p, settings)
        return _decode_text(p, limits)
    if modality == "image":
        from mmsearch_cli.decoders.photo import decode_photo

        return decode_photo(p, settings)
    if modality == "audio":
        from mmsearch_cli.decoders.media import decode_audio

        return decode_audio(p, settings)
    if modality == "video":
        from mmsearch_cli.decoders.media import decode_video

        return decode_video(p, settings)
    raise MediaError(f"unsupported file type {p.suffix or '(none)'}")


def _decode_text(path: Path, limits: Limits) -> tuple[dict[str, Any], list[MediaItem]]:
    text, encoding = read_text(path, max_bytes=limits.max_text_bytes)
    title = title_of(text, os.path.splitext(path.name)[0].replace("_", " "))
    chunks = chunk_text(text, max_chunks=limits.max_text_chunks + 1)
    if not chunks:
        raise MediaError("empty text file")
    partial = len(chunks) > limits.max_text_chunks
    chunks = chunks[: limits.max_text_chunks]
    items = [
        # The title gives every chunk its document's context ("Hand tools: …").
        MediaItem(
            modality="text",
            payload=c.text if c.text.startswith(title) else f"{title}: {c.text}",
            kind="chunk",
            chunk=c.index,
            text=c.text,
        )
        for c in chunks
    ]
    meta: dict[str, Any] = {"title": title, "encoding": encoding, "chunks": len(chunks)}
    if partial:
        meta["partial"] = (f"indexed the first {len(chunks)} chunks "
                           "(limit max_text_chunks; the rest is not searchable)")  # fmt: skip
    return meta, items

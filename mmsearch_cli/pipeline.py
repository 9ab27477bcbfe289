"""From a file to segments and vectors: decode, then run each space's embedder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmsearch_cli.config import Limits, Settings
from mmsearch_cli.decoders.image import exif_datetime, load_image
from mmsearch_cli.decoders.text import chunk_text, read_text, title_of
from mmsearch_cli.errors import MediaError
from mmsearch_cli.explain import surrogate
from mmsearch_cli.items import MediaItem
from mmsearch_cli.spaces import LiveSpace


@dataclass
class EmbeddedFile:
    meta: dict[str, Any]
    items: list[MediaItem]
    vectors: dict[str, list[np.ndarray | None]] = field(default_factory=dict)  # space -> per item
    whys: list[dict[str, Any]] = field(default_factory=list)


def decode(path: str, modality: str, settings: Settings) -> tuple[dict[str, Any], list[MediaItem]]:
    """Decode a file into items. Raises MediaError with a one-line reason."""
    p = Path(path)
    limits = settings.limits
    if modality == "text":
        return _decode_text(p, limits)
    if modality == "image":
        img = load_image(p, max_pixels=limits.max_image_pixels)
        meta: dict[str, Any] = {"width": img.width, "height": img.height}
        if taken := exif_datetime(p):
            meta["taken"] = taken
        return meta, [MediaItem(modality="image", payload=img, kind="image")]
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
    chunks = chunk_text(text)
    if not chunks:
        raise MediaError("empty text file")
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
    return {"title": title, "encoding": encoding, "chunks": len(chunks)}, items


def embed_items(items: list[MediaItem], spaces: list[LiveSpace]) -> EmbeddedFile:
    """Run every space whose encoders take an item's modality; batch per embedder."""
    out = EmbeddedFile(meta={}, items=items, whys=[{} for _ in items])
    for space in spaces:
        per_item: list[np.ndarray | None] = [None] * len(items)
        for modality, embedder in space.encoders.items():
            idx = [i for i, it in enumerate(items) if it.modality == modality]
            for start in range(0, len(idx), embedder.batch_size):
                part = idx[start : start + embedder.batch_size]
                embedder.ensure_loaded()
                results = embedder.embed([items[i] for i in part])
                for i, res in zip(part, results, strict=True):
                    per_item[i] = np.asarray(res.vector, dtype=np.float32)
                    out.whys[i].update(res.why)
        out.vectors[space.name] = per_item
    for i, item in enumerate(items):
        if item.meta.get("file_tags"):
            out.whys[i]["file_tags"] = item.meta["file_tags"]
    return out


def iter_surrogates(whys: list[dict[str, Any]], items: list[MediaItem]) -> Iterator[str]:
    for why, item in zip(whys, items, strict=True):
        yield item.text or surrogate(why, "")

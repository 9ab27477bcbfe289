"""Live spaces: a space's spec bound to its embedder instances, for indexing and querying."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mmsearch_cli.config import Settings
from mmsearch_cli.embedders import registry
from mmsearch_cli.embedders.base import Embedder
from mmsearch_cli.errors import MismatchError
from mmsearch_cli.profiles import SpaceSpec
from mmsearch_cli.store.state import SpaceInfo


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


def describe(space: LiveSpace) -> SpaceInfo:
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
    current = describe(live)
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

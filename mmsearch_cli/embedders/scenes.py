"""Places365 scenes on onnxruntime: what kind of place a photo shows (beach, kitchen,
skyscraper, igloo), indoors or out, and 102 SUN attributes (snow, sunny, socializing).

ImageNet's 1,000 classes are objects; these are the places around them. One forward pass
per picture gives the scene probabilities and the 512-d pooled feature the attributes are
read from (``W_sceneattribute`` x feature, as in the CSAIL demo), memoised on the item.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mmsearch_cli.items import MediaItem
from mmsearch_cli.models import export, places
from mmsearch_cli.models.sessions import open_session

MEMO_KEY = "places365"
_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
IO_TOP = 10  # the demo's rule: indoor/outdoor by the mean label of the top ten scenes


def scene_name(raw: str) -> str:
    """``/a/apartment_building/outdoor`` -> ``apartment building, outdoor``."""
    parts = raw.strip("/").split("/")[1:]
    name = parts[0].replace("_", " ")
    return f"{name}, {parts[1].replace('_', ' ')}" if len(parts) > 1 else name


@dataclass(frozen=True)
class SceneReading:
    """What the scene network says of one picture."""

    probs: np.ndarray  # (365,)
    features: np.ndarray  # (512,)
    outdoor: float  # share of outdoor scenes among the top ten, in [0, 1]
    attributes: np.ndarray  # (102,) attribute responses


class SceneClassifier:
    """Pictures -> Places365 probabilities, pooled features and SUN attribute responses."""

    def __init__(self, *, model_dir: Path, threads: int = 1, size: int = places.IMAGE_SIZE):
        self.model_dir = model_dir
        self.threads = threads
        self.size = size
        self._session: Any = None
        self._meta: dict[str, Any] = {}

    @property
    def export_dir(self) -> Path:
        return places.export_dir(self.model_dir)

    def meta(self) -> dict[str, Any]:
        if not self._meta:
            if not export.is_exported(self.export_dir):
                places.export_places365(self.model_dir)
            self._meta = export.read_meta(self.export_dir)
        return self._meta

    @functools.cached_property
    def names(self) -> list[str]:
        self.meta()
        lines = (self.export_dir / "categories_places365.txt").read_text().split("\n")
        return [scene_name(line.split()[0]) for line in lines if line.strip()]

    @functools.cached_property
    def _outdoor_labels(self) -> np.ndarray:
        self.meta()
        lines = (self.export_dir / "IO_places365.txt").read_text().split("\n")
        return np.array([int(line.split()[-1]) - 1 for line in lines if line.strip()], np.float32)

    @functools.cached_property
    def attribute_names(self) -> list[str]:
        self.meta()
        lines = (self.export_dir / "labels_sunattribute.txt").read_text().split("\n")
        return [line.strip() for line in lines if line.strip()]

    @functools.cached_property
    def _attribute_matrix(self) -> np.ndarray:
        self.meta()
        w = np.load(self.export_dir / "W_sceneattribute_wideresnet18.npy", allow_pickle=False)
        return np.asarray(w, dtype=np.float32)  # (102, 512)

    def _ensure_session(self) -> Any:
        if self._session is None:
            self.meta()
            self._session = open_session(
                self.export_dir / "model.onnx",
                threads=self.threads,
                hint="delete that directory and run `mms models prepare`",
            )
        return self._session

    def preprocess(self, img: Image.Image) -> np.ndarray:
        """The whole picture squashed to a square, as Places365 was trained and evaluated."""
        small = img.convert("RGB").resize((self.size, self.size), Image.Resampling.BILINEAR)
        x = (np.asarray(small, dtype=np.float32) / 255.0 - _MEAN) / _STD
        return np.ascontiguousarray(x.transpose(2, 0, 1))

    def read(self, images: Sequence[Image.Image]) -> list[SceneReading]:
        session = self._ensure_session()
        out: list[SceneReading] = []
        for img in images:  # batching gains nothing on one thread (measured)
            probs, feats = session.run(None, {"pixels": self.preprocess(img)[None]})
            p, f = probs[0].astype(np.float32), feats[0].astype(np.float32)
            top = np.argsort(-p)[:IO_TOP]
            outdoor = float(self._outdoor_labels[top].mean())
            out.append(SceneReading(p, f, outdoor, self._attribute_matrix @ f))
        return out

    def analyse(self, items: Sequence[MediaItem]) -> list[SceneReading]:
        """One reading per image item, computed once and kept in its memo."""
        todo = [it for it in items if MEMO_KEY not in it.memo]
        for it, reading in zip(todo, self.read([it.payload for it in todo]), strict=True):
            it.memo[MEMO_KEY] = reading
        return [it.memo[MEMO_KEY] for it in items]

    def top_scenes(self, probs: np.ndarray, k: int = 3) -> list[list[Any]]:
        idx = np.argsort(-probs)[:k]
        return [[self.names[i], round(float(probs[i]), 4)] for i in idx]

    def top_attributes(self, responses: np.ndarray, k: int = 5) -> list[str]:
        return [self.attribute_names[i] for i in np.argsort(-responses)[:k]]

    def fingerprint(self) -> dict[str, Any]:
        meta = self.meta()
        return {
            "model": meta["model"],
            "weights": str(meta["weights_sha256"])[:12],
            "input": f"{self.size}px squashed, bilinear, imagenet mean/std",
        }


@functools.cache
def shared_scenes(
    model_dir: Path, threads: int = 1, size: int = places.IMAGE_SIZE
) -> SceneClassifier:
    return SceneClassifier(model_dir=model_dir, threads=threads, size=size)

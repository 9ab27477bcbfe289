"""Photos as people search them: the adapter/ConSE picture vector plus the place it shows
and the people in it, all in MiniLM's text space.

* **Scenes.** Places365 probabilities become a second ConSE vector over the scene names
  (a beach, a kitchen, a skyscraper), added with a weight that its own top probability
  gates, so a sure scene counts and a muddled one barely does. Drawings (the adapter's
  domain) are not photographs of places and skip the scene network.
* **People.** The face count the decoder recorded (``item.meta["people"]``) adds the
  words of ``decoders.photo.people_words``: a portrait, two people, a group of people.
* **Why.** The top scenes, indoors or outdoors, and the telling SUN attributes (snow,
  sunny, socializing) go into ``why``, and from there into "why" lines and the lexical space.

The weights come from ``benchmarks/tune_scenes.py`` on the shared corpus (its docstring).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from mmsearch_cli.decoders.photo import people_words
from mmsearch_cli.embedders.adapter import SEEN_FROM_TRUST, AdapterImageEmbedder
from mmsearch_cli.embedders.base import l2_normalise
from mmsearch_cli.embedders.conse import conse_vectors
from mmsearch_cli.embedders.minilm import cached_embeddings
from mmsearch_cli.embedders.scenes import SceneClassifier, shared_scenes
from mmsearch_cli.items import Embedded, MediaItem

SCENE_WORDINGS = ("name", "photo")
# Attributes that nearly every photo of one kind has ("natural light", "open area"): as
# search words they match everything, so "why" and the lexical space leave them out.
GENERIC_ATTRIBUTES = frozenset({
    "natural light", "open area", "man-made", "natural", "far-away horizon", "no horizon",
    "matte", "dry", "enclosed area", "semi-enclosed area", "horizontal components",
    "vertical components", "indoor lighting", "symmetrical", "cluttered space", "aged",
    "glossy", "sterile", "rugged scene", "warm", "soothing", "stressful", "scary", "dirty",
    "moist", "cold", "working", "waiting in line", "conducting business", "touring",
    "reading", "studying", "research", "praying",
})  # fmt: skip
ATTRIBUTES_SHOWN = 3
_SCENE_THREAD = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mms-scenes")
# The scene network's input: 160 px costs half of its native 224 px (46 against 85 ms)
# for the same quality here (benchmarks/tune_scenes.py). The visual space shares the pass.
SCENE_SIZE = 160
MIN_SCENE = 0.15  # a scene under this probability is not named in "why"


def scene_text(name: str, wording: str) -> str:
    if wording == "photo":
        return f"a photo of a {name}"
    return name


class PhotoImageEmbedder(AdapterImageEmbedder):
    """Pictures into the 384-d "text" space, with scenes and people for photographs."""

    name = "photo-minilm"

    def __init__(
        self,
        *,
        model_dir: Path,
        threads: int = 1,
        scene_weight: float = 0.6,
        scene_top_k: int = 5,
        scene_temperature: float = 2.0,
        scene_wording: str = "photo",
        scene_size: int = SCENE_SIZE,
        people_weight: float = 0.3,
        scenes: SceneClassifier | None = None,
        **adapter_options: Any,
    ) -> None:
        super().__init__(model_dir=model_dir, threads=threads, **adapter_options)
        if scene_wording not in SCENE_WORDINGS:
            raise ValueError(f"unknown scene wording {scene_wording!r}; one of {SCENE_WORDINGS}")
        self.scene_weight = scene_weight
        self.scene_top_k = scene_top_k
        self.scene_temperature = scene_temperature
        self.scene_wording = scene_wording
        self.people_weight = people_weight
        self.scenes = scenes or shared_scenes(model_dir, threads, scene_size)
        self._scene_matrix: np.ndarray | None = None

    def _load(self) -> None:
        super()._load()
        texts = [scene_text(n, self.scene_wording) for n in self.scenes.names]
        prefix = self.model_dir / "conse" / f"scenes-{self.scene_wording}"
        self._scene_matrix = cached_embeddings(self.text_embedder, texts, prefix)

    def scene_vectors(self, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Unit ConSE vectors over the scene names, and each picture's gate (top probability)."""
        assert self._scene_matrix is not None
        probs = np.atleast_2d(probs)
        vectors = conse_vectors(probs, self._scene_matrix, self.scene_top_k, self.scene_temperature)
        return vectors, probs.max(axis=1)

    def embed(self, items: Sequence[MediaItem]) -> list[Embedded]:
        self.ensure_loaded()
        # The scene network (the costliest step) reads the pictures in a thread while the
        # classifier, OCR and adapter run here: onnxruntime releases the GIL, so the two
        # share the machine's cores. Drawings are read too (they are known only after).
        pending = _SCENE_THREAD.submit(self.scenes.analyse, list(items))
        base = super().embed(items)
        all_readings = pending.result()
        if not base:
            return []
        photos = [
            i for i, e in enumerate(base) if float(e.why.get("adapter", 0.0)) < SEEN_FROM_TRUST
        ]
        readings = [all_readings[i] for i in photos]
        out = list(base)
        if photos:
            vectors, gates = self.scene_vectors(np.stack([r.probs for r in readings]))
        for n, i in enumerate(photos):
            reading, embedded = readings[n], base[i]
            parts = [embedded.vector, self.scene_weight * float(gates[n]) * vectors[n]]
            people = items[i].meta.get("people")
            if phrase := people_words(people):
                parts.append(self.people_weight * self.text_embedder.embed_query_text(phrase))
            why = dict(embedded.why)
            scenes = self.scenes.top_scenes(reading.probs, 3)
            why["scenes"] = [s for k, s in enumerate(scenes) if k == 0 or s[1] >= MIN_SCENE]
            why["io"] = "outdoors" if reading.outdoor >= 0.5 else "indoors"
            attrs = [a for a in self.scenes.top_attributes(reading.attributes, 12)
                     if a not in GENERIC_ATTRIBUTES]  # fmt: skip
            why["attributes"] = attrs[:ATTRIBUTES_SHOWN]
            out[i] = Embedded(vector=l2_normalise(np.sum(parts, axis=0)), why=why)
        return out

    def fingerprint(self) -> dict[str, Any]:
        return {
            **super().fingerprint(),
            "embedder": self.name,
            "scenes": {
                **self.scenes.fingerprint(),
                "weight": self.scene_weight,
                "top_k": self.scene_top_k,
                "temperature": self.scene_temperature,
                "wording": self.scene_wording,
            },
            "people_weight": self.people_weight,
        }

"""Images into the MiniLM text space by ConSE (Norouzi et al. 2014, "Zero-shot learning
by convex combination of semantic embeddings"), so text queries find pictures.

An image's vector is the probability-weighted mean of the MiniLM embeddings of its
top-T ImageNet classes, blended with the embeddings of its dominant colour names and
of any words OCR reads in it. The defaults come from ``benchmarks/tune_conse.py`` on
the shared corpus's text-to-image queries (numbers in its docstring).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmsearch_cli.decoders.colours import colour_phrase, dominant_colours
from mmsearch_cli.embedders.base import Embedder, l2_normalise
from mmsearch_cli.embedders.classifier import (
    ImageClassifier,
    class_info,
    shared_classifier,
    top_classes,
)
from mmsearch_cli.embedders.minilm import MiniLMEmbedder, cached_embeddings, shared_minilm
from mmsearch_cli.embedders.ocr import OcrReader
from mmsearch_cli.items import Embedded, InputModality, MediaItem

WORDINGS = ("name", "photo", "synonyms", "description")
WHY_LABELS = 5


def class_text(entry: dict[str, Any], wording: str) -> str:
    """How a class is put into words before MiniLM embeds it."""
    name = str(entry["name"])
    if wording == "name":
        return name
    if wording == "photo":
        return f"a photo of a {name}"
    if wording == "synonyms":
        return ", ".join([name, *entry["synonyms"]])
    if wording == "description":
        return f"{name}. {entry['description']}".strip()
    raise ValueError(f"unknown class wording {wording!r}; one of {WORDINGS}")


def conse_vectors(
    probs: np.ndarray, class_matrix: np.ndarray, top_k: int, temperature: float
) -> np.ndarray:
    """ConSE: unit rows of sum_i w_i E[c_i] over each image's top-k classes, where
    w_i is p_i ** (1 / temperature) renormalised over those k classes."""
    probs = np.atleast_2d(probs)
    top = np.argpartition(-probs, top_k - 1, axis=1)[:, :top_k]
    weights = np.take_along_axis(probs, top, axis=1).astype(np.float64) ** (1.0 / temperature)
    weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
    vectors = np.einsum("nk,nkd->nd", weights, class_matrix[top])
    return l2_normalise(vectors)


def mix_vectors(base: np.ndarray, parts: Sequence[tuple[np.ndarray | None, float]]) -> np.ndarray:
    """Unit vector of ``base`` plus each present (vector, weight) part."""
    out = base.astype(np.float32).copy()
    for vector, weight in parts:
        if vector is not None and weight:
            out += weight * vector
    return l2_normalise(out)


class ConseImageEmbedder(Embedder):
    """Pictures into the 384-d "text" space that MiniLM puts documents and queries in."""

    name = "conse-minilm"
    space = "text"
    dim = 384
    accepts: frozenset[InputModality] = frozenset({"image"})
    batch_size = 16

    def __init__(
        self,
        *,
        model_dir: Path,
        threads: int = 1,
        top_k: int = 20,
        temperature: float = 2.0,
        wording: str = "description",
        colour_weight: float = 0.1,
        ocr_weight: float = 0.2,
        use_ocr: bool = True,
        classifier: ImageClassifier | None = None,
        text_embedder: MiniLMEmbedder | None = None,
        ocr: OcrReader | None = None,
    ) -> None:
        super().__init__()
        if wording not in WORDINGS:
            raise ValueError(f"unknown class wording {wording!r}; one of {WORDINGS}")
        self.model_dir = model_dir
        self.top_k = top_k
        self.temperature = temperature
        self.wording = wording
        self.colour_weight = colour_weight
        self.ocr_weight = ocr_weight
        self.use_ocr = use_ocr
        self.classifier = classifier or shared_classifier(model_dir, threads)
        self.text_embedder = text_embedder or shared_minilm(model_dir, threads)
        self.ocr = ocr or OcrReader(threads=threads)
        self._classes: np.ndarray | None = None
        self._phrases: dict[str, np.ndarray] = {}

    def _load(self) -> None:
        self._classes = self.class_matrix()

    def class_texts(self) -> list[str]:
        return [class_text(entry, self.wording) for entry in class_info()]

    def class_matrix(self) -> np.ndarray:
        """(1000, 384) MiniLM embeddings of the class texts, cached as .npy in the model dir
        under a key of the texts and the MiniLM fingerprint (~9 s to compute, once)."""
        prefix = self.model_dir / "conse" / f"classes-{self.wording}"
        return cached_embeddings(self.text_embedder, self.class_texts(), prefix)

    def _phrase_vector(self, text: str) -> np.ndarray | None:
        if not text:
            return None
        if text not in self._phrases:
            self._phrases[text] = self.text_embedder.embed_query_text(text)
        return self._phrases[text]

    def embed(self, items: Sequence[MediaItem]) -> list[Embedded]:
        self.ensure_loaded()
        assert self._classes is not None
        analyses = self.classifier.analyse(items)
        if not analyses:
            return []
        probs = np.stack([p for p, _ in analyses])
        base = self.class_vectors(probs)
        names = [entry["name"] for entry in class_info()]
        out = []
        for item, p, vector in zip(items, probs, base, strict=True):
            colours = [name for name, _ in dominant_colours(item.payload)]
            words = self.ocr.text(item.payload) if self.use_ocr else ""
            words_vector = self.text_embedder.embed_query_text(words) if words else None
            colour_vector = self._phrase_vector(colour_phrase(colours))
            blended = mix_vectors(
                vector, [(colour_vector, self.colour_weight), (words_vector, self.ocr_weight)]
            )
            labels = [[names[i], round(prob, 4)] for i, prob in top_classes(p, WHY_LABELS)]
            why = {"labels": labels, "colours": colours, "ocr": words}
            out.append(Embedded(vector=blended, why=why))
        return out

    def class_vectors(self, probs: np.ndarray) -> np.ndarray:
        """ConSE from class probabilities alone (no colours, no OCR words)."""
        self.ensure_loaded()
        assert self._classes is not None
        return conse_vectors(probs, self._classes, self.top_k, self.temperature)

    def embed_query_text(self, text: str) -> np.ndarray:
        """Text queries share MiniLM's space, so MiniLM embeds them."""
        return self.text_embedder.embed_query_text(text)

    def fingerprint(self) -> dict[str, Any]:
        return {
            "embedder": self.name,
            "classifier": self.classifier.fingerprint(),
            "text": self.text_embedder.fingerprint(),
            "dim": self.dim,
            "conse": {
                "top_k": self.top_k,
                "temperature": self.temperature,
                "wording": self.wording,
                "colour_weight": self.colour_weight,
                "ocr_weight": self.ocr_weight if self.use_ocr else 0.0,
            },
        }

"""Images into the MiniLM text space by a small learned adapter, blended with ConSE.

The adapter is our own model (``training/train_adapter.py``): a small network from the
classifier's penultimate features (and the class-only ConSE vector) to MiniLM's 384-d
space, trained with InfoNCE on public-domain captioned clip art (Debian openclipart,
Kenney CC0 sprites; ``data/ADAPTER_MODEL_CARD.md``). Its output is added to the full ConSE
vector (classes, colours, OCR) with a shipped blend weight, so ImageNet knowledge is kept
where it is strong. The weights are a numpy ``.npz``: no torch at query or index time.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from mmsearch_cli.embedders.base import Embedder, l2_normalise
from mmsearch_cli.embedders.conse import ConseImageEmbedder, conse_vectors
from mmsearch_cli.errors import ModelUnavailableError
from mmsearch_cli.items import Embedded, InputModality, MediaItem

WEIGHTS = "data/adapter_minilm.npz"


class AdapterWeights:
    """The shipped network: arrays plus its ``meta`` (architecture, blend, metrics)."""

    def __init__(self, arrays: dict[str, np.ndarray], meta: dict[str, Any], sha256: str) -> None:
        self.arrays = {k: v.astype(np.float32) for k, v in arrays.items()}
        self.meta = meta
        self.sha256 = sha256

    @property
    def conse_input(self) -> bool:
        return bool(self.meta.get("conse_input", False))

    @property
    def blend(self) -> float:
        return float(self.meta.get("blend", 0.0))

    def blend_weights(self, maxprob: np.ndarray) -> np.ndarray:
        """Per picture, the weight of the ConSE vector added to the adapter's: with a
        learned gate, softplus(a * logit(top-1 probability) + c), so a confident ImageNet
        reading (typical of photos) leans on ConSE and a doubtful one (drawings) on the
        adapter; without one, the constant ``blend``."""
        p = np.clip(np.asarray(maxprob, dtype=np.float64), 1e-6, 1 - 1e-6)
        if "gate" not in self.meta:
            return np.full(p.shape, self.blend, dtype=np.float32)
        a, c = self.meta["gate"]
        z = a * np.log(p / (1 - p)) + c
        return np.logaddexp(0.0, z).astype(np.float32)

    def forward(self, feats: np.ndarray, plain_conse: np.ndarray | None = None) -> np.ndarray:
        """Unit (n, 384) adapter vectors from (n, 1280) features [+ (n, 384) class-only
        ConSE vectors, if the network takes them]."""
        a = self.arrays
        x = (np.atleast_2d(feats).astype(np.float32) - a["mean"]) / a["scale"]
        if self.conse_input:
            if plain_conse is None:
                raise ValueError("this adapter takes the class-only ConSE vector as input")
            x = np.concatenate([x, np.atleast_2d(plain_conse).astype(np.float32)], axis=1)
        out = x @ a["skip"] if "skip" in a else 0.0
        if "w1" in a:
            h = x @ a["w1"] + a["b1"]
            h = np.maximum(h, 0.0)  # ReLU
            out = out + h @ a["w2"] + a["b2"]
        return l2_normalise(np.asarray(out))


def load_weights(path: Path | None = None) -> AdapterWeights:
    """The shipped weights (or a candidate file, for training and evaluation)."""
    if path is None:
        data = resources.files("mmsearch_cli").joinpath(WEIGHTS).read_bytes()
    else:
        data = Path(path).read_bytes()
    return _parse(data)


@functools.lru_cache(maxsize=4)
def _parse(data: bytes) -> AdapterWeights:
    import io

    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files if k != "meta"}
            meta = json.loads(str(z["meta"]))
    except (OSError, ValueError, KeyError) as exc:
        raise ModelUnavailableError(
            f"cannot read the image adapter weights: {exc}",
            hint="reinstall mms, or retrain with `python training/train_adapter.py`",
        ) from exc
    return AdapterWeights(arrays, meta, hashlib.sha256(data).hexdigest())


class AdapterImageEmbedder(Embedder):
    """Pictures into the 384-d "text" space: blend of the learned adapter and ConSE."""

    name = "adapter-minilm"
    space = "text"
    dim = 384
    accepts: frozenset[InputModality] = frozenset({"image"})
    batch_size = 16

    def __init__(
        self,
        *,
        model_dir: Path,
        threads: int = 1,
        weights: str | None = None,
        blend: float | None = None,
        conse: ConseImageEmbedder | None = None,
    ) -> None:
        """``weights``: a candidate .npz instead of the shipped one; ``blend``: a constant
        weight of the ConSE vector added to the adapter's (None: the shipped blend or
        gate; 0: the adapter alone)."""
        super().__init__()
        self.model_dir = model_dir
        self.weights_path = Path(weights) if weights else None
        self._blend = blend
        self.conse = conse or ConseImageEmbedder(model_dir=model_dir, threads=threads)
        self.classifier = self.conse.classifier
        self.text_embedder = self.conse.text_embedder
        self._weights: AdapterWeights | None = None

    @property
    def weights(self) -> AdapterWeights:
        if self._weights is None:
            self._weights = load_weights(self.weights_path)
        return self._weights

    @property
    def blend(self) -> float | str:
        """What is added of ConSE: a constant, or "gate" (per picture, learned)."""
        if self._blend is not None:
            return float(self._blend)
        return "gate" if "gate" in self.weights.meta else self.weights.blend

    def _load(self) -> None:
        self.conse.ensure_loaded()
        _ = self.weights

    def embed(self, items: Sequence[MediaItem]) -> list[Embedded]:
        self.ensure_loaded()
        conse_out = self.conse.embed(items)  # labels, colours and OCR for "why" and the blend
        if not conse_out:
            return []
        analyses = self.classifier.analyse(items)  # memoised: no second forward pass
        feats = np.stack([f for _, f in analyses])
        probs = np.stack([p for p, _ in analyses])
        plain = None
        if self.weights.conse_input:
            assert self.conse._classes is not None
            plain = conse_vectors(
                probs, self.conse._classes, self.conse.top_k, self.conse.temperature
            )
        vectors = self.weights.forward(feats, plain)
        if self._blend is None:
            blend = self.weights.blend_weights(probs.max(axis=1))
        else:
            blend = np.full(len(vectors), self._blend, dtype=np.float32)
        if blend.any():
            full = np.stack([e.vector for e in conse_out])
            vectors = l2_normalise(vectors + blend[:, None] * full)
        return [Embedded(vector=v, why=e.why) for v, e in zip(vectors, conse_out, strict=True)]

    def embed_query_text(self, text: str) -> np.ndarray:
        """Text queries share MiniLM's space, so MiniLM embeds them."""
        return self.text_embedder.embed_query_text(text)

    def fingerprint(self) -> dict[str, Any]:
        conse = self.conse.fingerprint()
        return {
            "embedder": self.name,
            "classifier": conse["classifier"],
            "text": conse["text"],
            "dim": self.dim,
            "conse": conse["conse"],
            "adapter": self.weights.sha256[:12],
            "blend": self.weights.meta.get("gate", self.weights.blend)
            if self._blend is None
            else self._blend,
        }

"""Images into the MiniLM text space by a small learned adapter, blended with ConSE.

The adapter is our own model (``training/train_adapter.py``): a small network from the
classifier's penultimate features (and the class-only ConSE vector) to MiniLM's 384-d
space, trained with InfoNCE on public-domain captioned clip art (Debian openclipart,
Kenney CC0 sprites; ``data/ADAPTER_MODEL_CARD.md``). Its output is added to the full ConSE
vector (classes, colours, OCR) with a shipped blend weight, so ImageNet knowledge is kept
where it is strong. For pictures it trusts (drawings), it averages its reading of three
views: the centre square, the whole picture letterboxed, and the mirrored centre. The
weights are a numpy ``.npz``: no torch at query or index time.
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

from mmsearch_cli.decoders.flatness import flat_fraction
from mmsearch_cli.embedders.base import Embedder, l2_normalise
from mmsearch_cli.embedders.conse import ConseImageEmbedder
from mmsearch_cli.embedders.minilm import cached_embeddings
from mmsearch_cli.errors import ModelUnavailableError
from mmsearch_cli.items import Embedded, InputModality, MediaItem

WEIGHTS = "data/adapter_minilm.npz"
WORDS = "data/drawing_words.json"  # CLDR emoji names: what "why" says a drawing shows
SEEN_FROM_TRUST = 0.5  # below this, a picture is read as a photo and ConSE's labels explain it
SEEN_WORDS = 3
# Below this trust a picture's vector is over 99% ConSE, so the adapter's extra views (two
# more classifier passes) are not worth their cost: photos pay for one pass, as before.
VIEWS_FROM_TRUST = 0.01


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

    @property
    def views(self) -> tuple[str, ...]:
        """The classifier views (``classifier.VIEWS``) whose readings are averaged; the
        first is always "crop", the one every other embedder sees."""
        views = self.meta.get("views")
        return tuple(views) if isinstance(views, list) else ("crop",)

    def in_domain(self, feats: np.ndarray, flat: np.ndarray | None = None) -> np.ndarray:
        """Per picture, how far the adapter is trusted, in [0, 1]: about 1 for pictures
        like its training drawings, falling to 0 for ones far outside them (photos), which
        then keep their ConSE vector. The distance is the part of the standardised
        features that the training pictures' top principal components cannot explain,
        relative to the training mean: ``1 / (1 + (ratio / tau) ** power)``, with ``tau``
        the 95th percentile on validation drawings (trust 0.5 there). ``flat``, each
        picture's ``flat_fraction``, scales that by ``1 / (1 + (phi / flat) ** p)``,
        with ``phi`` a low percentile of validation drawings' flatness: photos whose
        features pass for a drawing (a product cut-out on white) are still noisy. The
        cue only applies where the features alone give ``VIEWS_FROM_TRUST`` or more, so
        the embedder measures flatness there only (photos skip it)."""
        x = np.atleast_2d(feats).astype(np.float32)
        if "domain_basis" not in self.arrays:
            return np.ones(len(x), dtype=np.float32)
        domain = self.meta["domain"]
        z = (x - self.arrays["mean"]) / self.arrays["scale"]
        basis = self.arrays["domain_basis"]  # (k, 1280), orthonormal rows
        resid = ((z - (z @ basis.T) @ basis) ** 2).sum(axis=1) / domain["resid_mean"]
        ratio = np.maximum(resid / domain["tau"], 0.0)
        trust = (1.0 / (1.0 + ratio ** domain["power"])).astype(np.float32)
        return trust if flat is None else self.pixel_cue(trust, flat)

    def pixel_cue(self, trust: np.ndarray, flat: np.ndarray) -> np.ndarray:
        """The features' ``trust`` scaled by the pixel flatness cue (see ``in_domain``)."""
        domain = self.meta.get("domain", {})
        if "flat_phi" not in domain:
            return trust
        f = np.maximum(np.asarray(flat, dtype=np.float64), 1e-6)
        cue = 1.0 / (1.0 + (domain["flat_phi"] / f) ** domain["flat_power"])
        return np.where(trust >= VIEWS_FROM_TRUST, trust * cue, trust).astype(np.float32)

    def combine(
        self, adapter: np.ndarray, conse: np.ndarray, trust: np.ndarray, blend: float | None = None
    ) -> np.ndarray:
        """Unit vectors between ConSE (trust 0) and the drawing blend, adapter + ``blend``
        x ConSE (trust 1). Interpolating, rather than adding the adapter, leaves a photo's
        vector (and so its cosine to a query) as ConSE made it."""
        blend = self.blend if blend is None else blend
        drawing = l2_normalise(adapter + blend * conse) if blend else adapter
        t = np.asarray(trust, dtype=np.float32)[:, None]
        return l2_normalise((1.0 - t) * conse + t * drawing)

    def forward(self, feats: np.ndarray, plain_conse: np.ndarray | None = None) -> np.ndarray:
        """Unit (n, 384) adapter vectors from (n, 1280) features [+ (n, 384) class-only
        ConSE vectors, if the network takes them]. With an ensemble (weights stacked on a
        leading axis), the members' unit outputs are averaged."""
        a = self.arrays
        x = (np.atleast_2d(feats).astype(np.float32) - a["mean"]) / a["scale"]
        if self.conse_input:
            if plain_conse is None:
                raise ValueError("this adapter takes the class-only ConSE vector as input")
            x = np.concatenate([x, np.atleast_2d(plain_conse).astype(np.float32)], axis=1)
        w1, b1, w2, b2 = (a[k] for k in ("w1", "b1", "w2", "b2"))
        if w1.ndim == 2:  # a single network
            w1, b1, w2, b2 = w1[None], b1[None], w2[None], b2[None]
        out = np.zeros((len(x), w2.shape[-1]), dtype=np.float32)
        for m in range(len(w1)):
            h = np.maximum(x @ w1[m] + b1[m], 0.0)  # ReLU
            out += l2_normalise(h @ w2[m] + b2[m])
        return l2_normalise(out)

    def forward_views(self, views: Sequence[tuple[np.ndarray, np.ndarray | None]]) -> np.ndarray:
        """Unit adapter vectors averaged over views: (features, class-only ConSE) per view,
        in the order of ``self.views``."""
        readings = [self.forward(f, p) for f, p in views]
        return l2_normalise(np.sum(readings, axis=0))

    def gated_reading(
        self, views: Sequence[tuple[np.ndarray, np.ndarray | None]], trust: np.ndarray
    ) -> np.ndarray:
        """What the embedder computes from all views' inputs: their averaged reading where
        ``trust`` reaches ``VIEWS_FROM_TRUST``, the crop's alone elsewhere (at run time
        the extra views are only computed there). For evaluation and tests."""
        crop = self.forward(*views[0])
        if len(views) == 1:
            return crop
        trusted = (np.asarray(trust) >= VIEWS_FROM_TRUST)[:, None]
        return np.where(trusted, self.forward_views(views), crop)


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
        gate: bool = True,
        conse: ConseImageEmbedder | None = None,
    ) -> None:
        """``weights``: a candidate .npz instead of the shipped one; ``blend``: the weight
        of the ConSE vector added to the adapter's for drawings (None: the shipped one);
        ``gate``: False trusts the adapter on every picture (with ``blend`` 0: the adapter
        alone)."""
        super().__init__()
        self.model_dir = model_dir
        self.weights_path = Path(weights) if weights else None
        self._blend = blend
        self.gate = gate
        self.conse = conse or ConseImageEmbedder(model_dir=model_dir, threads=threads)
        self.classifier = self.conse.classifier
        self.text_embedder = self.conse.text_embedder
        self._weights: AdapterWeights | None = None
        self._words: list[str] = []
        self._word_matrix: np.ndarray | None = None

    @property
    def weights(self) -> AdapterWeights:
        if self._weights is None:
            self._weights = load_weights(self.weights_path)
        return self._weights

    @property
    def blend(self) -> float:
        """The weight of the ConSE vector added to the (gated) adapter's."""
        return self.weights.blend if self._blend is None else float(self._blend)

    def _load(self) -> None:
        self.conse.ensure_loaded()
        _ = self.weights
        data = json.loads(resources.files("mmsearch_cli").joinpath(WORDS).read_text())
        self._words = list(data["words"])
        prefix = self.model_dir / "adapter" / "words"
        self._word_matrix = cached_embeddings(self.text_embedder, self._words, prefix)

    def seen(self, adapter: np.ndarray) -> list[list[Any]]:
        """The vocabulary words nearest an adapter vector, with cosines: what the adapter
        reads a drawing as ("red apple 0.71"), where ImageNet labels are usually wrong."""
        assert self._word_matrix is not None
        sims = self._word_matrix @ adapter
        top = np.argsort(-sims)[:SEEN_WORDS]
        return [[self._words[i], round(float(sims[i]), 2)] for i in top]

    def embed(self, items: Sequence[MediaItem]) -> list[Embedded]:
        self.ensure_loaded()
        conse_out = self.conse.embed(items)  # labels, colours and OCR for "why" and the blend
        if not conse_out:
            return []
        analyses = self.classifier.analyse(items)  # memoised: no second forward pass
        feats = np.stack([f for _, f in analyses])
        probs = np.stack([p for p, _ in analyses])
        if self.gate:
            trust = self.weights.in_domain(feats)
            flat = np.ones(len(items))  # not consulted below VIEWS_FROM_TRUST
            for i in np.flatnonzero(trust >= VIEWS_FROM_TRUST):
                flat[i] = flat_fraction(items[int(i)].payload)
            trust = self.weights.pixel_cue(trust, flat)
        else:
            trust = np.ones(len(feats), np.float32)
        conse = np.stack([e.vector for e in conse_out])
        adapter = self.weights.forward(feats, self.network_input(probs))
        extra = self.weights.views[1:]
        todo = np.flatnonzero(trust >= VIEWS_FROM_TRUST)
        if extra and len(todo):
            images = [items[int(i)].payload for i in todo]
            total = adapter[todo]  # the crop's reading, already made; as in forward_views
            for view in extra:
                p, f = self.classifier.classify_images(images, view=view)
                total = total + self.weights.forward(f, self.network_input(p))
            adapter[todo] = l2_normalise(total)
        vectors = self.weights.combine(adapter, conse, trust, self.blend)
        out = []
        for v, a, e, t in zip(vectors, adapter, conse_out, trust.tolist(), strict=True):
            why = {**e.why, "adapter": round(t, 2)}
            if t >= SEEN_FROM_TRUST:
                why["seen"] = self.seen(a)
            out.append(Embedded(vector=v, why=why))
        return out

    def network_input(self, probs: np.ndarray) -> np.ndarray | None:
        """The class-only ConSE vectors the network takes as input, if it takes them."""
        if not self.weights.conse_input:
            return None
        return self.conse.class_vectors(probs)

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
            "blend": self.blend,
            "gate": self.gate,
            "views": list(self.weights.views),
        }

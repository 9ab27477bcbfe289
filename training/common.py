"""Shared by the training scripts: items, cached image features and caption embeddings,
the held-out split, and retrieval metrics. Everything heavy is cached in the data cache
(never in the repository), keyed by the models' fingerprints.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mmsearch_cli.decoders.image import load_image  # noqa: E402
from mmsearch_cli.embedders.conse import ConseImageEmbedder  # noqa: E402
from mmsearch_cli.embedders.minilm import shared_minilm  # noqa: E402
from mmsearch_cli.errors import MediaError  # noqa: E402
from mmsearch_cli.items import MediaItem  # noqa: E402

MAX_PIXELS = 89_478_485
TEST_FRACTION = 0.10  # held-out groups, reported once at the end
VAL_FRACTION = 0.05  # groups for early stopping and model choice
SPLIT_SEED = 20240607  # fixed apart from the training seed, so the split never moves


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mms-training"


def model_dir() -> Path:
    return Path(os.environ.get("MMS_MODEL_DIR") or REPO / ".cache/models")


def load_items(cache: Path) -> list[dict[str, Any]]:
    path = cache / "items.jsonl"
    if not path.is_file():
        sys.exit(f"{path} is missing: run `python training/fetch_data.py` first")
    return [json.loads(line) for line in path.read_text().splitlines()]


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:12]


def family(item: dict[str, Any]) -> str:
    """Emoji (every design), icons, or clip art (openclipart and Kenney, split and cached
    together as before)."""
    if item["group"].startswith(("emoji:", "emoji-name:")):
        return "emoji"
    return "icon" if item["group"].startswith("icon:") else "clipart"


def by_family(fn: Any, cache: Path, items: list[dict[str, Any]], *args: Any) -> dict[str, Any]:
    """``fn`` run (and cached) per family, so adding a source never recomputes the others;
    the arrays are joined back in item order."""
    fams = [family(i) for i in items]
    order = list(dict.fromkeys(fams))
    if any(fams[k] != fams[k - 1] and fams[k - 1] in fams[k:] for k in range(1, len(fams))):
        raise ValueError("items of one family must be contiguous")
    parts = [
        fn(cache, [i for i, f in zip(items, fams, strict=True) if f == fam], *args) for fam in order
    ]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def image_features(cache: Path, items: list[dict[str, Any]], batch: int = 16) -> dict[str, Any]:
    """Per picture, through the runtime path (decoder, classifier, ConSE embedder):
    ``feats`` (n, 1280) penultimate features, ``conse`` (n, 384) the full ConSE vector
    (classes, colours, OCR), ``plain`` (n, 384) ConSE from the classes alone, and ``ok``."""
    embedder = ConseImageEmbedder(model_dir=model_dir())
    key = _key([i["id"] for i in items], embedder.fingerprint())
    path = cache / f"features-{key}.npz"
    if path.is_file():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    from mmsearch_cli.embedders.conse import conse_vectors

    embedder.ensure_loaded()
    n = len(items)
    feats = np.zeros((n, 1280), np.float32)
    conse = np.zeros((n, 384), np.float32)
    plain = np.zeros((n, 384), np.float32)
    ok = np.zeros(n, bool)
    start = time.time()
    for lo in range(0, n, batch):
        rows, media = [], []
        for i in range(lo, min(lo + batch, n)):
            try:
                img = load_image(Path(items[i]["path"]), max_pixels=MAX_PIXELS)
            except MediaError as exc:
                print(f"skip {items[i]['id']}: {exc}", file=sys.stderr)
                continue
            rows.append(i)
            media.append(MediaItem(modality="image", payload=img, kind="image"))
        if not media:
            continue
        out = embedder.embed(media)
        probs = np.stack([m.memo[embedder.classifier.memo_key][0] for m in media])
        feats[rows] = np.stack([m.memo[embedder.classifier.memo_key][1] for m in media])
        conse[rows] = np.stack([e.vector for e in out])
        assert embedder._classes is not None
        plain[rows] = conse_vectors(probs, embedder._classes, embedder.top_k, embedder.temperature)
        ok[rows] = True
        if lo % (batch * 50) == 0:
            print(f"features {lo + len(media)}/{n} ({time.time() - start:.0f} s)", file=sys.stderr)
    np.savez(path, feats=feats, conse=conse, plain=plain, ok=ok)
    return {"feats": feats, "conse": conse, "plain": plain, "ok": ok}


def augment(img: Any, rng: np.random.Generator) -> Any:
    """A random view: mirror, crop to 60-100% of each side, a light background tint for
    transparent-looking (white) margins, small rotation. Photos and drawings both get them."""
    from PIL import Image, ImageOps

    if rng.random() < 0.5:
        img = ImageOps.mirror(img)
    w, h = img.size
    cw, ch = int(w * rng.uniform(0.6, 1.0)), int(h * rng.uniform(0.6, 1.0))
    left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    img = img.crop((left, top, left + cw, top + ch))
    if rng.random() < 0.3:
        img = img.rotate(float(rng.uniform(-15, 15)), expand=True, fillcolor=(255, 255, 255))
    if rng.random() < 0.3:
        tint = tuple(int(v) for v in rng.integers(200, 256, size=3))
        arr = np.asarray(img).copy()
        white = (arr > 250).all(axis=2)
        arr[white] = tint
        img = Image.fromarray(arr)
    return img


def view_features(cache: Path, items: list[dict[str, Any]], view: int) -> dict[str, Any]:
    """``feats``, class-only ``plain`` ConSE vectors and top-1 probability ``maxprob`` of
    view ``view``: 0 is the picture as indexed, >= 1 augmented views, deterministic per
    (view, picture). Only the classifier runs (no OCR, no colours)."""
    from mmsearch_cli.embedders.conse import conse_vectors

    embedder = ConseImageEmbedder(model_dir=model_dir())
    key = _key([i["id"] for i in items], embedder.fingerprint(), "view", view)
    path = cache / f"view{view}-{key}.npz"
    if path.is_file():
        with np.load(path) as z:
            return {"maxprob": np.zeros(len(items), np.float32), **{k: z[k] for k in z.files}}
    classes = embedder.class_matrix()
    n = len(items)
    feats = np.zeros((n, 1280), np.float32)
    plain = np.zeros((n, 384), np.float32)
    maxprob = np.zeros(n, np.float32)
    ok = np.zeros(n, bool)
    start = time.time()
    for lo in range(0, n, 16):
        rows, images = [], []
        for i in range(lo, min(lo + 16, n)):
            try:
                img = load_image(Path(items[i]["path"]), max_pixels=MAX_PIXELS)
            except MediaError:
                continue
            rows.append(i)
            images.append(augment(img, np.random.default_rng([view, i])) if view else img)
        if not images:
            continue
        probs, f = embedder.classifier.classify_images(images)
        feats[rows] = f
        plain[rows] = conse_vectors(probs, classes, embedder.top_k, embedder.temperature)
        maxprob[rows] = probs.max(axis=1)
        ok[rows] = True
        if lo % 800 == 0:
            print(f"view {view}: {lo}/{n} ({time.time() - start:.0f} s)", file=sys.stderr)
    np.savez(path, feats=feats, plain=plain, maxprob=maxprob, ok=ok)
    return {"feats": feats, "plain": plain, "maxprob": maxprob, "ok": ok}


def named_view_features(cache: Path, items: list[dict[str, Any]], views: tuple[str, ...]
                        ) -> dict[str, Any]:  # fmt: skip
    """``{view}_feats`` and class-only ``{view}_plain`` ConSE vectors of each named
    classifier view (``classifier.VIEWS``: "pad", "mirror") through the runtime call, one
    decode per picture for all of them."""
    from mmsearch_cli.embedders.conse import conse_vectors

    embedder = ConseImageEmbedder(model_dir=model_dir())
    key = _key([i["id"] for i in items], embedder.fingerprint(), "named", list(views))
    path = cache / f"named-{key}.npz"
    if path.is_file():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    classes = embedder.class_matrix()
    n = len(items)
    out = {f"{v}_{k}": np.zeros((n, d), np.float32) for v in views
           for k, d in (("feats", 1280), ("plain", 384))}  # fmt: skip
    start = time.time()
    for lo in range(0, n, 16):
        rows, images = [], []
        for i in range(lo, min(lo + 16, n)):
            try:
                images.append(load_image(Path(items[i]["path"]), max_pixels=MAX_PIXELS))
                rows.append(i)
            except MediaError:
                continue
        for view in views if images else ():
            probs, f = embedder.classifier.classify_images(images, view=view)
            out[f"{view}_feats"][rows] = f
            out[f"{view}_plain"][rows] = conse_vectors(
                probs, classes, embedder.top_k, embedder.temperature
            )
        if lo % 1600 == 0:
            print(f"views {'+'.join(views)}: {lo}/{n} ({time.time() - start:.0f} s)",
                  file=sys.stderr)  # fmt: skip
    np.savez(path, **out)
    return out


def flatness(cache: Path, items: list[dict[str, Any]]) -> dict[str, Any]:
    """``flat``: each picture's ``flat_fraction`` as decoded at run time (1.0 if it does
    not decode), for the in-domain trust's pixel cue. Cached."""
    from mmsearch_cli.decoders.flatness import flat_fraction

    path = cache / f"flat-{_key([i['id'] for i in items], 'flat', 1)}.npy"
    if path.is_file():
        return {"flat": np.load(path)}
    flat = np.ones(len(items), np.float32)
    start = time.time()
    for i, item in enumerate(items):
        try:
            flat[i] = flat_fraction(load_image(Path(item["path"]), max_pixels=MAX_PIXELS))
        except MediaError:
            continue
        if i % 4000 == 0:
            print(f"flatness {i}/{len(items)} ({time.time() - start:.0f} s)", file=sys.stderr)
    np.save(path, flat)
    return {"flat": flat}


def text_embeddings(cache: Path, texts: list[str]) -> np.ndarray:
    """MiniLM embeddings (unit rows) of the texts, cached."""
    minilm = shared_minilm(model_dir())
    path = cache / f"captions-{_key(texts, minilm.fingerprint())}.npy"
    if path.is_file():
        return np.load(path)
    vectors = minilm.embed_texts(texts)
    np.save(path, vectors)
    return vectors


def split(items: list[dict[str, Any]]) -> np.ndarray:
    """Per picture "train", "val" or "test", by group (near-duplicates, and an emoji's three
    renderings, stay together). Each family is split on its own, so the clip-art split is
    the same whatever else is added."""
    part: dict[str, str] = {}
    for offset, fam in enumerate(dict.fromkeys(family(i) for i in items)):
        groups = sorted({i["group"] for i in items if family(i) == fam})
        random.Random(SPLIT_SEED + offset).shuffle(groups)
        n_test, n_val = round(len(groups) * TEST_FRACTION), round(len(groups) * VAL_FRACTION)
        part.update({g: "test" for g in groups[:n_test]})
        part.update({g: "val" for g in groups[n_test : n_test + n_val]})
    return np.array([part.get(i["group"], "train") for i in items])


def caption_key(caption: str) -> str:
    """Captions that differ only in case or spacing ("Grapes", "grapes ") are one query."""
    return " ".join(caption.casefold().split())


def caption_queries(
    items: list[dict[str, Any]], rows: np.ndarray
) -> tuple[list[str], list[set[int]]]:
    """One query per distinct short caption among ``rows`` (up to case and spacing); its
    targets are the pictures (positions in ``rows``) that carry that caption."""
    targets: dict[str, set[int]] = {}
    for pos, row in enumerate(rows):
        targets.setdefault(caption_key(items[row]["query"]), set()).add(pos)
    queries = sorted(targets)
    return queries, [targets[q] for q in queries]


def retrieval(
    query_vecs: np.ndarray, image_vecs: np.ndarray, targets: list[set[int]], k: int = 10
) -> dict[str, float]:
    """Recall@k (a target in the top k) and MRR@k of caption -> exact picture, cosine."""
    scores = query_vecs @ image_vecs.T
    order = np.argsort(-scores, axis=1)[:, :k]
    hits, rr = 0, 0.0
    for ranked, wanted in zip(order, targets, strict=True):
        for rank, idx in enumerate(ranked):
            if int(idx) in wanted:
                hits += 1
                rr += 1.0 / (rank + 1)
                break
    n = max(len(targets), 1)
    return {"recall@10": hits / n, "mrr@10": rr / n, "queries": len(targets)}

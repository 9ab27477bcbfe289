"""Tune how Places365 scenes join a photo's text-space vector (``embedders/photo.py``).

Usage: python benchmarks/tune_scenes.py [--corpus ../shared/corpus] [--model-dir DIR]

Scores nDCG@10 and MRR over the corpus's text->image queries (images/ targets only, as
``tune_conse.py``) in the text space alone. The shipped picture vector (adapter + ConSE)
and each photo's scene reading are computed once; the variants are recombined in numpy
with the embedder's own functions. It also prints the per-picture cost of the scene
network at the sizes it could run at. The chosen defaults are in ``PhotoImageEmbedder``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.tune_conse import Qrels, evaluate, ndcg_mrr
from mmsearch_cli.config import default_model_dir
from mmsearch_cli.decoders.image import load_image
from mmsearch_cli.embedders.adapter import SEEN_FROM_TRUST, AdapterImageEmbedder
from mmsearch_cli.embedders.base import l2_normalise
from mmsearch_cli.embedders.conse import conse_vectors
from mmsearch_cli.embedders.minilm import MiniLMEmbedder
from mmsearch_cli.embedders.photo import SCENE_WORDINGS, scene_text
from mmsearch_cli.embedders.scenes import SceneClassifier
from mmsearch_cli.items import MediaItem


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--corpus", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "corpus"
    )
    ap.add_argument(
        "--model-dir",
        type=Path,
        default=Path(os.environ.get("MMS_MODEL_DIR") or default_model_dir()),
    )
    args = ap.parse_args()
    queries: list[tuple[str, Qrels]] = []
    for line in (args.corpus / "queries.jsonl").open():
        q = json.loads(line)
        rel = {p: g for p, g in q["relevant"].items() if p.startswith("images/")}
        if "text" in q and 2 in rel.values():
            queries.append((q["text"], rel))
    files = sorted(p for p in (args.corpus / "images").rglob("*") if p.is_file())
    paths = [str(p.relative_to(args.corpus)) for p in files]
    items = [MediaItem("image", load_image(p, max_pixels=89_478_485), "image") for p in files]
    print(f"{len(paths)} images, {len(queries)} text->image queries")

    adapter = AdapterImageEmbedder(model_dir=args.model_dir)
    base_out = adapter.embed(items)
    base = np.stack([e.vector for e in base_out])
    photo = np.array([float(e.why.get("adapter", 0)) < SEEN_FROM_TRUST for e in base_out])
    minilm: MiniLMEmbedder = adapter.text_embedder
    qv = minilm.embed_texts([t for t, _ in queries])
    rel = [r for _, r in queries]
    print(f"{int(photo.sum())} read as photos")
    ndcg, mrr = evaluate(base, paths, qv, rel)
    print(f"shipped (no scenes)                       nDCG@10 {ndcg:.3f}  MRR {mrr:.3f}")

    image_to_image(args.corpus, paths, items, adapter)
    for size in (224, 160):
        scenes = SceneClassifier(model_dir=args.model_dir, size=size)
        scenes.read([items[0].payload])
        start = time.perf_counter()
        probs = np.stack([r.probs for r in scenes.read([it.payload for it in items])])
        ms = 1000 * (time.perf_counter() - start) / len(items)
        print(f"-- scenes at {size} px: {ms:.0f} ms per picture (one thread)")
        for wording in SCENE_WORDINGS:
            texts = [scene_text(n, wording) for n in scenes.names]
            matrix = minilm.embed_texts(texts)
            for top_k, temp, weight, gated in itertools.product(
                (1, 3, 5), (1.0, 2.0), (0.3, 0.6, 1.0, 1.5), (True, False)
            ):
                sv = conse_vectors(probs, matrix, top_k, temp)
                gate = probs.max(axis=1) if gated else np.ones(len(probs))
                mixed = l2_normalise(base + (weight * gate * photo)[:, None] * sv)
                n, m = evaluate(mixed, paths, qv, rel)
                gating = "top-p" if gated else "none "
                print(f"   {wording:<6} k={top_k} temp={temp:g} w={weight:<4g} gate={gating}"
                      f"  nDCG@10 {n:.3f}  MRR {m:.3f}")  # fmt: skip


def image_to_image(
    corpus: Path, paths: list[str], items: list[MediaItem], adapter: AdapterImageEmbedder
) -> None:
    """Would the scene network's 512-d pooled feature help look-alike search? nDCG@10 of
    the corpus's image queries by EfficientNet features, Places features, and both."""
    queries = []
    for line in (corpus / "queries.jsonl").open():
        q = json.loads(line)
        if "image" in q:
            queries.append((q["image"], {p: g for p, g in q["relevant"].items()}))
    lite = l2_normalise(np.stack([f for _, f in adapter.classifier.analyse(items)]))
    variants = [("EfficientNet-Lite0 (before)", lite)]
    for size in (160, 224):
        scenes = SceneClassifier(model_dir=adapter.model_dir, size=size)
        places = l2_normalise(
            np.stack([r.features for r in scenes.read([i.payload for i in items])])
        )
        variants.append((f"Places365 pooled, {size} px", places))
        both = l2_normalise(np.concatenate([lite, places], axis=1))
        variants.append((f"both, concatenated, {size} px", both))
    index = {p: i for i, p in enumerate(paths)}
    for label, vectors in variants:
        scores = []
        for image, rel in queries:
            sims = vectors @ vectors[index[image]]
            sims[index[image]] = -np.inf  # never answered with itself
            scores.append(ndcg_mrr(sims, paths, rel)[0])
        print(f"image->image {label:<30} nDCG@10 {np.mean(scores):.3f} ({len(scores)} queries)")


if __name__ == "__main__":
    main()

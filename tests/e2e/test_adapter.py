"""The shipped image adapter with the real models: loads without torch, reproduces its
recorded held-out numbers on a fixed subset, and leaves photos to ConSE while drawings get
the adapter (its weights' shapes and views: tests/unit/embedders/test_adapter_weights.py)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmsearch_cli.config import load_settings
from mmsearch_cli.decoders.flatness import flat_fraction
from mmsearch_cli.decoders.image import load_image
from mmsearch_cli.embedders import registry
from mmsearch_cli.embedders.adapter import VIEWS_FROM_TRUST, AdapterImageEmbedder, load_weights
from mmsearch_cli.embedders.conse import ConseImageEmbedder
from mmsearch_cli.embedders.minilm import shared_minilm
from mmsearch_cli.items import MediaItem
from mmsearch_cli.search.explain import surrogate, why_line
from tests.conftest import CORPUS, MODEL_DIR, ROOT, SAMPLE
from tests.support.pictures import drawing

# 200 held-out public-domain/CC0 pictures of the training source (their adapter inputs,
# written by training/train_adapter.py with the scores the shipped weights got on them).
HELD_OUT = ROOT / "tests" / "data" / "adapter_heldout.npz"
# Photos: every farm animal and household object in sample_data (26), with their captions
# from the shared corpus's MANIFEST.csv (evaluation only: never trained on).
FOLDERS = ("images/farm_animals/", "images/household_objects/")
# Caption -> its own photo among the 26, hits in the top 1 / top 5, with the shipped weights
# (mmsearch_cli/data/ADAPTER_MODEL_CARD.md).
RECORDED = {"conse": (17, 26), "adapter": (10, 16), "shipped": (17, 26)}
TOLERANCE = 1  # photos; the ranking is deterministic, this only absorbs float drift


def item(image: Image.Image) -> MediaItem:
    return MediaItem(modality="image", payload=image, kind="image")


def photos() -> list[tuple[Path, str]]:
    manifest = CORPUS / "MANIFEST.csv"
    if not manifest.is_file():
        pytest.skip(f"{manifest} is not here")
    with manifest.open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["path"].startswith(FOLDERS)]
    return [(SAMPLE / r["path"], r["caption"]) for r in rows if (SAMPLE / r["path"]).is_file()]


def recall_mrr(queries: np.ndarray, vectors: np.ndarray, targets: list[set[int]]) -> tuple:
    order = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    ranks = [next((r for r, i in enumerate(row) if int(i) in t), None) for row, t in
             zip(order, targets, strict=True)]  # fmt: skip
    hits = [r for r in ranks if r is not None]
    return len(hits) / len(ranks), sum(1 / (r + 1) for r in hits) / len(ranks)


def test_loading_and_embedding_import_no_torch() -> None:
    image = SAMPLE / "images" / "farm_animals" / "cow.jpg"
    code = f"""
import sys, json
from pathlib import Path
from mmsearch_cli.decoders.flatness import flat_fraction
from mmsearch_cli.decoders.image import load_image
from mmsearch_cli.embedders.adapter import AdapterImageEmbedder
from mmsearch_cli.items import MediaItem
e = AdapterImageEmbedder(model_dir=Path({str(MODEL_DIR)!r}))
item = MediaItem(modality="image", payload=load_image(Path({str(image)!r}),
                 max_pixels=10**8), kind="image")
(out,) = e.embed([item])
print(json.dumps({{"torch": "torch" in sys.modules, "dim": int(out.vector.shape[0])}}))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"torch": False, "dim": 384}


def test_reproduces_recorded_held_out_numbers() -> None:
    weights = load_weights()
    with np.load(HELD_OUT, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        arrays = {k: z[k].astype(np.float32) for k in z.files if k != "meta"}
    assert meta["adapter_sha256"] == weights.sha256, "retrain wrote new weights: re-export"
    keys = [" ".join(c.casefold().split()) for c in meta["captions"]]
    queries = sorted(set(keys))
    targets = [{i for i, k in enumerate(keys) if k == q} for q in queries]
    q = shared_minilm(MODEL_DIR).embed_texts([meta["captions"][keys.index(k)] for k in queries])
    # The adapter's reading of each view it averages ("crop" is the picture as indexed).
    prefix = {v: "" if v == "crop" else f"{v}_" for v in weights.views}
    assert weights.views[0] == "crop" and len(weights.views) == len(weights.meta["views"])
    readings = [(arrays[f"{prefix[v]}feats"], arrays[f"{prefix[v]}plain"]) for v in weights.views]
    adapter = weights.forward_views(readings)
    trust = weights.in_domain(arrays["feats"], arrays["flat"])
    variants = {
        "conse": arrays["conse"],
        "adapter": adapter,
        "shipped": weights.combine(weights.gated_reading(readings, trust), arrays["conse"], trust),
    }
    for name, vectors in variants.items():
        recall, mrr = recall_mrr(q, vectors, targets)
        want = meta["scores"][name]
        assert abs(recall - want["recall@10"]) <= 0.01, (name, recall, want)
        assert abs(mrr - want["mrr@10"]) <= 0.01, (name, mrr, want)
    # The adapter is what makes drawings findable at all.
    assert meta["scores"]["shipped"]["recall@10"] > 2 * meta["scores"]["conse"]["recall@10"]
    assert np.median(trust) > 0.9


@pytest.fixture(scope="module")
def ranked() -> dict[str, tuple[int, int]]:
    pairs = photos()
    assert len(pairs) == 26
    captions = shared_minilm(MODEL_DIR).embed_texts([c for _, c in pairs])
    conse = ConseImageEmbedder(model_dir=MODEL_DIR)
    variants = {
        "conse": conse,
        "adapter": AdapterImageEmbedder(model_dir=MODEL_DIR, blend=0.0, gate=False, conse=conse),
        "shipped": AdapterImageEmbedder(model_dir=MODEL_DIR, conse=conse),
    }
    items = [item(load_image(p, max_pixels=10**8)) for p, _ in pairs]
    out = {}
    for name, embedder in variants.items():
        vectors = np.stack([e.vector for e in embedder.embed(items)])
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
        ranks = (captions @ vectors.T > np.diag(captions @ vectors.T)[:, None]).sum(axis=1)
        out[name] = (int((ranks < 1).sum()), int((ranks < 5).sum()))
    return out


def test_photos_keep_conse_ranking(ranked: dict[str, tuple[int, int]]) -> None:
    for name, (top1, top5) in RECORDED.items():
        got1, got5 = ranked[name]
        assert abs(got1 - top1) <= TOLERANCE, (name, ranked[name], RECORDED[name])
        assert abs(got5 - top5) <= TOLERANCE, (name, ranked[name], RECORDED[name])
    # Trained on drawings, the adapter alone reads photos worse than ConSE; the gate
    # keeps the shipped embedder at ConSE's level.
    assert ranked["adapter"][0] < ranked["conse"][0] <= ranked["shipped"][0] + TOLERANCE


def test_drawings_get_the_adapter_and_photos_keep_conse() -> None:
    embedder = registry.create("adapter-minilm", load_settings())
    assert isinstance(embedder, AdapterImageEmbedder)
    photo = load_image(SAMPLE / "images" / "household_objects" / "pencil.png", max_pixels=10**8)
    cow = load_image(SAMPLE / "images" / "farm_animals" / "cow.jpg", max_pixels=10**8)
    out_drawing, out_photo, out_cow = embedder.embed([item(drawing()), item(photo), item(cow)])
    assert out_drawing.why["adapter"] > 0.5
    assert out_cow.why["adapter"] < 0.1
    # "why" names what the adapter reads a drawing as, where ImageNet labels are wrong.
    seen = [word for word, _ in out_drawing.why["seen"]]
    assert seen[0] == "red apple", out_drawing.why
    assert why_line(out_drawing.why).startswith("drawing of red apple")
    assert surrogate(out_drawing.why, "").startswith("a drawing of a red apple")
    assert "seen" not in out_cow.why and why_line(out_cow.why).startswith("ox ")
    assert {"labels", "colours", "ocr", "adapter"} <= set(out_photo.why)
    query = shared_minilm(MODEL_DIR).embed_query_text("a red apple")
    conse = ConseImageEmbedder(model_dir=MODEL_DIR).embed([item(drawing())])[0].vector
    # The adapter reads the drawing as an apple better than ImageNet labels do.
    assert float(query @ out_drawing.vector) > float(query @ conse)
    fp = embedder.fingerprint()
    assert fp["adapter"] == load_weights().sha256[:12] and fp["gate"] is True
    assert fp["embedder"] == "adapter-minilm" and fp["dim"] == 384


def test_flat_colour_cue_hands_noisy_cut_out_photos_back_to_conse() -> None:
    """A product photo cut out on white passes for a drawing by its features alone; its
    pixels (noise and shading, no runs of one colour) give it back to ConSE."""
    weights = load_weights()
    scissors = load_image(SAMPLE / "images" / "tools" / "scissors1.jpg", max_pixels=10**8)
    cow = load_image(SAMPLE / "images" / "farm_animals" / "cow.jpg", max_pixels=10**8)
    flat = [flat_fraction(p) for p in (drawing(), scissors, cow)]
    assert flat[0] > 0.9 and flat[1] < 0.05 and flat[2] < 0.05, flat
    blank = Image.new("RGB", (64, 64), "white")
    assert flat_fraction(blank) == 1.0  # nothing but background: no evidence of a photo
    _, feats = ConseImageEmbedder(model_dir=MODEL_DIR).classifier.classify_images(
        [drawing(), scissors]
    )
    by_features = weights.in_domain(feats)
    with_pixels = weights.in_domain(feats, flat[:2])
    assert by_features[1] > 0.5 and with_pixels[1] < 0.05, (by_features, with_pixels)
    assert with_pixels[0] > 0.9 and abs(with_pixels[0] - by_features[0]) < 0.01
    embedder = AdapterImageEmbedder(model_dir=MODEL_DIR)
    assert embedder.embed([item(scissors)])[0].why["adapter"] < 0.05


def test_extra_views_only_for_trusted_pictures(monkeypatch: pytest.MonkeyPatch) -> None:
    embedder = AdapterImageEmbedder(model_dir=MODEL_DIR)
    embedder.ensure_loaded()
    assert embedder.weights.views == ("crop", "pad", "mirror")
    calls: list[tuple[str, int]] = []
    real = embedder.classifier.classify_images

    def spy(images: list[Image.Image], view: str = "crop") -> tuple[np.ndarray, np.ndarray]:
        calls.append((view, len(images)))
        return real(images, view=view)

    monkeypatch.setattr(embedder.classifier, "classify_images", spy)
    flat_sizes: list[tuple[int, int]] = []

    def flat_spy(image: Image.Image) -> float:
        flat_sizes.append(image.size)
        return flat_fraction(image)

    monkeypatch.setattr("mmsearch_cli.embedders.adapter.flat_fraction", flat_spy)
    cow = load_image(SAMPLE / "images" / "farm_animals" / "cow.jpg", max_pixels=10**8)
    out_drawing, out_cow = embedder.embed([item(drawing()), item(cow)])
    # One pass for both, then the two extra views for the drawing only: photos pay as before
    # (nor is their pixel flatness measured).
    assert calls == [("crop", 2), ("pad", 1), ("mirror", 1)]
    assert flat_sizes == [drawing().size]
    assert out_drawing.why["adapter"] > 0.5 and out_cow.why["adapter"] < VIEWS_FROM_TRUST
    # Training and the held-out test score pictures with gated_reading on every view's
    # inputs; it gives the embedder's vectors.
    weights, pictures = embedder.weights, [drawing(), cow]
    readings = []
    for view in weights.views:
        probs, feats = real(pictures, view=view)
        readings.append((feats, embedder.network_input(probs)))
    trust = weights.in_domain(readings[0][0], [flat_fraction(p) for p in pictures])
    conse = np.stack([e.vector for e in embedder.conse.embed([item(p) for p in pictures])])
    vectors = weights.combine(weights.gated_reading(readings, trust), conse, trust)
    assert np.allclose(vectors, [out_drawing.vector, out_cow.vector], atol=1e-5)

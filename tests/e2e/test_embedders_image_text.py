"""The builtin text and image embedders on real sample_data pictures with the real models:
MiniLM (ONNX) against sentence-transformers, the EfficientNet-Lite0 classifier, ConSE,
the visual features and OCR."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from mmsearch_cli.decoders.colours import dominant_colours
from mmsearch_cli.decoders.image import load_image
from mmsearch_cli.embedders.classifier import ImageClassifier, class_names, top_classes
from mmsearch_cli.embedders.conse import ConseImageEmbedder
from mmsearch_cli.embedders.minilm import MiniLMEmbedder
from mmsearch_cli.embedders.ocr import OcrReader
from mmsearch_cli.embedders.visual import VisualEmbedder
from mmsearch_cli.items import MediaItem
from mmsearch_cli.models import export
from mmsearch_cli.search.explain import why_line
from tests.conftest import ROOT

IMAGES = ROOT / "sample_data" / "images"
# ImageNet-1k fish classes: tench ... stingray, and snoek ... pufferfish.
FISH_CLASSES = set(range(0, 7)) | set(range(389, 398))
SENTENCES = [
    "a hammer",
    "Clownfish live among the stinging tentacles of sea anemones.",
    "Solar cookers concentrate sunlight to heat food without fuel. " * 30,  # > 256 tokens
]


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    env = os.environ.get("MMS_MODEL_DIR")
    return Path(env) if env else tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def minilm(model_dir: Path) -> MiniLMEmbedder:
    return MiniLMEmbedder(model_dir=model_dir)


@pytest.fixture(scope="module")
def classifier(model_dir: Path) -> ImageClassifier:
    return ImageClassifier(model_dir=model_dir)


@pytest.fixture(scope="module")
def conse(
    model_dir: Path, classifier: ImageClassifier, minilm: MiniLMEmbedder
) -> ConseImageEmbedder:
    return ConseImageEmbedder(model_dir=model_dir, classifier=classifier, text_embedder=minilm)


def item(name: str) -> MediaItem:
    img = load_image(IMAGES / name, max_pixels=89_478_485)
    return MediaItem(modality="image", payload=img, kind="image")


def test_minilm_onnx_matches_sentence_transformers(minilm: MiniLMEmbedder) -> None:
    from sentence_transformers import SentenceTransformer

    ours = minilm.embed_texts(SENTENCES)
    single = np.stack([minilm.embed_query_text(s) for s in SENTENCES])
    src = export.minilm_source()
    reference = SentenceTransformer(str(src), device="cpu").encode(
        SENTENCES, normalize_embeddings=True, show_progress_bar=False
    )
    assert ours.shape == (3, 384) and ours.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert (ours * reference).sum(axis=1).min() > 0.9999  # batched, padded per batch
    assert (single * reference).sum(axis=1).min() > 0.9999  # one by one, unpadded
    fingerprint = minilm.fingerprint()
    assert fingerprint["dim"] == 384 and fingerprint["pooling"] == "mean, normalised"
    assert len(fingerprint["weights"]) == 12


def test_minilm_query_does_not_import_torch(minilm: MiniLMEmbedder, model_dir: Path) -> None:
    minilm.ensure_loaded()  # the export, if needed, happens here and not in the child
    code = (
        "import sys; from pathlib import Path\n"
        "from mmsearch_cli.embedders.minilm import MiniLMEmbedder\n"
        f"v = MiniLMEmbedder(model_dir=Path({str(model_dir)!r})).embed_query_text('tape measure')\n"
        "print(v.shape[0], 'torch' in sys.modules, 'sentence_transformers' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.split() == ["384", "False", "False"], out.stderr


def test_classifier_top1_hammer_and_fish(classifier: ImageClassifier) -> None:
    names = class_names()
    hammer, fish = item("tools/hammer1.webp"), item("fishes/fish1.webp")
    results = classifier.analyse([hammer, fish])
    (hammer_probs, hammer_feats), (fish_probs, _) = results
    assert hammer_probs.shape == (1000,) and hammer_feats.shape == (1280,)
    assert abs(float(hammer_probs.sum()) - 1.0) < 1e-4
    assert names[top_classes(hammer_probs, 1)[0][0]] == "hammer"
    assert top_classes(fish_probs, 1)[0][0] in FISH_CLASSES
    # Memoised: a second embedder sharing the items pays no second forward pass.
    assert classifier.analyse([hammer])[0][0] is hammer_probs


def test_conse_puts_hammer_photos_near_the_words(
    conse: ConseImageEmbedder, minilm: MiniLMEmbedder
) -> None:
    hammers = [item(f"tools/hammer{i}.webp") for i in (1, 2, 3)]
    fishes = [item(f"fishes/fish{i}.webp") for i in (1, 2, 3)]
    embedded = conse.embed(hammers + fishes)
    vectors = np.stack([e.vector for e in embedded])
    assert vectors.shape == (6, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    sims = vectors @ minilm.embed_query_text("a hammer")
    assert sims[:3].min() > sims[3:].max()
    why = embedded[0].why
    assert why["labels"][0][0] == "hammer" and len(why["labels"]) == 5
    assert why["colours"] == [name for name, _ in dominant_colours(hammers[0].payload)]
    assert why_line(why).startswith("hammer 0.")
    assert np.allclose(conse.embed_query_text("a hammer"), minilm.embed_query_text("a hammer"))


def test_conse_class_matrix_is_cached(conse: ConseImageEmbedder, model_dir: Path) -> None:
    first = conse.class_matrix()
    cached = list((model_dir / "conse").glob(f"classes-{conse.wording}-*.npy"))
    assert first.shape == (1000, 384) and len(cached) >= 1
    assert np.array_equal(first, conse.class_matrix())


def test_visual_features_find_the_same_species(
    model_dir: Path, classifier: ImageClassifier
) -> None:
    visual = VisualEmbedder(model_dir=model_dir, classifier=classifier)
    # fish5 and fish14 are both swallowtail seaperch (corpus README).
    vectors = np.stack([e.vector for e in visual.embed([item(n) for n in (
        "fishes/fish5.webp", "fishes/fish14.webp", "tools/hammer1.webp")])])  # fmt: skip
    assert vectors.shape == (3, 1280)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def test_ocr_reads_a_rendered_word_and_skips_photos_without_text() -> None:
    img = Image.new("RGB", (640, 240), "white")
    ImageDraw.Draw(img).text(
        (40, 60), "STANLEY", fill="black", font=ImageFont.load_default(size=110)
    )
    reader = OcrReader()
    words = reader.read(img)
    assert "STANLEY" in [w.upper() for w, _ in words]
    assert all(conf >= 0.6 for _, conf in words)
    assert reader.read(item("tools/hammer1.webp").payload) == []


def test_ensure_exported_keeps_a_complete_export(model_dir: Path, minilm: MiniLMEmbedder) -> None:
    minilm.ensure_loaded()
    ImageClassifier(model_dir=model_dir).meta()
    onnx_file = export.minilm_dir(model_dir) / "model.onnx"
    before = onnx_file.stat().st_mtime_ns
    export.ensure_exported(model_dir)  # both exports exist: nothing to do
    assert onnx_file.stat().st_mtime_ns == before
    assert export.read_meta(export.effnet_lite0_dir(model_dir))["image_size"] == 224

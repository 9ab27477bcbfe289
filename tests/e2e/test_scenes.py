"""Places365 scenes on real corpus photos, through the packaged weights (exported to ONNX
by `mms models prepare`), and the photo embedder that puts them in the text space."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mmsearch_cli.decoders.image import load_image
from mmsearch_cli.embedders.minilm import shared_minilm
from mmsearch_cli.embedders.photo import PhotoImageEmbedder
from mmsearch_cli.embedders.scenes import SceneClassifier, scene_name
from mmsearch_cli.items import MediaItem
from mmsearch_cli.models import places
from tests.conftest import CORPUS, MODEL_DIR

IMAGES = CORPUS / "images"
pytestmark = pytest.mark.skipif(not IMAGES.is_dir(), reason="needs the shared corpus")


def _picture(name: str) -> MediaItem:
    return MediaItem("image", load_image(IMAGES / name, max_pixels=10**8), "image")


def test_scene_names_read_as_words() -> None:
    assert scene_name("/a/apartment_building/outdoor") == "apartment building, outdoor"
    assert scene_name("/i/igloo") == "igloo"


def test_the_export_folded_batch_norms_and_flushed_denormal_weights() -> None:
    meta = json.loads((places.export_dir(MODEL_DIR) / "meta.json").read_text())
    assert meta["classes"] == 365 and meta["feature_dim"] == 512
    assert meta["folded_denormals"] > 10_000  # what made onnxruntime ten times slower
    assert meta["weights_sha256"].startswith("f00745d59b9d")


@pytest.mark.parametrize(
    ("photo", "scene"),
    [
        ("household_objects/igloo.webp", "igloo"),
        ("renewable_energy/windmill.webp", "windmill"),
        ("monuments/empireState.webp", "skyscraper"),
        ("monuments/eiffelTower.jpg", "tower"),
    ],
)
def test_places_that_imagenet_has_no_class_for(photo: str, scene: str) -> None:
    classifier = SceneClassifier(model_dir=MODEL_DIR, size=160)
    reading = classifier.analyse([_picture(photo)])[0]
    top = classifier.top_scenes(reading.probs, 1)[0]
    assert top[0] == scene and top[1] > 0.5
    assert reading.outdoor == 1.0
    assert "snow" in classifier.top_attributes(reading.attributes, 8) or scene != "igloo"


def test_a_snow_house_query_finds_the_igloo_through_its_scene() -> None:
    """The igloo reads as a bell tower to ImageNet; its scene puts it near the words."""
    names = ["household_objects/igloo.webp", "monuments/eiffelTower.jpg",
             "renewable_energy/windmill.webp", "farm_animals/cow.jpg"]  # fmt: skip
    embedder = PhotoImageEmbedder(model_dir=MODEL_DIR)
    out = embedder.embed([_picture(n) for n in names])
    query = shared_minilm(Path(MODEL_DIR)).embed_query_text("a house made of snow")
    sims = np.stack([e.vector for e in out]) @ query
    assert int(np.argmax(sims)) == 0
    why = out[0].why
    assert why["scenes"][0][0] == "igloo" and why["io"] == "outdoors"
    plain = embedder.conse.embed([_picture(names[0])])[0].vector  # without the scene
    assert float(out[0].vector @ query) > float(plain @ query) + 0.05


def test_the_visual_space_puts_scene_features_beside_effnets() -> None:
    from mmsearch_cli.embedders.visual import SceneVisualEmbedder

    # fish5 and fish14 are both swallowtail seaperch (corpus README).
    names = ["fishes/fish5.webp", "fishes/fish14.webp", "tools/hammer1.webp"]
    out = SceneVisualEmbedder(model_dir=MODEL_DIR).embed([_picture(n) for n in names])
    vectors = np.stack([e.vector for e in out])
    assert vectors.shape == (3, 1792)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]

"""The st-clip embedder and hub resolution, on a tiny random CLIP built by the tests."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmsearch_cli.embedders.clip import SentenceTransformersImageTextEmbedder
from mmsearch_cli.errors import UsageError
from mmsearch_cli.items import MediaItem
from tests.conftest import SAMPLE
from tests.support.clip_fixture import IMAGE_SIZE, build_tiny_clip

IMAGES = [SAMPLE / "images/farm_animals/cat.webp", SAMPLE / "images/tools/hammer1.webp"]
TEXTS = [
    "a cat sitting on a chair",
    "A Red HAMMER, and pliers!",
    "château de Chambord en été",
    " ".join(["solar panels and a wind turbine under a blue sky"] * 10),  # > 77 tokens
]


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import sentence_transformers  # noqa: F401  (time the build, not the imports)

    start = time.process_time()
    folder = build_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny-clip")
    assert time.process_time() - start < 5
    return folder


@pytest.fixture(scope="module")
def tiny_text_tower(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny-text", text_only=True)


def _items() -> list[MediaItem]:
    images = [
        MediaItem(modality="image", payload=Image.open(p).convert("RGB"), kind="image")
        for p in IMAGES
    ]
    texts = [MediaItem(modality="text", payload=t, kind="chunk", text=t) for t in TEXTS]
    return [images[0], texts[0], images[1], *texts[1:]]  # mixed order on purpose


def _embedder(model: str | Path, model_dir: Path) -> SentenceTransformersImageTextEmbedder:
    return SentenceTransformersImageTextEmbedder(str(model), model_dir=model_dir)


def test_tiny_clip_embeds_images_and_texts_as_unit_vectors(tiny_clip: Path, tmp_path: Path):
    emb = _embedder(tiny_clip, tmp_path)
    config = json.loads((tiny_clip / "config.json").read_text())
    assert emb.space == "clip:tiny-clip"
    assert emb.accepts == {"text", "image"}
    out = emb.embed(_items())
    assert emb.dim == config["projection_dim"]
    assert len(out) == len(IMAGES) + len(TEXTS)
    for e in out:
        assert e.vector.shape == (emb.dim,)
        assert e.vector.dtype == np.float32
        assert np.linalg.norm(e.vector) == pytest.approx(1.0, abs=1e-5)
    # Mixed input order comes back in order: the two images differ from every text.
    vectors = np.stack([e.vector for e in out])
    assert not np.allclose(vectors[0], vectors[2])
    query = emb.embed_query_text(TEXTS[0])
    np.testing.assert_allclose(query, out[1].vector, atol=1e-6)


def test_embedding_is_deterministic_across_loads(tiny_clip: Path, tmp_path: Path):
    first = [e.vector for e in _embedder(tiny_clip, tmp_path / "a").embed(_items())]
    second = [e.vector for e in _embedder(tiny_clip, tmp_path / "b").embed(_items())]
    np.testing.assert_array_equal(np.stack(first), np.stack(second))


def test_fingerprint_follows_the_weights(tiny_clip: Path, tmp_path: Path):
    from safetensors.torch import load_file, save_file

    folder = shutil.copytree(tiny_clip, tmp_path / "copy")
    before = _embedder(folder, tmp_path / "models").fingerprint()
    assert _embedder(folder, tmp_path / "models").fingerprint() == before  # stable
    assert before["model"] == str(folder.resolve())
    assert before["dim"] == 24
    prep = before["image_prep"]
    assert prep["crop_size"] == {"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    assert len(prep["image_mean"]) == len(prep["image_std"]) == 3

    weights = load_file(folder / "model.safetensors")
    name = sorted(weights)[0]
    weights[name] = weights[name] + 0.01
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    after = _embedder(folder, tmp_path / "models").fingerprint()
    assert after["content_sha256"] != before["content_sha256"]
    assert {k: v for k, v in after.items() if k != "content_sha256"} == {
        k: v for k, v in before.items() if k != "content_sha256"
    }


def test_cached_hub_id_resolves_to_its_snapshot(
    tiny_clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: list[object]
):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "user-hf-cache"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "models" / "hub" / "models--sentence-transformers--tiny-clip"
    shutil.copytree(tiny_clip, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)

    emb = _embedder("tiny-clip", tmp_path / "models")
    assert emb.folder == repo / "snapshots" / commit
    fp = emb.fingerprint()
    assert fp["model"] == "sentence-transformers/tiny-clip"
    assert fp["revision"] == commit
    assert fp["space"] == "clip:tiny-clip"
    # The snapshot folder passed as a path is the same model, with the same fingerprint.
    assert _embedder(emb.folder, tmp_path / "models").fingerprint() == fp
    assert no_network == []


def test_text_only_tower_is_detected(tiny_text_tower: Path, tmp_path: Path):
    emb = _embedder(tiny_text_tower, tmp_path)
    assert emb.accepts == {"text"}  # read from files, before loading
    assert emb.fingerprint()["image_prep"] == {}
    vec = emb.embed_query_text("ein Hund im Park")
    assert vec.shape == (emb.dim,) == (24,)  # Dense projection, not the 32-wide hidden size
    assert emb.accepts == {"text"}  # and confirmed by the loaded model
    with pytest.raises(UsageError, match="does not accept image"):
        emb.embed(_items()[:1])


def test_onnx_text_path_matches_torch_without_importing_torch(tiny_clip: Path, tmp_path: Path):
    torch_emb = _embedder(tiny_clip, tmp_path / "torch-only")
    reference = [torch_emb.embed_query_text(t) for t in TEXTS]

    export = _embedder(tiny_clip, tmp_path / "models").export_query_onnx()
    meta = json.loads((export / "meta.json").read_text())
    assert meta["min_cosine"] > 0.9999
    onnx_emb = _embedder(tiny_clip, tmp_path / "models")
    assert onnx_emb.dim == 24  # from the export's metadata
    for text, ref in zip(TEXTS, reference, strict=True):
        vec = onnx_emb.embed_query_text(text)
        assert np.linalg.norm(vec) == pytest.approx(1.0, abs=1e-5)
        assert float(vec @ ref) > 0.9999

    code = (
        "import sys; from pathlib import Path;"
        "from mmsearch_cli.embedders.clip import SentenceTransformersImageTextEmbedder as E;"
        f"v = E({str(tiny_clip)!r}, model_dir=Path({str(tmp_path / 'models')!r}))"
        ".embed_query_text('a red hammer');"
        "print(v.shape[0], 'torch' in sys.modules, 'transformers' in sys.modules)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert proc.stdout.split() == ["24", "False", "False"]

"""Every supported image format, HEIC included, and audio-to-audio search end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from mmsearch_cli.decoders.audio import load
from tests.conftest import SAMPLE, invoke

ANIMALS = ["dog", "cow", "duck", "frog", "pig", "sheep"]


def test_every_image_format_is_indexed(tmp_path: Path) -> None:
    src = Image.open(SAMPLE / "images/tools/hammer1.webp").convert("RGB")
    root = tmp_path / "media"
    root.mkdir()
    formats = {"a.jpg": "JPEG", "b.png": "PNG", "c.webp": "WEBP", "d.bmp": "BMP", "e.tiff": "TIFF"}
    for name, fmt in formats.items():
        src.save(root / name, fmt)
    frames = [src, src.rotate(90)]
    frames[0].save(root / "f.gif", save_all=True, append_images=frames[1:])  # first frame used
    heif = pytest.importorskip("pillow_heif", reason="HEIC needs the optional pillow-heif")
    heif.register_heif_opener()
    src.save(root / "g.heic", "HEIF")
    res = invoke("index", root, "--index", tmp_path / "i", "--json", "-q")
    data = json.loads(res.out)
    assert res.code == 0 and data["failed"] == 0, data["failures"]
    assert data["embedded_by_modality"] == {"image": 7}
    hits = invoke("query", "a hammer", "-k", "7", "--format", "jsonl", "--index", tmp_path / "i")
    labels = [json.loads(x)["why"] for x in hits.out.splitlines()]
    assert len(labels) == 7 and all("hammer" in w for w in labels)


def test_audio_query_finds_the_other_half_of_its_recording(tmp_path: Path) -> None:
    """No second recording of one animal exists, so each recording is cut in two halves."""
    root = tmp_path / "media"
    root.mkdir()
    queries = {}
    for animal in ANIMALS:
        wave = load(SAMPLE / f"audio/animals/{animal}.mp3", 16000)
        half = len(wave) // 2
        sf.write(root / f"{animal}_b.wav", wave[half:], 16000)
        queries[animal] = tmp_path / f"{animal}_a.wav"
        sf.write(queries[animal], wave[:half], 16000)
    assert invoke("index", root, "--index", tmp_path / "i", "-q").code == 0
    correct = 0
    for animal, query in queries.items():
        res = invoke("query", "--audio", query, "-k", "1", "--format", "jsonl",
                     "--index", tmp_path / "i")  # fmt: skip
        row = json.loads(res.out)
        assert "audio" in row["spaces"]  # the audio-to-audio space answered
        correct += Path(row["path"]).name == f"{animal}_b.wav"
    assert correct >= len(ANIMALS) - 1, correct  # measured: see the closing note


def test_silence_gives_no_transcript(tmp_path: Path) -> None:
    root = tmp_path / "media"
    root.mkdir()
    sf.write(root / "quiet.wav", np.zeros(16000 * 3, dtype=np.float32), 16000)
    res = invoke("index", root, "--index", tmp_path / "i", "--json", "-q")
    assert res.code == 0
    info = json.loads(invoke("info", "--index", tmp_path / "i", "--json").out)
    assert info["segments"] == 1  # one sound window, no hallucinated speech

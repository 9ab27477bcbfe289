"""The shipped adapter weights have their recorded shapes, and the classifier's extra views
letterbox and mirror a picture (no model files: numpy and PIL only)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mmsearch_cli.embedders.adapter import load_weights
from mmsearch_cli.embedders.classifier import pad_square, preprocess
from tests.conftest import ROOT
from tests.support.pictures import drawing

WEIGHTS = ROOT / "mmsearch_cli" / "data" / "adapter_minilm.npz"


def test_shipped_weights_have_recorded_shapes() -> None:
    weights = load_weights()
    shapes = weights.meta["shapes"]
    assert {k: list(v.shape) for k, v in weights.arrays.items()} == shapes
    members, hidden = weights.meta["members"], weights.meta["hidden"]
    in_dim = 1280 + (384 if weights.conse_input else 0)
    assert shapes["mean"] == [1280] and shapes["scale"] == [1280]
    assert shapes["w1"] == [members, in_dim, hidden] and shapes["w2"] == [members, hidden, 384]
    assert shapes["domain_basis"] == [weights.meta["domain"]["k"], 1280]
    assert 0.0 <= weights.blend <= 10.0
    assert WEIGHTS.stat().st_size < 10_000_000
    out = weights.forward(np.zeros((2, 1280), np.float32), np.zeros((2, 384), np.float32))
    assert out.shape == (2, 384) and out.dtype == np.float32
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def red_mask(x: np.ndarray) -> np.ndarray:
    """Pixels of the drawn apple's red in a preprocessed (3, h, w) array in [-1, 1]."""
    return np.asarray((x[0] > 0.5) & (x[1] < 0))


def test_views_letterbox_and_mirror() -> None:
    square = drawing()
    crop = preprocess(square, 224)
    assert np.array_equal(preprocess(square, 224, view="pad"), crop)  # nothing to letterbox
    assert np.array_equal(preprocess(square, 224, view="mirror"), crop[:, :, ::-1])
    wide = Image.new("RGB", (512, 256), "white")
    wide.paste(square, (256, 0))  # the apple sits in the right half
    padded = pad_square(wide)
    assert padded.size == (512, 512)
    assert padded.getpixel((300, 10)) == (255, 255, 255)  # white band above
    # The centre crop cuts the apple at its right edge; the letterboxed view shows all of it.
    cropped, letterboxed = (red_mask(preprocess(wide, 224, view=v)) for v in ("crop", "pad"))
    assert cropped[:, -1].any()
    assert letterboxed.any() and not letterboxed[:, -20:].any() and not letterboxed[:50].any()
    with pytest.raises(ValueError):
        preprocess(square, 224, view="zoom")

"""Dominant colour names of a picture, for queries such as "a red car".

Each pixel of a small thumbnail gets one basic colour term by rules on its hue,
saturation and value (the eleven basic terms of Berlin and Kay, less cyan-vs-blue
distinctions nobody searches by); the names are ranked by the share of pixels.
About 1 ms per picture.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from mmsearch_cli.decoders.image import ALPHA_KEY

THUMB_SIDE = 48
MIN_SUBJECT = 0.05  # below this share of subject pixels, name the whole picture instead
BACKDROP_TOLERANCE = 24.0  # max channel difference (of 255) from the border's colour
BACKDROP_MIN_LIGHT = 200.0  # a backdrop is white or light grey: every channel at least this
BACKDROP_BORDER_SHARE = 0.9  # of the border that must be that colour to call it a backdrop

COLOUR_NAMES = (
    "black", "white", "grey", "red", "orange", "yellow", "green", "blue", "purple", "pink", "brown",
)  # fmt: skip

# Upper hue bounds in degrees for the chromatic names, walked in order.
_HUES = ((15, "red"), (40, "orange"), (70, "yellow"), (165, "green"), (255, "blue"),
         (290, "purple"), (335, "pink"), (360, "red"))  # fmt: skip


def _name_pixels(hsv: np.ndarray) -> np.ndarray:
    """Colour-name index per pixel of an (n, 3) HSV array scaled to [0, 1]."""
    h, s, v = hsv[:, 0] * 360.0, hsv[:, 1], hsv[:, 2]
    names = np.empty(len(hsv), dtype=object)
    edges = np.array([edge for edge, _ in _HUES])
    names[:] = np.array([name for _, name in _HUES], dtype=object)[
        np.searchsorted(edges, h, side="right").clip(0, len(_HUES) - 1)
    ]
    warm = (h < 50) | (h >= 335)
    orange = (h >= 15) & (h < 50)
    # Dark or dull warm hues read as brown (and light dull oranges: tan, wood); pale reds
    # read as pink; very pale oranges are cream, which people call white.
    names[warm & (v < 0.65) & (s > 0.25) & ~((h < 15) & (s > 0.6) & (v > 0.4))] = "brown"
    names[orange & (s < 0.5) & (v >= 0.65)] = "brown"
    names[((h < 15) | (h >= 335)) & (s < 0.45) & (v > 0.75)] = "pink"
    grey = s < 0.15 + 0.1 * (1 - v)  # dark colours need more saturation to show hue
    names[grey] = "grey"
    names[(grey | (orange & (s < 0.3))) & (v > 0.8)] = "white"
    names[v < 0.18] = "black"
    return names


def dominant_colours(
    img: Image.Image, n: int = 3, *, min_fraction: float = 0.1
) -> list[tuple[str, float]]:
    """Up to ``n`` (name, share of the subject) pairs, largest first, each >= ``min_fraction``.

    The subject is the picture less its background: transparent pixels (kept by the image
    decoder as ``ALPHA_KEY``) and a flat backdrop (``backdrop_mask``), so a red car cut
    out on a transparent or white background reads as red, not white.
    """
    thumb = img.convert("RGB")
    thumb.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BOX, reducing_gap=2.0)
    rgb = np.asarray(thumb, dtype=np.float32)
    keep = np.ones(rgb.shape[:2], dtype=bool)
    alpha = img.info.get(ALPHA_KEY)
    if isinstance(alpha, Image.Image):
        a = np.asarray(alpha.resize(thumb.size, Image.Resampling.BOX), dtype=np.float32)
        keep &= a >= 128
    keep &= ~backdrop_mask(rgb, keep)
    if keep.sum() < MIN_SUBJECT * keep.size:  # nearly all background: name what is there
        keep = np.ones_like(keep)
    hsv = np.asarray(thumb.convert("HSV"), dtype=np.float32)[keep].reshape(-1, 3) / 255.0
    names, counts = np.unique(_name_pixels(hsv), return_counts=True)
    shares = counts / counts.sum()
    ranked = sorted(zip(names.tolist(), shares.tolist(), strict=True), key=lambda x: -x[1])
    return [
        (str(name), round(float(share), 3)) for name, share in ranked[:n] if share >= min_fraction
    ]


def backdrop_mask(rgb: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Pixels of a flat white or light grey backdrop: when nearly all of the (kept) border
    is one such colour, as with product shots and cut-outs, every pixel close to it. A
    coloured backdrop ("a hammer on a blue background") stays part of the picture."""
    border = np.zeros(keep.shape, dtype=bool)
    border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
    edge = rgb[border & keep]
    if len(edge) < 8:
        return np.zeros(keep.shape, dtype=bool)
    colour = np.median(edge, axis=0)
    if colour.min() < BACKDROP_MIN_LIGHT or np.ptp(colour) > BACKDROP_TOLERANCE:
        return np.zeros(keep.shape, dtype=bool)  # a coloured backdrop is part of the look
    close = np.abs(rgb - colour).max(axis=2) <= BACKDROP_TOLERANCE
    if close[border & keep].mean() < BACKDROP_BORDER_SHARE:
        return np.zeros(keep.shape, dtype=bool)
    return close


def colour_phrase(colours: list[tuple[str, float]] | list[str]) -> str:
    """ "red", "red and white", "red, grey and white"."""
    names = [c if isinstance(c, str) else c[0] for c in colours]
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"

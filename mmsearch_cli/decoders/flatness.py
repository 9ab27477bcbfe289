"""How flat a picture's colours are: a pixel-level cue that tells drawings from photos.

Drawings, icons and emoji are filled with runs of one exact colour; a photograph, even a
product shot cut out on white, has sensor noise and shading on the object, so almost no
two neighbouring pixels are equal. The classifier's features alone read such cut-outs as
drawings (a pair of scissors on white became "drawing of wrench").
"""

from __future__ import annotations

import numpy as np
from PIL import Image

SIDE = 256  # long side the statistic is taken at; NEAREST keeps exact colours
OBJECT_DELTA = 24  # summed |RGB| difference from the background that marks an object pixel
MIN_PAIRS = 50  # this many object pixel pairs or fewer (a blank picture): call it flat


def flat_fraction(image: Image.Image) -> float:
    """Share of horizontally neighbouring object pixels with exactly equal colour, in [0, 1].

    The background is the most common colour along the border; pixels near it are left
    out, so a white or transparent backdrop does not make a photo look flat.
    """
    small = image.convert("RGB")
    if max(small.size) > SIDE:
        small = small.copy()
        small.thumbnail((SIDE, SIDE), Image.Resampling.NEAREST)
    a = np.asarray(small, dtype=np.int16)
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]]).reshape(-1, 3)
    colours, counts = np.unique(border, axis=0, return_counts=True)
    background = colours[counts.argmax()]
    obj = np.abs(a - background).sum(axis=-1) > OBJECT_DELTA
    pairs = obj[:, 1:] & obj[:, :-1]
    if pairs.sum() <= MIN_PAIRS:
        return 1.0
    same = np.abs(a[:, 1:] - a[:, :-1]).sum(axis=-1) == 0
    return float(same[pairs].mean())

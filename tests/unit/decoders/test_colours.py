"""Dominant colours of constructed pictures whose answer is known."""

from __future__ import annotations

import pytest
from PIL import Image

from mmsearch_cli.decoders.colours import colour_phrase, dominant_colours


@pytest.mark.parametrize(
    ("rgb", "name"),
    [
        ((220, 20, 30), "red"),
        ((30, 80, 200), "blue"),
        ((250, 250, 250), "white"),
        ((10, 10, 10), "black"),
    ],
)
def test_dominant_colour_of_a_solid_image(rgb: tuple[int, int, int], name: str) -> None:
    assert dominant_colours(Image.new("RGB", (200, 120), rgb))[0][0] == name


def test_colours_rank_by_share() -> None:
    img = Image.new("RGB", (100, 100), (250, 250, 250))
    img.paste((220, 20, 30), (0, 0, 100, 70))  # 70 % red, 30 % white
    colours = dominant_colours(img)
    assert [name for name, _ in colours] == ["red", "white"]
    assert colours[0][1] == pytest.approx(0.7, abs=0.05)
    assert colour_phrase(colours) == "red and white"

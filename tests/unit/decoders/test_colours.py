"""Dominant colours of constructed pictures whose answer is known."""

from __future__ import annotations

from pathlib import Path

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


def test_transparent_and_white_backdrops_do_not_count(tmp_path: Path) -> None:
    """A red object cut out on a transparent (or flat white) background reads as red."""
    from mmsearch_cli.decoders.image import load_image

    cut_out = Image.new("RGBA", (400, 300), (255, 255, 255, 0))
    cut_out.paste((200, 20, 25, 255), (150, 110, 250, 190))  # 7% of the picture
    cut_out.paste((150, 150, 150, 255), (170, 190, 230, 200))  # a grey wheel
    path = tmp_path / "car.png"
    cut_out.save(path)
    assert dominant_colours(load_image(path, max_pixels=10**8))[0][0] == "red"
    white = Image.new("RGB", (400, 300), (252, 252, 250))
    white.paste((200, 20, 25), (150, 110, 250, 190))
    assert dominant_colours(white)[0][0] == "red"
    blue = Image.new("RGB", (400, 300), (20, 40, 200))  # a coloured backdrop stays
    blue.paste((200, 20, 25), (150, 110, 250, 190))
    assert dominant_colours(blue)[0][0] == "blue"

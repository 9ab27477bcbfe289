"""Pictures drawn by the tests, whose content is known."""

from __future__ import annotations

from PIL import Image, ImageDraw


def drawing() -> Image.Image:
    """A flat-colour clip-art picture: a red apple with a green leaf and a brown stem."""
    img = Image.new("RGB", (256, 256), "white")
    pen = ImageDraw.Draw(img)
    pen.ellipse((48, 64, 208, 224), fill=(220, 30, 40), outline=(90, 0, 0), width=4)
    pen.rectangle((124, 30, 132, 72), fill=(110, 70, 30))
    pen.ellipse((134, 36, 190, 62), fill=(60, 170, 60), outline=(20, 80, 20), width=3)
    return img

"""SVG drawings rendered to pixels, treating the file as hostile.

An SVG is XML that may name other files: ``<image href="http://...">``, ``file:///etc/...``,
``<use href="other.svg#x">``, DTD entities (a "billion laughs" expands a 1 kB file into
gigabytes). So the file is parsed with ``defusedxml`` first (an entity declaration or an
external entity is refused; a plain ``<!DOCTYPE svg PUBLIC ...>`` is fine), every reference
that is not inside the document (``#id``) or inline (``data:``) is dropped, CSS ``url()`` and
``@import`` too, and resvg (MPL-2.0, via ``resvg-py``) renders what is left from a string.
resvg has no network code, but it does read an ``<image>`` at an absolute local path (measured
with resvg-py 0.5.0): dropping the references is what keeps it from doing so.
The declared size is bounded by ``max_pixels`` before rendering, like any image header.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from xml.etree import ElementTree as ET

from PIL import Image

from mmsearch_cli.errors import MediaError

MAX_SVG_BYTES = 20 * 1024 * 1024  # a drawing bigger than this is not a drawing
MIN_RENDER = 512  # icons (24 px) are rendered larger: vectors scale, the models need ~224 px
_HREF = ("href", "{http://www.w3.org/1999/xlink}href")
_URL = re.compile(r"url\(\s*['\"]?\s*(?!#)[^)]*\)", re.IGNORECASE)
_IMPORT = re.compile(r"@import[^;]*;?", re.IGNORECASE)
# CSS units to px at 96 dpi (what resvg uses); % and unitless are px.
_UNITS = {"": 1.0, "px": 1.0, "pt": 4 / 3, "pc": 16.0, "mm": 96 / 25.4, "cm": 96 / 2.54,
          "in": 96.0, "em": 16.0, "ex": 8.0}  # fmt: skip
_LENGTH = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?)\s*([a-z]*)\s*$", re.I)


def _length(value: str | None) -> float | None:
    match = _LENGTH.match(value or "")
    if not match or match.group(2).lower() not in _UNITS:
        return None
    number = float(match.group(1)) * _UNITS[match.group(2).lower()]
    return number if number > 0 else None


def declared_size(root: ET.Element) -> tuple[float, float]:
    """The drawing's size in px: width/height, else the viewBox, else resvg's 100x100."""
    width, height = _length(root.get("width")), _length(root.get("height"))
    box = [p for p in re.split(r"[\s,]+", (root.get("viewBox") or "").strip()) if p]
    box_w = box_h = None
    if len(box) == 4:
        try:
            box_w, box_h = float(box[2]), float(box[3])
        except ValueError:
            pass
        if not (box_w and box_h and box_w > 0 and box_h > 0):
            box_w = box_h = None
    if width and height:
        return width, height
    if box_w and box_h:  # one side given: the other follows the viewBox's aspect
        if width:
            return width, width * box_h / box_w
        if height:
            return height * box_w / box_h, height
        return box_w, box_h
    return width or 100.0, height or 100.0


def _defuse(root: ET.Element) -> None:
    """Drop every reference outside the document: only ``#id`` and ``data:`` stay."""
    for element in root.iter():
        for name in _HREF:
            value = (element.get(name) or "").strip()
            if value and not value.startswith("#") and not value.lower().startswith("data:"):
                del element.attrib[name]
        style = element.get("style")
        if style:
            element.set("style", _IMPORT.sub("", _URL.sub("none", style)))
        if element.tag.rsplit("}", 1)[-1] == "style" and element.text:
            element.text = _IMPORT.sub("", _URL.sub("none", element.text))


def render_svg(path: Path, *, max_pixels: int, work_size: int) -> Image.Image:
    """An SVG file to an RGBA picture of at most ``work_size`` px on its long side."""
    import defusedxml
    import defusedxml.ElementTree as DET

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MediaError(f"cannot read SVG: {exc.strerror or exc}") from None
    if len(data) > MAX_SVG_BYTES:
        raise MediaError(f"SVG is {len(data)} bytes, over the limit of {MAX_SVG_BYTES}")
    if data[:2] == b"\x1f\x8b":
        raise MediaError("compressed SVG (svgz) is not supported")
    try:
        root = DET.fromstring(data, forbid_entities=True, forbid_external=True)
    except (defusedxml.EntitiesForbidden, defusedxml.ExternalReferenceForbidden):
        raise MediaError("SVG declares XML entities (refused)") from None
    except (ET.ParseError, ValueError) as exc:
        raise MediaError(f"not a readable SVG: {exc}") from None
    if root.tag.rsplit("}", 1)[-1] != "svg":
        raise MediaError("not an SVG drawing (no <svg> root)")
    width, height = declared_size(root)
    if width * height > max_pixels:
        raise MediaError(f"SVG is {width:.0f}x{height:.0f} pixels, over the limit of {max_pixels}")
    long_side = max(width, height)
    scale = min(work_size, max(long_side, MIN_RENDER)) / long_side
    out_w, out_h = max(1, round(width * scale)), max(1, round(height * scale))
    _defuse(root)
    # Drawn at the output size in whole px: resvg-py refuses some units ("10mm": "SVG has
    # an invalid size") and leaves half-covered rows when it scales a fractional size.
    # Without a viewBox, user units are the declared px: the viewBox says so.
    if not root.get("viewBox"):
        root.set("viewBox", f"0 0 {width:.4f} {height:.4f}")
    root.set("width", str(out_w))
    root.set("height", str(out_h))
    markup = ET.tostring(root, encoding="unicode")
    import resvg_py

    try:
        # No background: transparent stays transparent (finish() composites on white and
        # keeps the alpha for the colour names).
        # optimize_speed: an embedded bitmap resampled without the quality filter, 39 vs
        # 123 ms for a 400x300 JPEG drawn at 512 px; the models see 224 px of it.
        png = resvg_py.svg_to_bytes(svg_string=markup, image_rendering="optimize_speed")
    except (ValueError, RuntimeError, OverflowError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise MediaError(f"cannot render SVG: {reason}") from None
    try:
        img = Image.open(io.BytesIO(bytes(png)))
        img.load()
    except (OSError, ValueError) as exc:
        raise MediaError(f"cannot render SVG: {exc}") from None
    return img

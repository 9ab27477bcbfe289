"""A photo file to its item and the facts people search photos by: when, where, with
what camera, and how many people are in it.

The facts land in two places: the file's metadata (``meta``: ``taken``, ``gps``, ``place``,
``camera``, ``people``, ``xmp``), which filters read (``--after``, ``--near``, ``--people``), and
the item's ``facts`` words ("2019 July summer Sunday evening", "Reykjavik, Iceland"),
which "why" shows and the lexical space indexes.

What a person wrote about a photo in Lightroom, darktable, digiKam... sits in an XMP
sidecar next to it (``IMG_1234.xmp`` or ``IMG_1234.jpg.xmp``): its title, description,
keywords and rating are read here (``read_xmp``), with ``defusedxml`` (no entities, no DTD).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PIL import Image

from mmsearch_cli.config import Settings
from mmsearch_cli.decoders.exif import PhotoExif, date_words, read_exif
from mmsearch_cli.decoders.image import load_image
from mmsearch_cli.errors import ModelUnavailableError
from mmsearch_cli.items import RAW_EXTENSIONS, MediaItem

log = logging.getLogger(__name__)

MAX_XMP_BYTES = 2 * 1024 * 1024  # a sidecar is a few kB; a bigger one is not read
_RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_XMP_NS = "{http://ns.adobe.com/xap/1.0/}"
_LR = "{http://ns.adobe.com/lightroom/1.0/}"


def xmp_sidecar(path: Path) -> Path | None:
    """``IMG_1234.xmp`` / ``.XMP`` (darktable, Lightroom) or ``IMG_1234.jpg.xmp`` (digiKam)."""
    for candidate in (path.with_suffix(".xmp"), path.with_suffix(".XMP"),
                      path.with_name(path.name + ".xmp")):  # fmt: skip
        if candidate != path and candidate.is_file():
            return candidate
    return None


def _clean_text(value: str | None, limit: int = 500) -> str:
    text = " ".join((value or "").split())
    return "".join(ch for ch in text if ch.isprintable())[:limit]


def _items(element: Any) -> list[str]:
    """The texts of a property: its rdf:Alt / rdf:Bag / rdf:Seq items, or its own text."""
    items = [_clean_text(li.text) for li in element.iter(f"{_RDF}li")]
    if not items and element.text:
        items = [_clean_text(element.text)]
    return [i for i in items if i]


def read_xmp(path: Path) -> dict[str, Any]:
    """Title, description, keywords and rating of an XMP sidecar ({} if none or unreadable)."""
    import defusedxml
    import defusedxml.ElementTree as DET

    try:
        if path.stat().st_size > MAX_XMP_BYTES:
            return {}
        root = DET.fromstring(path.read_bytes(), forbid_dtd=True)
    except (OSError, ValueError, SyntaxError, defusedxml.DefusedXmlException) as exc:
        log.debug("XMP sidecar %s not read: %s", path, exc)
        return {}
    title: list[str] = []
    description: list[str] = []
    keywords: list[str] = []
    rating: str | None = None
    for desc in root.iter(f"{_RDF}Description"):
        rating = desc.get(f"{_XMP_NS}Rating") or rating
        title += [_clean_text(desc.get(f"{_DC}title"))]
        for child in desc:
            if child.tag == f"{_DC}title":
                title += _items(child)[:1]  # the x-default (first) language
            elif child.tag == f"{_DC}description":
                description += _items(child)[:1]
            elif child.tag == f"{_DC}subject":
                keywords += _items(child)
            elif child.tag == f"{_LR}hierarchicalSubject":  # "Animals|Birds|Owl"
                keywords += [p.strip() for i in _items(child) for p in i.split("|")]
            elif child.tag == f"{_XMP_NS}Rating":
                rating = child.text
    out: dict[str, Any] = {}
    if title := [t for t in title if t]:
        out["title"] = title[0]
    if description:
        out["description"] = description[0]
    keywords = list(dict.fromkeys(k for k in keywords if k))[:100]
    if keywords:
        out["keywords"] = keywords
    try:
        value = int(float((rating or "").strip()))
        if -1 <= value <= 5:  # -1: rejected; 0: unrated
            out["rating"] = value
    except ValueError:
        pass
    return out


def xmp_words(xmp: dict[str, Any]) -> str:
    """Title, description and keywords as one line of words ("" for none)."""
    parts = [xmp.get("title", ""), xmp.get("description", ""), *xmp.get("keywords", [])]
    words: list[str] = []
    for part in parts:  # a title often repeats as a keyword: said once
        if part and part not in words:
            words.append(part)
    return ", ".join(words)


def people_words(count: int | None) -> str:
    """Words for a face count: what people type when they look for such a photo."""
    if not count:
        return ""
    if count == 1:
        return "a portrait of a person"
    if count == 2:
        return "two people, a couple"
    if count <= 5:
        return f"{count} people, a small group of people"
    return "a group of people, a crowd"


def place_words(place: dict[str, str]) -> str:
    """ "Reykjavik, Capital Region, Iceland" (a part that repeats the one before is dropped)."""
    parts: list[str] = []
    for key in ("city", "region", "country"):
        value = place.get(key)
        if key == "country" and place.get("country_code"):  # "US" is typed too
            value = f"{value} {place['country_code']}" if value else place["country_code"]
        if value and value not in parts:
            parts.append(value)
    return ", ".join(parts)


def count_people(img: Image.Image, settings: Settings) -> int | None:
    """Faces that matter in the picture, or None when the face model is not available."""
    from mmsearch_cli.decoders.faces import shared_detector

    try:
        return shared_detector(settings.model_dir).count(img)
    except ModelUnavailableError as exc:  # the photo is still worth indexing without it
        log.debug("no face count: %s", exc)
        return None


def decode_photo(path: Path, settings: Settings) -> tuple[dict[str, Any], list[MediaItem]]:
    img = load_image(path, max_pixels=settings.limits.max_image_pixels)
    meta: dict[str, Any] = {"width": img.width, "height": img.height}
    facts: dict[str, str] = {}
    sidecar = xmp_sidecar(path)
    if sidecar is not None and (xmp := read_xmp(sidecar)):
        meta["xmp"] = xmp
        if words := xmp_words(xmp):
            facts["xmp"] = words
    exif = read_exif(path)
    if exif == PhotoExif() and path.suffix.lower() in RAW_EXTENSIONS and img.info.get("exif"):
        exif = read_exif(img.info["exif"])  # CR3, RAF...: the embedded preview's EXIF
    latitude = None
    if exif.gps:
        latitude = exif.gps[0]
        meta["gps"] = list(exif.gps)
        from mmsearch_cli.decoders.places import reverse

        place = reverse(*exif.gps)
        if place is not None:
            meta["place"] = {
                "city": place.city,
                "region": place.region,
                "country": place.country,
                "country_code": place.country_code,
            }
            facts["place"] = place_words(meta["place"])
    if exif.taken:
        meta["taken"] = exif.taken
        facts["date"] = date_words(exif.taken, latitude)
    if exif.camera:
        meta["camera"] = exif.camera
        facts["camera"] = exif.camera
    people = count_people(img, settings)
    item_meta: dict[str, Any] = {}
    if people is not None:
        meta["people"] = people
        item_meta["people"] = people
        if people:
            facts["people"] = people_words(people)
    if facts:
        item_meta["facts"] = facts
    return meta, [MediaItem(modality="image", payload=img, kind="image", meta=item_meta)]

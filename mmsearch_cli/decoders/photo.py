"""A photo file to its item and the facts people search photos by: when, where, with
what camera, and how many people are in it.

The facts land in two places: the file's metadata (``meta``: ``taken``, ``gps``, ``place``,
``camera``, ``people``), which filters read (``--after``, ``--near``, ``--people``), and
the item's ``facts`` words ("2019 July summer Sunday evening", "Reykjavik, Iceland"),
which "why" shows and the lexical space indexes.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PIL import Image

from mmsearch_cli.config import Settings
from mmsearch_cli.decoders.exif import date_words, read_exif
from mmsearch_cli.decoders.image import load_image
from mmsearch_cli.errors import ModelUnavailableError
from mmsearch_cli.items import MediaItem

log = logging.getLogger(__name__)


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
    exif = read_exif(path)
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

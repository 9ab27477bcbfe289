"""Photos as people search them, end to end through the real `mms` command: scenes,
people, places, dates and cameras, on copies of corpus photos with EXIF written here.

The copies get opaque names (p1.jpg...), so nothing found here comes from a file name.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import CORPUS, invoke
from tests.support.results import file_meta, names
from tests.support.results import query as search

IMAGES = CORPUS / "images"
pytestmark = pytest.mark.skipif(not IMAGES.is_dir(), reason="needs the shared corpus")


def _dms(value: float) -> tuple[float, float, float]:
    value = abs(value)
    d = int(value)
    m = int((value - d) * 60)
    return float(d), float(m), round((value - d - m / 60) * 3600, 3)


def _gps(lat: float, lon: float) -> dict[int, object]:
    return {1: "N" if lat >= 0 else "S", 2: _dms(lat), 3: "E" if lon >= 0 else "W", 4: _dms(lon)}


def _copy(source: str, dest: Path, *, when: str | None = None,
          gps: dict[int, object] | None = None, make: str | None = None,
          model: str | None = None) -> None:  # fmt: skip
    """A JPEG copy of a corpus photo with the given EXIF fields written by Pillow."""
    exif = Image.Exif()
    if when:
        exif.get_ifd(0x8769)[0x9003] = when
    if gps:
        exif.get_ifd(0x8825).update(gps)
    if make:
        exif[0x010F] = make
    if model:
        exif[0x0110] = model
    with Image.open(IMAGES / source) as img:
        img.convert("RGB").save(dest, "JPEG", quality=92, exif=exif)


PHOTOS = {
    # An igloo in Reykjavik, a winter morning, a Canon.
    "p1.jpg": ("household_objects/igloo.webp", "2019:01:20 10:15:00", _gps(64.1466, -21.9426),
               "Canon", "Canon EOS 5D Mark II"),
    # Five mariachi players in Mexico City, a summer evening, a Nikon.
    "p2.jpg": ("world_music/mexico.webp", "2021:07:03 20:30:00", _gps(19.4326, -99.1332),
               "NIKON CORPORATION", "NIKON D750"),
    # Opera singers by the Eiffel Tower (two bare faces).
    "p3.jpg": ("world_music/italy.webp", "2018:05:12 14:00:00", _gps(48.8584, 2.2945),
               None, None),
    # Absurd EXIF: latitude 200, the year 0.
    "p4.jpg": ("farm_animals/cat.webp", "0000:00:00 00:00:00",
               {1: "N", 2: (200.0, 0.0, 0.0), 3: "E", 4: (10.0, 0.0, 0.0)}, None, None),
    # No EXIF at all; a windmill in a field.
    "p5.jpg": ("renewable_energy/windmill.webp", None, None, None, None),
}  # fmt: skip


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    root = tmp_path_factory.mktemp("photos")
    for name, (source, when, gps, make, model) in PHOTOS.items():
        _copy(source, root / name, when=when, gps=gps, make=make, model=model)
    index = tmp_path_factory.mktemp("photo-index")
    res = invoke("index", root, "--index", index, "--json", "-q")
    assert res.code == 0, res.err
    summary = json.loads(res.out)
    assert summary["failed"] == 0 and summary["embedded_by_modality"]["image"] == len(PHOTOS)
    yield root, index


def test_exif_facts_are_stored_and_absurd_ones_dropped(library: tuple[Path, Path]) -> None:
    _, index = library
    igloo = file_meta(index, "p1.jpg")
    assert igloo["taken"] == "2019-01-20T10:15:00" and igloo["camera"] == "Canon EOS 5D Mark II"
    place = igloo["place"]
    assert isinstance(place, dict) and place["country"] == "Iceland"
    assert str(place["city"]).startswith("Reykjav")
    cat = file_meta(index, "p4.jpg")  # indexed, without the absurd fields
    assert "gps" not in cat and "taken" not in cat and "place" not in cat
    assert "gps" not in file_meta(index, "p5.jpg")


def test_people_are_counted_and_filtered(library: tuple[Path, Path]) -> None:
    _, index = library
    assert file_meta(index, "p2.jpg")["people"] == 5
    assert file_meta(index, "p1.jpg")["people"] == 0
    assert set(names(search(index, "musicians", "--people", "2+"))) == {"p2.jpg", "p3.jpg"}
    assert set(names(search(index, "musicians", "--people", "5"))) == {"p2.jpg"}
    nobody = set(names(search(index, "a photo", "--people", "0")))
    assert nobody == {"p1.jpg", "p4.jpg", "p5.jpg"}
    res = invoke("query", "x", "--people", "two", "--index", index, "--no-server")
    assert res.code == 2 and "--people" in res.err and "Traceback" not in res.err


def test_near_filters_by_place_name_and_by_coordinates(library: tuple[Path, Path]) -> None:
    _, index = library
    assert names(search(index, "a photo", "--near", "Reykjavik")) == ["p1.jpg"]
    assert names(search(index, "a photo", "--near", "Iceland")) == ["p1.jpg"]
    assert names(search(index, "a photo", "--near", "48.86,2.35:20km")) == ["p3.jpg"]
    assert search(index, "a photo", "--near", "48.86,2.35:1km") == []
    res = invoke("query", "a photo", "--near", "Springfield", "--index", index, "--no-server")
    assert res.code == 2 and "ambiguous" in res.err and "Springfield, " in res.err
    res = invoke("query", "a photo", "--near", "95,10", "--index", index, "--no-server")
    assert res.code == 2 and len(res.err.strip().splitlines()) <= 2


def test_date_camera_and_place_words_match_lexically(library: tuple[Path, Path]) -> None:
    _, index = library
    assert names(search(index, "canon", "--space", "lexical"))[:1] == ["p1.jpg"]
    assert names(search(index, "nikon 2021", "--space", "lexical"))[:1] == ["p2.jpg"]
    assert names(search(index, "winter morning", "--space", "lexical"))[:1] == ["p1.jpg"]
    assert names(search(index, "Mexico", "--space", "lexical"))[:1] == ["p2.jpg"]


def test_scenes_find_places_and_why_says_so(library: tuple[Path, Path]) -> None:
    _, index = library
    rows = search(index, "a house made of snow", "-k", "1")
    assert names(rows) == ["p1.jpg"]
    why = str(rows[0]["why"])
    assert "scene: igloo" in why and "Reykjav" in why and "2019 January winter" in why
    band = search(index, "a group of people", "-k", "2", "--type", "image")
    assert set(names(band)) == {"p2.jpg", "p3.jpg"}
    assert "5 people" in str(band[names(band).index("p2.jpg")]["why"])

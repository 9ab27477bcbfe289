"""EXIF facts: capture time, GPS and camera are read from real JPEGs written here with
Pillow, and absurd values are dropped without an error."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from mmsearch_cli.decoders.exif import (
    camera_name,
    date_words,
    parse_exif_time,
    parse_gps,
    read_exif,
    season,
)


def write_photo(path: Path, *, when: str | None = None, gps: dict[int, object] | None = None,
                make: str | None = None, model: str | None = None) -> Path:  # fmt: skip
    img = Image.new("RGB", (64, 48), (200, 30, 30))
    exif = Image.Exif()
    if when is not None:
        exif.get_ifd(0x8769)[0x9003] = when
    if gps is not None:
        exif.get_ifd(0x8825).update(gps)
    if make:
        exif[0x010F] = make
    if model:
        exif[0x0110] = model
    img.save(path, exif=exif)
    return path


def dms(value: float) -> tuple[float, float, float]:
    d = int(value)
    m = int((value - d) * 60)
    return (float(d), float(m), round((value - d - m / 60) * 3600, 4))


def test_reads_time_gps_and_camera(tmp_path: Path) -> None:
    gps = {1: "N", 2: dms(64.1466), 3: "W", 4: dms(21.9426)}
    photo = write_photo(tmp_path / "a.jpg", when="2019:07:14 18:03:22", gps=gps,
                        make="Canon", model="Canon EOS 5D Mark II")  # fmt: skip
    exif = read_exif(photo)
    assert exif.taken == "2019-07-14T18:03:22"
    assert exif.gps is not None
    assert exif.gps[0] == pytest.approx(64.1466, abs=1e-4)
    assert exif.gps[1] == pytest.approx(-21.9426, abs=1e-4)
    assert exif.camera == "Canon EOS 5D Mark II"


@pytest.mark.parametrize(
    ("gps", "why"),
    [
        ({1: "N", 2: (200.0, 0.0, 0.0), 3: "E", 4: (10.0, 0.0, 0.0)}, "latitude 200"),
        ({1: "N", 2: (0.0, 0.0, 0.0), 3: "E", 4: (0.0, 0.0, 0.0)}, "no fix (0, 0)"),
        ({1: "N", 2: (10.0, 75.0, 0.0), 3: "E", 4: (10.0, 0.0, 0.0)}, "75 minutes"),
        ({1: "N", 3: "E", 4: (10.0, 0.0, 0.0)}, "no latitude"),
    ],
)
def test_absurd_gps_is_dropped_not_fatal(tmp_path: Path, gps: dict[int, object], why: str) -> None:
    photo = write_photo(tmp_path / "b.jpg", when="2020:01:02 03:04:05", gps=gps)
    exif = read_exif(photo)
    assert exif.gps is None, why
    assert exif.taken == "2020-01-02T03:04:05"  # the rest of the block still counts


@pytest.mark.parametrize(
    "raw",
    ["0000:00:00 00:00:00", "0001:01:01 00:00:00", "2019:13:01 00:00:00", "garbage", "", None, 42],
)
def test_absurd_times_are_dropped(raw: object) -> None:
    assert parse_exif_time(raw) is None


def test_photo_without_exif_and_damaged_files(tmp_path: Path) -> None:
    plain = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(plain)
    assert read_exif(plain).taken is None and read_exif(plain).gps is None
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe1\x00\x10Exif\x00\x00garbage")
    assert read_exif(broken).camera is None


def test_date_words_and_southern_seasons() -> None:
    assert date_words("2019-07-14T18:03:22") == "2019 July summer Sunday evening"
    assert date_words("2019-07-14T08:00:00", latitude=-33.9) == "2019 July winter Sunday morning"
    assert season(12, None) == "winter" and season(12, -30.0) == "summer"
    assert parse_gps({}) is None


def test_camera_names() -> None:
    assert camera_name("NIKON CORPORATION", "NIKON D750") == "NIKON D750"
    assert camera_name("Apple", "iPhone 12") == "Apple iPhone 12"
    assert camera_name(None, None) is None
    assert camera_name(b"Canon\x00", b"EOS R\x00\x00") == "Canon EOS R"

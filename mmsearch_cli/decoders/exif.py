"""What a photo's EXIF block says that people search by: when (capture time), where (GPS)
and with what (camera make and model), each checked before it is believed.

Cameras and editors write absurd values: latitude 200, the year 0, "0000:00:00 00:00:00",
GPS blocks with no fix (0, 0), rationals with a zero denominator. Each such field is left
out and the photo is indexed without it; nothing here raises.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from PIL import Image

_EXIF_IFD = 0x8769
_GPS_IFD = 0x8825
_DATETIME_ORIGINAL = 0x9003
_DATETIME = 0x0132
_MAKE, _MODEL = 0x010F, 0x0110
_FIRST_YEAR = 1826  # the oldest surviving photograph; earlier dates are clock errors

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")  # fmt: skip
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_NORTH_SEASONS = ("winter", "spring", "summer", "autumn")


@dataclass(frozen=True)
class PhotoExif:
    taken: str | None = None  # ISO 8601, local camera time
    gps: tuple[float, float] | None = None  # latitude, longitude in degrees
    camera: str | None = None  # "Canon EOS 5D Mark II"


def read_exif(source: Path | bytes) -> PhotoExif:
    """The trusted fields of a photo's EXIF block (all None if it has none): from the file
    at a path, or from an EXIF block's bytes (a RAW preview's ``img.info["exif"]``)."""
    try:
        if isinstance(source, bytes):
            exif = Image.Exif()
            exif.load(source)
            fields = _fields(exif)
        else:
            try:
                with Image.open(source) as img:
                    fields = _fields(img.getexif())
            except Exception:  # a RAW Pillow does not open (16-bit CFA): its TIFF head
                fields = _tiff_fields(source)
    except Exception:  # metadata is a bonus; a damaged block never costs the photo
        return PhotoExif()
    raw_time, gps_ifd, make, model = fields
    return PhotoExif(taken=parse_exif_time(raw_time), gps=parse_gps(gps_ifd),
                     camera=camera_name(make, model))  # fmt: skip


def _tiff_fields(path: Path) -> tuple[Any, Any, Any, Any]:
    """``_fields`` of a TIFF-based RAW Pillow does not open (a 16-bit CFA in IFD0: DNG, NEF,
    ARW...), read IFD by IFD from the file; raises if the file is not a TIFF."""
    from PIL.TiffImagePlugin import ImageFileDirectory_v2

    def ifd_at(fh: Any, header: bytes, offset: int) -> ImageFileDirectory_v2:
        ifd = ImageFileDirectory_v2(header)
        fh.seek(offset)
        ifd.load(fh)
        return ifd

    with open(path, "rb") as fh, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        header = fh.read(8)
        if header[:4] not in (b"II*\x00", b"MM\x00*"):
            raise ValueError("not a TIFF")
        ifd0 = ifd_at(fh, header, ImageFileDirectory_v2(header).next)
        sub = ifd_at(fh, header, ifd0[_EXIF_IFD]) if _EXIF_IFD in ifd0 else {}
        gps = ifd_at(fh, header, ifd0[_GPS_IFD]) if _GPS_IFD in ifd0 else {}
        raw_time = sub.get(_DATETIME_ORIGINAL) or ifd0.get(_DATETIME)
        return raw_time, dict(gps), ifd0.get(_MAKE), ifd0.get(_MODEL)


def _fields(exif: Image.Exif) -> tuple[Any, Any, Any, Any]:
    sub = exif.get_ifd(_EXIF_IFD)
    raw_time = sub.get(_DATETIME_ORIGINAL) or exif.get(_DATETIME)
    return raw_time, exif.get_ifd(_GPS_IFD), exif.get(_MAKE), exif.get(_MODEL)


def parse_exif_time(raw: Any) -> str | None:
    """``"2019:07:14 18:03:22"`` -> ``"2019-07-14T18:03:22"``; None for anything implausible."""
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", "replace")
    if not isinstance(raw, str):
        return None
    text = raw.strip().rstrip("\x00")
    try:
        when = datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    if not _FIRST_YEAR <= when.year <= datetime.now().year + 1:
        return None
    return when.isoformat()


def _number(value: Any) -> float | None:
    try:
        if isinstance(value, tuple) and len(value) == 2:  # an unreduced rational
            num, den = value
            return float(num) / float(den) if float(den) else None
        out = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return out if math.isfinite(out) else None


def _degrees(dms: Any, ref: Any) -> float | None:
    if not isinstance(dms, tuple | list) or len(dms) != 3:
        return None
    parts = [_number(v) for v in dms]
    if any(p is None or p < 0 for p in parts):
        return None
    d, m, s = (float(p) for p in parts if p is not None)
    if m >= 60 or s >= 60:
        return None
    value = d + m / 60 + s / 3600
    ref = ref.decode("ascii", "replace") if isinstance(ref, bytes) else str(ref or "")
    return -value if ref.strip().upper()[:1] in ("S", "W") else value


def parse_gps(gps: Any) -> tuple[float, float] | None:
    """(latitude, longitude) from an EXIF GPS IFD, or None: no fix, out of range, (0, 0)."""
    try:
        lat = _degrees(gps.get(2), gps.get(1))
        lon = _degrees(gps.get(4), gps.get(3))
    except AttributeError:
        return None
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    if abs(lat) < 1e-6 and abs(lon) < 1e-6:  # what receivers write before a fix
        return None
    return round(lat, 6), round(lon, 6)


def _clean(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = " ".join(str(value or "").replace("\x00", " ").split())
    return "".join(ch for ch in text if ch.isprintable())[:60]


def camera_name(make: Any, model: Any) -> str | None:
    """ "Canon" + "Canon EOS 5D" -> "Canon EOS 5D"; "NIKON CORPORATION" + "NIKON D750" ->
    "NIKON D750": the model usually repeats the brand, so it is said once."""
    make_s, model_s = _clean(make), _clean(model)
    brand = make_s.split(" ")[0] if make_s else ""
    if model_s and brand and model_s.lower().startswith(brand.lower()):
        return model_s
    return " ".join(p for p in (brand, model_s) if p) or None


def season(month: int, latitude: float | None) -> str:
    """Meteorological season; the southern hemisphere's is six months apart."""
    index = (month % 12) // 3
    if latitude is not None and latitude < 0:
        index = (index + 2) % 4
    return _NORTH_SEASONS[index]


def part_of_day(hour: int) -> str:
    if 5 <= hour < 12:
        return "morning"
    if 12 <= hour < 17:
        return "afternoon"
    if 17 <= hour < 21:
        return "evening"
    return "night"


def date_words(taken: str, latitude: float | None = None) -> str:
    """ "2019-07-14T18:03:22" -> "2019 July summer Sunday evening": the words a person
    types for a date ("snow 2019", "last summer" is for the date filters)."""
    try:
        when = datetime.fromisoformat(taken)
    except ValueError:
        return ""
    return " ".join((str(when.year), MONTHS[when.month - 1], season(when.month, latitude),
                     WEEKDAYS[when.weekday()], part_of_day(when.hour)))  # fmt: skip

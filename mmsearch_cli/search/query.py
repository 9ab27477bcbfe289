"""What a search asks for: the query, its options and filters, and the hits it returns.

Filters (type, path glob, dates, sizes, excluded paths) select files; a file passes on its
record alone, so a filter never decodes anything.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from mmsearch_cli.errors import UsageError
from mmsearch_cli.items import modality_of
from mmsearch_cli.search.fusion import FEEDBACK_WEIGHT, RRF_K
from mmsearch_cli.store.index import IndexReader
from mmsearch_cli.store.state import FileRecord


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
    feedback: float = FEEDBACK_WEIGHT  # visual feedback for text queries (0: off)
    rrf_k: float = RRF_K


def allowed_segments(reader: IndexReader, opts: SearchOptions) -> set[int] | None:
    """Segment ids passing the structured filters, or None when there is no filter."""
    if not (
        opts.types or opts.path_glob or opts.after or opts.before
        or opts.min_size is not None or opts.max_size is not None or opts.exclude_paths
    ):  # fmt: skip
        return None
    keep: set[int] = set()
    for rec in reader.state.files.values():
        if rec.status == "ok" and file_passes(rec, opts):
            keep.update(rec.segments)
    return keep


def file_passes(rec: FileRecord, opts: SearchOptions) -> bool:
    if opts.types and rec.modality not in opts.types:
        return False
    if opts.exclude_paths and rec.path in opts.exclude_paths:
        return False
    if opts.path_glob and not (
        fnmatch.fnmatch(rec.path, opts.path_glob)
        or fnmatch.fnmatch(os.path.basename(rec.path), opts.path_glob)
    ):
        return False
    when = file_time(rec)
    if opts.after and when < opts.after.timestamp():
        return False
    if opts.before and when >= opts.before.timestamp():
        return False
    if opts.min_size is not None and rec.size < opts.min_size:
        return False
    return not (opts.max_size is not None and rec.size > opts.max_size)


def file_time(rec: FileRecord) -> float:
    """Capture time from EXIF when there is one, else the file's mtime."""
    taken = rec.meta.get("taken")
    if taken:
        try:
            return datetime.fromisoformat(taken).timestamp()
        except ValueError:
            pass
    return rec.mtime_ns / 1e9

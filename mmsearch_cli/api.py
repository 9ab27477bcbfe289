"""The Python API in two calls, for scripts and notebooks (the CLI uses the same pieces).

import mmsearch_cli as mms
mms.index(["~/Pictures"], index_dir="~/idx")
for hit in mms.query("a red dress", index_dir="~/idx", k=5):
    print(hit.rank, hit.score, hit.path, hit.why)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mmsearch_cli.indexing.run import IndexSummary
    from mmsearch_cli.search.engine import Hit


def index(
    paths: list[str | os.PathLike[str]], *, index_dir: str | os.PathLike[str] | None = None,
    **options: Any,
) -> IndexSummary:  # fmt: skip
    """Index folders or files incrementally. ``options`` are ``IndexOptions`` fields."""
    from mmsearch_cli.config import load_settings
    from mmsearch_cli.indexing.run import IndexOptions, run_index

    settings = load_settings(index_dir=Path(index_dir) if index_dir is not None else None)
    roots = [Path(p).expanduser() for p in paths]
    return run_index(roots, settings, IndexOptions(**options))


def query(
    text: str | None = None, *, media: str | os.PathLike[str] | None = None,
    index_dir: str | os.PathLike[str] | None = None, k: int = 10, **options: Any,
) -> list[Hit]:  # fmt: skip
    """Search with text or a media file. ``options`` are ``SearchOptions`` fields."""
    from mmsearch_cli.config import load_settings
    from mmsearch_cli.errors import UsageError
    from mmsearch_cli.search.engine import Query, SearchOptions, search
    from mmsearch_cli.store.index import IndexReader

    if (text is None) == (media is None):
        raise UsageError("give exactly one of text or media")
    settings = load_settings(index_dir=Path(index_dir) if index_dir is not None else None)
    q = Query(text=text) if text is not None else Query(media=Path(media).expanduser().resolve())  # type: ignore[arg-type]
    exclude = frozenset({str(q.media)}) if q.media else frozenset()
    opts = SearchOptions(k=k, exclude_paths=exclude, **options)
    return search(IndexReader.open(settings.index_dir), q, settings, opts)

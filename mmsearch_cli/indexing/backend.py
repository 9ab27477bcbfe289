"""``mms index`` and ``mms forget`` with ``--backend``: the local index is the working
copy, the database the published one (``store.postgres``).

An indexer takes its roots' advisory locks first (a second indexer of the same root on
the same host gets exit 4 before any work), runs the ordinary incremental index into its
local working copy, then publishes what changed. ``--from-local DIR`` publishes an
existing local index as it is: no model is loaded, nothing is embedded again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from mmsearch_cli.config import Settings
from mmsearch_cli.errors import MmsError, UsageError
from mmsearch_cli.indexing.embed import ProgressFn
from mmsearch_cli.indexing.run import IndexOptions, IndexSummary, run_index
from mmsearch_cli.indexing.run import forget as forget_local
from mmsearch_cli.indexing.scan import under_roots
from mmsearch_cli.store.manifest import read_manifest
from mmsearch_cli.store.postgres.publish import Published, Publisher
from mmsearch_cli.store.postgres.url import check, host_name, redact


@dataclass
class BackendSummary(IndexSummary):
    """An index run's summary, and what its publish wrote to the database."""

    backend: str = ""  # the URL, redacted
    host: str = ""
    published: Published = field(default_factory=Published)

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["backend"] = {"url": self.backend, "host": self.host, **self.published.to_dict()}
        return data


def _summary(summary: IndexSummary, url: str, host: str, done: Published) -> BackendSummary:
    values = {f.name: getattr(summary, f.name) for f in fields(IndexSummary)}
    return BackendSummary(**values, backend=redact(url), host=host, published=done)


def index_into(
    roots: list[Path],
    settings: Settings,
    opts: IndexOptions,
    progress: ProgressFn | None = None,
    **run: Any,
) -> BackendSummary:
    """Index ``roots`` into the local working copy, then publish them. ``run`` goes to
    ``run_index`` as it is."""
    url = check(settings.backend or "")
    host = host_name()
    names = [os.path.abspath(os.fsdecode(r)) for r in roots]
    with Publisher(url, host) as pub:
        pub.lock(names)
        summary = run_index(roots, settings, opts, progress, **run)
        done = pub.publish(settings.index_dir, names, progress)
    return _summary(summary, url, host, done)


def publish_local(index_dir: Path, settings: Settings) -> BackendSummary:
    """Publish an existing local index (every root) without embedding anything."""
    if not settings.backend:
        raise UsageError("--from-local publishes into a database: give --backend URL too")
    url = check(settings.backend)
    read_manifest(index_dir)  # no index there: say so (exit 3)
    host = host_name()
    with Publisher(url, host) as pub:
        done = pub.publish(index_dir)
    return _summary(IndexSummary(), url, host, done)


def forget(paths: list[Path], settings: Settings, *, wait: float = 0.0) -> int:
    """Drop files or roots from the local working copy and the database. A root that
    another host published (a machine gone for good) is dropped from the database whole:
    its rows, and its source."""
    url = check(settings.backend or "")
    host = host_name()
    targets = [os.path.abspath(os.fsdecode(p)) for p in paths]
    try:
        local_roots = [str(r) for r in read_manifest(settings.index_dir).get("roots", [])]
    except MmsError:  # no working copy here (a laptop): only whole sources can go
        local_roots = []

    def related(t: str) -> list[str]:
        return [r for r in local_roots if under_roots(t, [r]) or under_roots(r, [t])]

    mine = [t for t in targets if related(t)]
    other = [t for t in targets if t not in mine]
    with Publisher(url, host) as pub:
        elsewhere = pub.foreign_sources(other)
        missing = [t for t in other if not any(under_roots(r, [t]) for _, r in elsewhere)]
        if missing:
            raise UsageError(f"{missing[0]} is not in the index {redact(url)}",
                             hint="`mms info --backend URL` lists its roots")  # fmt: skip
        count = 0
        for other_host, root in elsewhere:
            count += pub.drop_source(other_host, root)
        if not mine:
            return count
        touched = sorted({r for t in mine for r in related(t)})
        pub.lock(touched)
        count += forget_local([Path(t) for t in mine], settings, wait=wait)
        kept = [str(r) for r in read_manifest(settings.index_dir).get("roots", [])]
        pub.publish(settings.index_dir, [r for r in touched if r in kept])
        for root in touched:
            if root not in kept:
                pub.drop_source(host, root)
    return count

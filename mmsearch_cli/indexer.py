"""Incremental indexing: scan, diff against the sidecar, embed what changed, commit.

Unchanged files (same size and mtime) cost one ``stat``. Changed files are re-embedded,
vanished files are dropped, and a file that moved (same size and content hash as one
that vanished in the same scan) keeps its vectors. Every batch is journaled before it
is applied, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmsearch_cli.config import Settings
from mmsearch_cli.errors import MediaError, MismatchError
from mmsearch_cli.hashing import content_hash
from mmsearch_cli.pipeline import decode, embed_items, iter_surrogates
from mmsearch_cli.profiles import SpaceSpec, spaces_for
from mmsearch_cli.scan import FoundFile, scan, under_roots
from mmsearch_cli.spaces import LiveSpace, bind, check_compatible, describe
from mmsearch_cli.store.index import PREVIOUS, IndexWriter, read_state, sidecar_path
from mmsearch_cli.store.journal import Batch
from mmsearch_cli.store.lock import index_lock
from mmsearch_cli.store.state import FileRecord, IndexState, SegmentRecord

log = logging.getLogger("mmsearch_cli.indexer")

BATCH_FILES = 16  # files per journaled batch: what a kill can cost
BATCH_SECONDS = 10.0
COMMIT_SECONDS = 120.0  # publish progress to readers during long runs

ProgressFn = Callable[[int, int, str], None]


@dataclass
class IndexSummary:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    moved: int = 0
    failed: int = 0
    vanished: int = 0  # deleted between the scan and their turn: not indexed, not failed
    resumed: int = 0  # files recovered from the journal of an interrupted run
    segments: int = 0  # segments embedded in this run
    seconds: float = 0.0
    by_modality: Counter[str] = field(default_factory=Counter)
    failures: list[tuple[str, str]] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        reasons = Counter(reason for _, reason in self.failures)
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "moved": self.moved,
            "failed": self.failed,
            "vanished": self.vanished,
            "resumed": self.resumed,
            "segments_embedded": self.segments,
            "embedded_by_modality": dict(self.by_modality),
            "seconds": round(self.seconds, 3),
            "failures": [{"path": p, "reason": r} for p, r in self.failures],
            "failures_by_reason": dict(reasons),
            "scan_problems": [{"path": p, "reason": r} for p, r in self.problems.items()],
        }


@dataclass
class IndexOptions:
    profile: str | None = None  # None: the index's own (or "builtin" for a new index)
    model: str | None = None
    wait: float = 0.0
    follow_symlinks: bool = False
    include_hidden: bool = False
    exclude: tuple[str, ...] = ()
    retry_failed: bool = False
    rebuild: bool = False
    prune: bool = True  # drop files under the roots that vanished


def run_index(
    roots: list[Path],
    settings: Settings,
    options: IndexOptions | None = None,
    progress: ProgressFn | None = None,
) -> IndexSummary:
    opts = options or IndexOptions()
    started = time.monotonic()
    index_dir = settings.index_dir
    with index_lock(index_dir, wait=opts.wait):
        if opts.rebuild and sidecar_path(index_dir).exists():
            _clear(index_dir)
        # Read once: on a 10k-file index the sidecar parse is most of a no-op run.
        state = read_state(index_dir) if sidecar_path(index_dir).exists() else None
        specs = _choose_specs(state, opts)
        live = [bind(spec, settings) for spec in specs]
        fresh = IndexState(profile=opts.profile or "builtin", spaces={})
        writer, _ = IndexWriter.open(index_dir, fresh, replay=False, state=state)
        full_reembed = _reconcile_spaces(writer, live)
        # Replay after the spaces exist: a killed first run journaled vectors for them.
        summary = IndexSummary(resumed=writer.replay())
        root_strs = [os.path.abspath(os.fsdecode(r)) for r in roots]
        for r in root_strs:
            if r not in writer.state.roots:
                writer.state.roots.append(r)
        found = scan(
            roots,
            follow_symlinks=opts.follow_symlinks,
            include_hidden=opts.include_hidden,
            exclude=opts.exclude,
            skip_dirs=(index_dir,),
        )
        summary.problems = found.problems
        todo = _diff(writer, found.files, root_strs, opts, summary, full_reembed)
        _embed_all(writer, todo, live, settings, summary, progress)
        if writer.dirty:
            writer.commit()
        for space in live:
            for embedder in {id(e): e for e in space.encoders.values()}.values():
                embedder.prepare_query()
    summary.seconds = time.monotonic() - started
    return summary


def _clear(index_dir: Path) -> None:
    # The sidecars go first: a kill midway leaves no index (the next run builds one),
    # never a sidecar that names deleted vector files.
    sidecar_path(index_dir).unlink()
    (index_dir / PREVIOUS).unlink(missing_ok=True)
    for sub in ("spaces", "journal"):
        for p in (index_dir / sub).glob("*"):
            p.unlink()


def _choose_specs(state: IndexState | None, opts: IndexOptions) -> tuple[SpaceSpec, ...]:
    if opts.profile is None and opts.model is None and state is not None:
        return tuple(
            SpaceSpec(s.name, dict(s.encoders), dict(s.options), dict(s.weight))
            for s in state.spaces.values()
        )
    return spaces_for(opts.profile or "builtin", opts.model)


def _reconcile_spaces(writer: IndexWriter, live: list[LiveSpace]) -> bool:
    """Check recorded spaces against the live ones; add new spaces. True if any was added."""
    added = False
    had_files = bool(writer.state.files)
    for space in live:
        recorded = writer.state.spaces.get(space.name)
        if recorded is None:
            space_info = describe(space)
            writer.add_space(space_info)
            added = added or had_files
        else:
            check_compatible(recorded, space)
            recorded.fingerprints.update(describe(space).fingerprints)
    live_names = {s.name for s in live}
    extra = [name for name in writer.state.spaces if name not in live_names]
    if extra:
        raise MismatchError(
            f"index also has space(s) {', '.join(extra)} that this profile does not produce",
            hint="index without --profile/--model to keep the index's own setup, or --rebuild",
        )
    return added


def _diff(
    writer: IndexWriter,
    files: dict[str, FoundFile],
    roots: list[str],
    opts: IndexOptions,
    summary: IndexSummary,
    full_reembed: bool,
) -> list[tuple[FoundFile, str]]:
    """Decide per file: unchanged, moved, new or changed. Drops vanished files."""
    state = writer.state
    todo: list[tuple[FoundFile, str]] = []
    for path, found in files.items():
        rec = state.files.get(path)
        if rec is None:
            todo.append((found, "added"))
        elif (
            full_reembed
            or rec.size != found.size
            or rec.mtime_ns != found.mtime_ns
            or (rec.status == "failed" and opts.retry_failed)
        ):
            todo.append((found, "updated"))
        else:
            summary.unchanged += 1
    vanished = [
        p for p in state.files if p not in files and under_roots(p, roots) and not os.path.exists(p)
    ]
    # Moves: a new path with the size and hash of a vanished one keeps its vectors.
    by_key: dict[tuple[int, str], str] = {}
    for p in vanished:
        rec = state.files[p]
        if rec.hash and rec.status == "ok":
            by_key[(rec.size, rec.hash)] = p
    still_todo = []
    for found, why in todo:
        if why == "added" and by_key:
            try:
                digest = content_hash(found.path)
            except OSError:
                digest = ""
            old = by_key.pop((found.size, digest), None)
            if old is not None:
                writer.state.move_file(old, found.path, found.size, found.mtime_ns)
                writer.dirty = True
                vanished.remove(old)
                summary.moved += 1
                continue
        still_todo.append((found, why))
    if opts.prune:
        for p in vanished:
            writer.drop_file(p)
            summary.removed += 1
    return still_todo


def _embed_all(
    writer: IndexWriter,
    todo: list[tuple[FoundFile, str]],
    live: list[LiveSpace],
    settings: Settings,
    summary: IndexSummary,
    progress: ProgressFn | None,
) -> None:
    batch = Batch()
    batch_started = time.monotonic()
    total = len(todo)
    for n, (found, why) in enumerate(todo, start=1):
        if progress:
            progress(n - 1, total, found.path)
        record, segments, vectors = _embed_file(writer, found, live, settings)
        if record.status == "failed" and not os.path.lexists(found.path):
            summary.vanished += 1  # deleted while we worked: forget it, it is not a failure
            writer.drop_file(found.path)
            continue
        if record.status == "failed":
            summary.failed += 1
            summary.failures.append((found.path, record.error or "failed"))
        else:
            if why == "added":
                summary.added += 1
            else:
                summary.updated += 1
            summary.segments += len(segments)
            summary.by_modality[found.modality] += 1
        batch.files.append(record)
        batch.segments.extend(segments)
        for space, (ids, vecs) in vectors.items():
            old_ids, old_vecs = batch.vectors.get(space, ([], []))
            batch.vectors[space] = (list(old_ids) + ids, list(old_vecs) + vecs)  # type: ignore[assignment]
        if len(batch) >= BATCH_FILES or time.monotonic() - batch_started > BATCH_SECONDS:
            _flush(writer, batch)
            batch, batch_started = Batch(), time.monotonic()
            if time.monotonic() - writer.last_commit > COMMIT_SECONDS:
                writer.commit()
    if len(batch):
        _flush(writer, batch)
    if progress:
        progress(total, total, "")


def _flush(writer: IndexWriter, batch: Batch) -> None:
    import numpy as np

    for space, (ids, vecs) in list(batch.vectors.items()):
        dim = writer.state.spaces[space].dim
        batch.vectors[space] = (
            np.asarray(ids, dtype=np.int64),
            np.asarray(vecs, dtype=np.float32).reshape(-1, dim),
        )
    writer.write_batch(batch)


def _embed_file(
    writer: IndexWriter, found: FoundFile, live: list[LiveSpace], settings: Settings
) -> tuple[FileRecord, list[SegmentRecord], dict[str, tuple[list[int], list[Any]]]]:
    record = FileRecord(
        path=found.path,
        size=found.size,
        mtime_ns=found.mtime_ns,
        modality=found.modality,
        indexed_at=time.time(),
    )
    try:
        record.hash = content_hash(found.path)
        meta, items = decode(found.path, found.modality, settings)
        if not items:
            raise MediaError("nothing to index in this file")
        embedded = embed_items(items, live)
    except MediaError as exc:
        record.status, record.error = "failed", _one_line(exc.message)
        return record, [], {}
    except OSError as exc:  # vanished, permissions, I/O errors
        record.status, record.error = "failed", f"cannot read: {exc.strerror or exc}"
        return record, [], {}
    except Exception as exc:  # a decoder bug must cost one file, not the run
        log.debug("unexpected error on %s", found.path, exc_info=True)
        record.status, record.error = "failed", _one_line(f"{type(exc).__name__}: {exc}")[:300]
        return record, [], {}
    record.meta = meta
    ids = writer.new_ids(len(items))
    segments: list[SegmentRecord] = []
    vectors: dict[str, tuple[list[int], list[Any]]] = {}
    texts = list(iter_surrogates(embedded.whys, items))
    for i, (sid, item) in enumerate(zip(ids, items, strict=True)):
        spaces_here = []
        for space, per_item in embedded.vectors.items():
            vec = per_item[i]
            if vec is not None:
                spaces_here.append(space)
                vectors.setdefault(space, ([], []))
                vectors[space][0].append(sid)
                vectors[space][1].append(vec)
        segments.append(
            SegmentRecord(
                id=sid,
                file=found.path,
                kind=item.kind,
                chunk=item.chunk,
                start=item.start,
                end=item.end,
                text=texts[i],
                why=embedded.whys[i],
                spaces=spaces_here,
            )
        )
    record.segments = ids
    return record, segments, vectors


def _one_line(message: str) -> str:
    """Library messages may hold newlines (libheif ends its own with one); reasons are
    listed one per line in `mms info --failed` and on stderr."""
    return " ".join(line.strip() for line in message.strip().splitlines())


def forget(paths: list[Path], settings: Settings, *, wait: float = 0.0) -> int:
    """Drop every file under ``paths`` (and those roots) from the index; return the count.

    For a folder that should no longer be searched: a plain re-index never drops files
    outside the roots it was given.
    """
    from mmsearch_cli.store.index import read_state

    index_dir = settings.index_dir
    with index_lock(index_dir, wait=wait):
        state = read_state(index_dir)
        writer, _ = IndexWriter.open(index_dir, state, state=state)
        targets = [os.path.abspath(os.fsdecode(p)) for p in paths]
        gone = [p for p in writer.state.files if under_roots(p, targets)]
        for path in gone:
            writer.drop_file(path)
        roots = [r for r in writer.state.roots if not under_roots(r, targets)]
        if roots != writer.state.roots:
            writer.state.roots = roots
            writer.dirty = True
        if writer.dirty:
            writer.commit()
    return len(gone)

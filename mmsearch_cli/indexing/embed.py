"""Embed what changed: decode each file, run every space's embedders, journal batches.

Every batch of ``BATCH_FILES`` files is journaled before it is applied, so a killed run
loses at most the batch in flight and the next run replays the journal.

A file that cannot be indexed is recorded with its reason, in plain words. Its status
says whose fault it is: ``failed`` (the file's: damaged, empty, encrypted), tried again
when it changes; ``deferred`` (the machine's: a model, a codec, a library missing),
tried again by every run, so it is indexed as soon as the cause is gone. Files waiting
for a model the run could not fetch are not decoded at all (``waiting``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mmsearch_cli.config import Settings
from mmsearch_cli.decoders.dispatch import decode
from mmsearch_cli.embedders.needs import Waiting
from mmsearch_cli.embedders.spaces import LiveSpace
from mmsearch_cli.errors import (
    CodecUnavailableError,
    MediaError,
    ModelUnavailableError,
    first_line,
    plain_words,
)
from mmsearch_cli.indexing.diff import content_hash
from mmsearch_cli.indexing.scan import FoundFile
from mmsearch_cli.items import MediaItem, file_signature
from mmsearch_cli.search.explain import surrogate
from mmsearch_cli.store import db
from mmsearch_cli.store.index import IndexWriter
from mmsearch_cli.store.journal import Batch
from mmsearch_cli.store.state import FileRecord, SegmentRecord

if TYPE_CHECKING:
    from mmsearch_cli.indexing.run import IndexSummary

log = logging.getLogger("mmsearch_cli.indexing")

BATCH_FILES = 16  # files per journaled batch: what a kill can cost
BATCH_SECONDS = 10.0
COMMIT_SECONDS = 120.0  # publish progress to readers during long runs

ProgressFn = Callable[[int, int, str], None]


@dataclass
class EmbeddedFile:
    meta: dict[str, Any]
    items: list[MediaItem]
    vectors: dict[str, list[np.ndarray | None]] = field(default_factory=dict)  # space -> per item
    whys: list[dict[str, Any]] = field(default_factory=list)


def embed_items(items: list[MediaItem], spaces: list[LiveSpace]) -> EmbeddedFile:
    """Run every space whose encoders take an item's modality; batch per embedder."""
    out = EmbeddedFile(meta={}, items=items, whys=[{} for _ in items])
    for space in spaces:
        per_item: list[np.ndarray | None] = [None] * len(items)
        for modality, embedder in space.encoders.items():
            idx = [i for i, it in enumerate(items) if it.modality == modality]
            for start in range(0, len(idx), embedder.batch_size):
                part = idx[start : start + embedder.batch_size]
                embedder.ensure_loaded()
                results = embedder.embed([items[i] for i in part])
                for i, res in zip(part, results, strict=True):
                    per_item[i] = np.asarray(res.vector, dtype=np.float32)
                    out.whys[i].update(res.why)
        out.vectors[space.name] = per_item
    for i, item in enumerate(items):
        for key in ("file_tags", "facts", "page", "section"):  # what the file says of itself
            if item.meta.get(key):
                out.whys[i][key] = item.meta[key]
    return out


def iter_surrogates(whys: list[dict[str, Any]], items: list[MediaItem]) -> Iterator[str]:
    for why, item in zip(whys, items, strict=True):
        yield item.text or surrogate(why, "")


def embed_all(
    writer: IndexWriter,
    todo: list[tuple[FoundFile, str]],
    live: list[LiveSpace],
    settings: Settings,
    summary: IndexSummary,
    progress: ProgressFn | None,
    waiting: Mapping[str, Waiting] | None = None,
) -> None:
    """Index ``todo`` (file, why: "added", "updated", or "retry" for a deferred file);
    files of the kinds in ``waiting`` (kind of file -> the model it waits for) are
    recorded as deferred without being read."""
    batch = Batch()
    batch_started = time.monotonic()
    waiting = waiting or {}
    earlier = _earlier_reasons(writer, [f.path for f, why in todo if why == "retry"])
    for found, why in todo:
        if found.modality not in waiting:
            continue
        record = _waits(writer, found, why, str(waiting[found.modality]), earlier, summary)
        if record is not None:
            batch.files.append(record)
        if len(batch) >= BATCH_FILES:
            _flush(writer, batch)
            batch = Batch()
    todo = [(f, why) for f, why in todo if f.modality not in waiting]
    total = len(todo)
    for n, ((found, why), decoded) in enumerate(_read_ahead(todo, settings), start=1):
        if progress:
            progress(n - 1, total, found.path)
        record, segments, vectors = _embed_file(writer, found, live, decoded)
        if record.status == CHANGED:
            summary.changed += 1  # neither indexed nor failed: its old record (if any) stays
            continue
        if record.status != "ok" and not os.path.lexists(found.path):
            summary.vanished += 1  # deleted while we worked: forget it, it is not a failure
            writer.drop_file(found.path)
            continue
        if record.status == DEFERRED:
            summary.deferred += 1
            summary.deferrals.append((found.path, found.modality, record.error or ""))
            if earlier.get(found.path) == record.error:
                continue  # recorded so already: nothing to write
        elif record.status == "failed":
            summary.failed += 1
            summary.failures.append((found.path, record.error or "failed"))
        else:
            if why in ("added", "retry"):
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
    # Failures this run did not touch: files that failed before and have not changed.
    failed_now = sum(1 for stat in writer.files.values() if stat[2] == "failed")
    summary.failed_earlier = max(0, failed_now - summary.failed)


def _earlier_reasons(writer: IndexWriter, paths: list[str]) -> dict[str, str]:
    """The recorded reasons of deferred files tried again: one that fails for the same
    reason is not written again (an unchanged index, no new generation)."""
    if not paths:
        return {}
    return {p: rec.error or "" for p, rec in db.files(writer.con, paths).items()}


def _waits(
    writer: IndexWriter, found: FoundFile, why: str, reason: str, earlier: dict[str, str],
    summary: IndexSummary,
) -> FileRecord | None:  # fmt: skip
    """A file that waits for a model: the record to write, or None to keep the old one
    (deferred already for this reason, or an indexed version of a file that changed:
    still found by queries until the model is here)."""
    summary.deferred += 1
    summary.deferrals.append((found.path, found.modality, reason))
    before = writer.files.get(found.path)
    if (why == "retry" and earlier.get(found.path) == reason) or (
        before is not None and before[2] == "ok"
    ):
        return None
    return FileRecord(
        path=found.path, size=found.size, mtime_ns=found.mtime_ns, modality=found.modality,
        status=DEFERRED, error=reason, indexed_at=time.time(),
    )  # fmt: skip


def _flush(writer: IndexWriter, batch: Batch) -> None:
    for space, (ids, vecs) in list(batch.vectors.items()):
        dim = writer.spaces[space].dim
        batch.vectors[space] = (
            np.asarray(ids, dtype=np.int64),
            np.asarray(vecs, dtype=np.float32).reshape(-1, dim),
        )
    writer.write_batch(batch)


Decoded = Callable[[], tuple[str, dict[str, Any], list[MediaItem]]]


def _read_ahead(
    todo: list[tuple[FoundFile, str]], settings: Settings
) -> Iterator[tuple[tuple[FoundFile, str], Decoded]]:
    """Each file with its decoding, the next file's decoding running in a thread meanwhile:
    decoders (image files, face counts, audio) and embedders then share the two cores,
    as onnxruntime, Pillow and numpy release the GIL. One file ahead bounds the memory."""
    if not todo:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mms-decode") as pool:
        ahead = pool.submit(_hash_and_decode, todo[0][0], settings)
        for n, entry in enumerate(todo):
            current = ahead
            if n + 1 < len(todo):
                ahead = pool.submit(_hash_and_decode, todo[n + 1][0], settings)
            yield entry, current.result
        ahead.cancel()


def _hash_and_decode(
    found: FoundFile, settings: Settings
) -> tuple[str, dict[str, Any], list[MediaItem]]:
    digest = content_hash(found.path, found.size)
    meta, items = decode(found.path, found.modality, settings)
    return digest, meta, items


def _embed_file(
    writer: IndexWriter, found: FoundFile, live: list[LiveSpace], decoded: Decoded
) -> tuple[FileRecord, list[SegmentRecord], dict[str, tuple[list[int], list[Any]]]]:
    record = FileRecord(
        path=found.path,
        size=found.size,
        mtime_ns=found.mtime_ns,
        modality=found.modality,
        indexed_at=time.time(),
    )
    try:
        record.hash, meta, items = decoded()  # re-raises what decoding raised
        if not items:
            raise MediaError("nothing to index in this file")
        embedded = embed_items(items, live)
        now = file_signature(found.path)
        # A photo's found.mtime_ns may be its XMP sidecar's, newer than its own (scan.py).
        sidecar = (
            found.modality == "image"
            and now is not None
            and now[0] == found.size
            and now[1] < found.mtime_ns
        )
        if now != (found.size, found.mtime_ns) and not sidecar:
            record.status = CHANGED  # read while being written: the next run takes it whole
            return record, [], {}
    except MediaError as exc:
        record.status, record.error = failure(exc, exc.message)
        return record, [], {}
    except OSError as exc:  # vanished, permissions, I/O errors
        record.status, record.error = "failed", f"cannot read: {exc.strerror or first_line(exc)}"
        return record, [], {}
    except Exception as exc:  # a decoder bug must cost one file, not the run
        log.debug("unexpected error on %s", found.path, exc_info=True)
        record.status, record.error = failure(exc)
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


CHANGED = "changed while reading"
DEFERRED = "deferred"  # the machine's fault, not the file's: tried again by every run
# Exceptions that say nothing of the file: an internal error, in plain words.
_BUGS = (KeyError, IndexError, AttributeError, TypeError, AssertionError, NameError)


def failure(exc: BaseException, message: str | None = None) -> tuple[str, str]:
    """(status, reason) of a file that could not be indexed: ``deferred`` when the
    environment caused it (a model, a codec, a library missing), else ``failed``. The
    reason is one line of plain words, never a Python class name."""
    cause = environment_cause(exc)
    if cause is not None:
        return DEFERRED, _one_line(cause)[:300]
    if message is None:
        text = str(exc).strip()
        message = plain_words(exc) if not text or isinstance(exc, _BUGS) else first_line(exc)
    return "failed", _one_line(message)[:300]


def environment_cause(exc: BaseException) -> str | None:
    """What the machine lacks, if that is why ``exc`` (or what caused it) happened."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ModelUnavailableError | CodecUnavailableError):
            return str(cur)
        if isinstance(cur, ImportError):
            missing = cur.name or first_line(cur)
            return f"a library it needs is not installed ({missing})"
        if type(cur).__name__ == "DecoderNotFoundError":  # PyAV: FFmpeg built without it
            return "this machine's FFmpeg has no decoder for its codec"
        cur = cur.__cause__ or (None if cur.__suppress_context__ else cur.__context__)
    return None


def _one_line(message: str) -> str:
    """Library messages may hold newlines (libheif ends its own with one); reasons are
    listed one per line in `mms info --failed` and on stderr."""
    return " ".join(line.strip() for line in message.strip().splitlines())

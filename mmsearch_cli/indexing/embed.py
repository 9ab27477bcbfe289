"""Embed what changed: decode each file, run every space's embedders, journal batches.

Every batch of ``BATCH_FILES`` files is journaled before it is applied, so a killed run
loses at most the batch in flight and the next run replays the journal.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mmsearch_cli.config import Settings
from mmsearch_cli.decoders.dispatch import decode
from mmsearch_cli.embedders.spaces import LiveSpace
from mmsearch_cli.errors import MediaError
from mmsearch_cli.indexing.diff import content_hash
from mmsearch_cli.indexing.scan import FoundFile
from mmsearch_cli.items import MediaItem, file_signature
from mmsearch_cli.search.explain import surrogate
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
) -> None:
    batch = Batch()
    batch_started = time.monotonic()
    total = len(todo)
    for n, ((found, why), decoded) in enumerate(_read_ahead(todo, settings), start=1):
        if progress:
            progress(n - 1, total, found.path)
        record, segments, vectors = _embed_file(writer, found, live, decoded)
        if record.status == CHANGED:
            summary.changed += 1  # neither indexed nor failed: its old record (if any) stays
            continue
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


CHANGED = "changed while reading"


def _one_line(message: str) -> str:
    """Library messages may hold newlines (libheif ends its own with one); reasons are
    listed one per line in `mms info --failed` and on stderr."""
    return " ".join(line.strip() for line in message.strip().splitlines())

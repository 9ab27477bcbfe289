"""The index's records as plain dataclasses: files, segments, spaces.

Paths are absolute ``str`` as ``os.fsdecode`` gives them: a file name that is not valid
UTF-8 keeps its bytes as surrogate escapes (the database stores the bytes).

``IndexState`` is the whole index in memory, as schema 1 kept it in ``sidecar.json``:
only the conversion of such an index (``migrate``) still reads it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA_VERSION = 2  # 1: everything in sidecar.json; 2: SQLite + flat vectors


@dataclass
class SegmentRecord:
    """One vector id: a piece of a file (chunk, image, keyframe, speech or sound window)."""

    id: int
    file: str
    kind: str
    chunk: int | None = None
    start: float | None = None
    end: float | None = None
    text: str = ""  # the text surrogate: chunk text, description, transcript, tags
    why: dict[str, Any] = field(default_factory=dict)
    spaces: list[str] = field(default_factory=list)


@dataclass
class FileRecord:
    path: str
    size: int
    mtime_ns: int
    modality: str
    hash: str | None = None
    status: str = "ok"  # "ok" or "failed"
    error: str | None = None
    segments: list[int] = field(default_factory=list)
    indexed_at: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class SpaceInfo:
    """A vector space, fed by one or more embedders: flat vector rows, and an hnswlib graph
    over the first ``graph_rows`` of them once the space is large enough to need one."""

    name: str
    dim: int
    metric: str = "cosine"
    # input modality -> embedder name, and each embedder's fingerprint (model, dim, prep)
    encoders: dict[str, str] = field(default_factory=dict)
    fingerprints: dict[str, dict[str, Any]] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)  # e.g. {"model": "clip-ViT-B-32"}
    weight: dict[str, float] = field(default_factory=dict)  # fusion weight per query modality
    file: str | None = None  # schema 1: the hnswlib file; schema 2: the graph, if any
    count: int = 0  # live vectors
    vectors: str | None = None  # schema 2: base name of the flat .vec/.ids files
    rows: int = 0  # committed rows in them (deleted ones included until compaction)
    graph_rows: int = 0  # rows the graph covers; later rows are scanned exactly


@dataclass
class IndexState:
    profile: str
    spaces: dict[str, SpaceInfo]
    schema: int = SCHEMA_VERSION
    generation: int = 0
    created: float = field(default_factory=time.time)
    updated: float = 0.0
    roots: list[str] = field(default_factory=list)
    next_id: int = 0
    files: dict[str, FileRecord] = field(default_factory=dict)
    segments: dict[int, SegmentRecord] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "generation": self.generation,
            "created": self.created,
            "updated": self.updated,
            "profile": self.profile,
            "roots": self.roots,
            "next_id": self.next_id,
            "spaces": {k: asdict(v) for k, v in self.spaces.items()},
            "files": [asdict(f) for f in self.files.values()],
            "segments": [asdict(s) for s in self.segments.values()],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IndexState:
        state = cls(
            profile=data["profile"],
            spaces={k: SpaceInfo(**v) for k, v in data["spaces"].items()},
            schema=data["schema"],
            generation=data["generation"],
            created=data["created"],
            updated=data["updated"],
            roots=list(data["roots"]),
            next_id=data["next_id"],
        )
        state.files = {f["path"]: FileRecord(**f) for f in data["files"]}
        state.segments = {s["id"]: SegmentRecord(**s) for s in data["segments"]}
        return state

    # -- mutations used by the indexer and the journal replay --------------------------

    def drop_file(self, path: str) -> list[int]:
        """Forget a file; return its segment ids so their vectors can be marked deleted."""
        rec = self.files.pop(path, None)
        if rec is None:
            return []
        for sid in rec.segments:
            self.segments.pop(sid, None)
        return list(rec.segments)

    def move_file(self, old: str, new: str, size: int, mtime_ns: int) -> None:
        rec = self.files.pop(old)
        rec.path, rec.size, rec.mtime_ns = new, size, mtime_ns
        self.files[new] = rec
        for sid in rec.segments:
            self.segments[sid].file = new

"""Append-only batch journal between commits.

Each embedded batch is written as one ``.npz`` (atomic rename, no pickle) holding the
file and segment records plus their vectors per space. A killed ``mms index`` loses at
most the batch in flight: the next run replays the journal instead of re-embedding.
"""

from __future__ import annotations

import contextlib
import json
import zipfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from io import BytesIO
from pathlib import Path

import numpy as np

from mmsearch_cli.store.atomic import atomic_write_bytes
from mmsearch_cli.store.state import FileRecord, SegmentRecord


@dataclass
class Batch:
    files: list[FileRecord] = field(default_factory=list)
    segments: list[SegmentRecord] = field(default_factory=list)
    vectors: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # ids, vecs
    base_generation: int = 0

    def __len__(self) -> int:
        return len(self.files)


class Journal:
    def __init__(self, directory: Path) -> None:
        self.dir = directory

    def _paths(self) -> list[Path]:
        if not self.dir.is_dir():
            return []
        return sorted(self.dir.glob("batch-*.npz"))

    def append(self, batch: Batch) -> None:
        existing = self._paths()
        seq = int(existing[-1].stem.split("-")[1]) + 1 if existing else 0
        meta = {
            "base_generation": batch.base_generation,
            "files": [asdict(f) for f in batch.files],
            "segments": [asdict(s) for s in batch.segments],
        }
        arrays: dict[str, np.ndarray] = {
            "meta": np.frombuffer(json.dumps(meta).encode("utf-8", "surrogatepass"), np.uint8)
        }
        for space, (ids, vecs) in batch.vectors.items():
            arrays[f"ids__{space}"] = np.asarray(ids, dtype=np.int64)
            arrays[f"vec__{space}"] = np.asarray(vecs, dtype=np.float32)
        buf = BytesIO()
        np.savez(buf, **arrays)  # type: ignore[arg-type]
        atomic_write_bytes(self.dir / f"batch-{seq:08d}.npz", buf.getvalue())

    def batches(self) -> Iterator[Batch]:
        """Replay in order. A file that cannot be read ends the replay (later ones are moot).

        Nothing here can run code: ``allow_pickle=False`` refuses object arrays, and the
        records are rebuilt from JSON."""
        for path in self._paths():
            try:
                batch = _read(path)
            except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
                return
            yield batch

    def stale_tmp(self) -> list[Path]:
        """Temp files of journal writes cut short by a crash."""
        return sorted(self.dir.glob(".batch-*.tmp")) if self.dir.is_dir() else []

    def __len__(self) -> int:
        return len(self._paths())

    def clear(self) -> None:
        for path in self._paths():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _check_stored(path: Path) -> None:
    """Our batches are stored, never compressed: a member that is compressed (or claims
    more bytes than it holds) could inflate a small file into gigabytes. Refused unread."""
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.compress_type != zipfile.ZIP_STORED or info.file_size != info.compress_size:
                raise ValueError(f"{path.name}: member {info.filename} is not stored as written")


def _read(path: Path) -> Batch:
    _check_stored(path)
    with np.load(path, allow_pickle=False) as npz:
        meta = json.loads(npz["meta"].tobytes().decode("utf-8", "surrogatepass"))
        vectors: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for key in npz.files:
            if key.startswith("ids__"):
                ids, vecs = npz[key], npz[f"vec__{key[5:]}"]
                if ids.dtype.kind != "i" or vecs.ndim != 2 or len(ids) != len(vecs):
                    raise ValueError(f"malformed vectors for {key[5:]}")
                vectors[key[5:]] = (ids, vecs)
    return Batch(
        files=[FileRecord(**f) for f in meta["files"]],
        segments=[SegmentRecord(**s) for s in meta["segments"]],
        vectors=vectors,
        base_generation=int(meta["base_generation"]),
    )

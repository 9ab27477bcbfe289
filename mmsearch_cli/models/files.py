"""Model files on disk: hashes, publishing a folder or file whole, cached arrays.

Model caches are shared by concurrent processes (an `mms index` and a query) and may be
killed mid-write, so everything here is staged beside its target and renamed into place:
a reader sees the old thing or the new one, never half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (model files run to gigabytes)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def staged_dir(dest: Path, *, keep: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Yield an empty folder to fill; on a clean exit it replaces ``dest`` in one rename.

    The folder lives in a temporary sibling of ``dest`` (same file system, so the rename
    is atomic); its parent is scratch space that is removed with it, also on error.
    ``keep(dest)`` true means another process finished first: its copy stays.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{dest.name}-") as tmp:
        staging = Path(tmp) / dest.name
        staging.mkdir()
        yield staging
        if dest.exists():
            if keep is not None and keep(dest):
                return
            shutil.rmtree(dest)
        os.replace(staging, dest)


@contextmanager
def staged_file(dest: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``dest`` to write; on a clean exit it becomes ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}-", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def cached_array(path_prefix: Path, key: object, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """``compute()`` once, cached as ``{path_prefix}-{digest}.npy`` where the digest is of
    ``key`` (JSON): embeddings of fixed texts under the texts and the model's fingerprint."""
    import numpy as np

    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = path_prefix.with_name(f"{path_prefix.name}-{digest}.npy")
    if path.is_file():
        return np.load(path, allow_pickle=False)
    matrix = compute()
    with staged_file(path) as tmp, tmp.open("wb") as fh:
        np.save(fh, matrix)
    return matrix

"""What an index holds, for ``mms info`` and for consistency checks."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

from mmsearch_cli.store.index import read_state


def _disk_usage(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def index_info(index_dir: Path) -> dict[str, Any]:
    state = read_state(index_dir)
    ok = [f for f in state.files.values() if f.status == "ok"]
    failed = [f for f in state.files.values() if f.status != "ok"]
    return {
        "index": str(index_dir),
        "schema": state.schema,
        "generation": state.generation,
        "profile": state.profile,
        "created": state.created,
        "updated": state.updated,
        "roots": state.roots,
        "files": len(ok),
        "files_by_modality": dict(Counter(f.modality for f in ok)),
        "segments": len(state.segments),
        "failed": len(failed),
        "failed_files": [{"path": f.path, "error": f.error} for f in failed],
        "bytes_on_disk": _disk_usage(index_dir),
        "spaces": [
            {
                "name": s.name,
                "dim": s.dim,
                "metric": s.metric,
                "vectors": s.count,
                "encoders": s.encoders,
                "fingerprints": s.fingerprints,
                "options": s.options,
            }
            for s in state.spaces.values()
        ],
    }

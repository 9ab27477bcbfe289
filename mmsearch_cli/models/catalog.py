"""The model files ``mms models`` lists: fetched wheel assets and downloaded hub models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmsearch_cli.config import Settings
from mmsearch_cli.models import wheels


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def catalog(settings: Settings) -> list[dict[str, Any]]:
    """Model files: the pinned-wheel assets and hub models in the cache, fetched or not."""
    rows: list[dict[str, Any]] = []
    for asset in wheels.ASSETS.values():
        path = wheels.asset_dir(settings.model_dir, asset.name)
        rows.append(
            {
                "name": asset.name, "kind": "model",
                "available": wheels.is_fetched(settings.model_dir, asset.name),
                "bytes": _dir_bytes(path), "licence": asset.licence,
                "source": f"{asset.description}; PyPI {asset.package}=={asset.version}",
                "path": str(path),
            }
        )  # fmt: skip
    hub = settings.model_dir / "hub"  # where `mms models download` puts hub models
    for folder in sorted(hub.glob("models--*")) if hub.is_dir() else []:
        model_id = folder.name[len("models--") :].replace("--", "/")
        rows.append(
            {
                "name": model_id, "kind": "hub-model", "available": True,
                "bytes": _dir_bytes(folder), "licence": "see its model card",
                "source": "downloaded with `mms models download`; use with --model",
                "path": str(folder),
            }
        )  # fmt: skip
    return rows

"""mms: search your own media by meaning, across modalities, offline.

The package is a library first; the ``mms`` command in :mod:`mmsearch_cli.cli`
is a thin layer over it. Nothing here imports typer or rich.
"""

from __future__ import annotations

from mmsearch_cli.api import (
    doctor,
    evaluate,
    forget,
    index,
    info,
    query,
    query_rows,
    rerank_rows,
    serve,
    update,
)
from mmsearch_cli.errors import ExitStatus, MmsError

__version__ = "0.1.0"

__all__ = [
    "ExitStatus",
    "MmsError",
    "__version__",
    "doctor",
    "evaluate",
    "forget",
    "index",
    "info",
    "query",
    "query_rows",
    "rerank_rows",
    "serve",
    "update",
]

"""mms: search your own media by meaning, across modalities, offline.

The package is a library first; the ``mms`` command in :mod:`mmsearch_cli.cli`
is a thin layer over it. Nothing here imports typer or rich.

The functions are imported from :mod:`mmsearch_cli.api` on first use (PEP 562): every
``mms`` process imports this package first, and ``mms --version`` or ``--help`` should
not pay for the settings, platformdirs and the rest that ``api`` pulls in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mmsearch_cli.errors import ExitStatus, MmsError

if TYPE_CHECKING:
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

_API = frozenset(__all__) - {"ExitStatus", "MmsError", "__version__"}


def __getattr__(name: str) -> Any:
    if name in _API:
        from mmsearch_cli import api

        value = getattr(api, name)
        globals()[name] = value  # looked up once
        return value
    raise AttributeError(f"module 'mmsearch_cli' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _API)

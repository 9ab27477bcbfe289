"""One way to open an onnxruntime session: CPU, quiet, a fixed number of threads.

One intra-op thread is the measured default on a shared 2-core machine
(measured: 2 threads degrade badly under any other load; README, "Performance").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmsearch_cli.errors import ModelUnavailableError, first_line


def open_session(path: Path, *, threads: int = 1, hint: str | None = None) -> Any:
    """An ``InferenceSession`` for ``path``; a damaged file is a ``ModelUnavailableError``."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # graph-optimiser notes are not for users
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelUnavailableError(
            f"cannot load {path}: {first_line(exc)}",
            hint=hint or "run `mms models prepare` again",
        ) from exc

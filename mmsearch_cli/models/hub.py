"""Hugging Face Hub models: resolve a hub id or a local folder to files on disk.

Nothing downloads at run time unless the caller asks (``allow_download``), and never
when ``HF_HUB_OFFLINE`` is set. ``mms models download`` is the explicit pre-fetch step.
Hub ids are looked up in ``cache_dir`` (ours) and then in the user's own HF cache, so
models they already have are reused.

Lookups read the documented cache layout (``models--org--name/refs/<rev>`` ->
``snapshots/<commit>``) directly first: importing ``huggingface_hub.snapshot_download``
pulls in an HTTP client and costs about 0.4 s, too much for every ``mms query``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from pathlib import Path, PurePosixPath

from mmsearch_cli.errors import ModelUnavailableError, first_line
from mmsearch_cli.models.files import sha256_file, staged_file

DEFAULT_ORG = "sentence-transformers"
_TRUE = {"1", "on", "yes", "true"}

# Files a sentence-transformers/transformers checkpoint does not need on CPU with torch.
IGNORE_PATTERNS = [
    "onnx/*", "openvino/*", "coreml/*", "*.onnx", "*.onnx_data", "*.h5", "*.msgpack",
    "*.ot", "*.tflite", "tf_model*", "flax_model*", "rust_model*", "*.gguf",
]  # fmt: skip


def is_local(model: str) -> bool:
    return Path(model).expanduser().is_dir()


def repo_id(model: str) -> str:
    """Canonical hub id: bare names are sentence-transformers models, as in their docs."""
    return model if "/" in model else f"{DEFAULT_ORG}/{model}"


def offline() -> bool:
    """``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) as set now, not at import time."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().lower() in _TRUE


def default_hf_cache() -> Path:
    from huggingface_hub import constants  # ~60 ms, no HTTP client

    return Path(constants.HF_HUB_CACHE)


def snapshot_revision(folder: Path) -> str | None:
    """The commit hash when ``folder`` is a snapshot inside an HF cache, else None."""
    if folder.parent.name == "snapshots" and folder.parent.parent.name.startswith("models--"):
        return folder.name
    return None


def snapshot_repo_id(folder: Path) -> str | None:
    """``org/name`` when ``folder`` is a snapshot inside an HF cache, else None."""
    if snapshot_revision(folder) is None:
        return None
    return folder.parent.parent.name.removeprefix("models--").replace("--", "/")


def cached_snapshot(model: str, cache_dir: Path, revision: str = "main") -> Path | None:
    """The cached snapshot folder of a hub id, read straight from the cache layout."""
    repo_folder = cache_dir / ("models--" + repo_id(model).replace("/", "--"))
    ref = repo_folder / "refs" / revision
    commit = ref.read_text().strip() if ref.is_file() else revision
    snapshot = repo_folder / "snapshots" / commit
    return snapshot if snapshot.is_dir() and any(snapshot.iterdir()) else None


def _unavailable(model: str, cache_dir: Path, why: str = "") -> ModelUnavailableError:
    return ModelUnavailableError(
        f"model '{model}' is not available offline{why}",
        hint=f"run `mms models download {model}` on a machine with network, then copy "
        f"{cache_dir} here, or pass a local folder",
    )


def resolve_model(model: str, *, cache_dir: Path, allow_download: bool) -> Path:
    """A local folder as-is; a hub id from the cache, or downloaded if allowed and online."""
    if is_local(model):
        return Path(model).expanduser().resolve()
    if model.startswith((".", "/", "~")):
        raise ModelUnavailableError(f"model folder {model} does not exist")
    if (found := cached_snapshot(model, cache_dir)) is not None:
        return found
    caches = list(dict.fromkeys([cache_dir, default_hf_cache()]))  # ordered, de-duplicated
    if len(caches) > 1 and (found := cached_snapshot(model, caches[1])) is not None:
        return found
    if offline() or not allow_download:
        # Authoritative local-only lookup (also resolves tags); never touches the network.
        for cache in caches:
            if (found := _local_snapshot(model, cache)) is not None:
                return found
        raise _unavailable(model, cache_dir)
    return download_model(model, cache_dir)


def _local_snapshot(model: str, cache: Path) -> Path | None:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id(model), cache_dir=cache, local_files_only=True))
    except (LocalEntryNotFoundError, HFValidationError, OSError):
        return None


def _hub_resolves() -> bool:
    import socket
    from urllib.parse import urlparse

    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or ""
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return False
    return True


def download_model(model: str, cache_dir: Path, *, revision: str | None = None) -> Path:
    """Fetch a hub model into ``cache_dir`` (the explicit pre-fetch step), skipping files
    torch on CPU never reads (ONNX/TF/Flax exports, ``.bin`` shadowed by ``.safetensors``)."""
    if offline():
        raise _unavailable(model, cache_dir, " (HF_HUB_OFFLINE is set)")
    if not _hub_resolves():
        # Fail in milliseconds instead of the hub client's ~25 s of retries.
        raise _unavailable(model, cache_dir, " (the hub's host name does not resolve)")
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    rid = repo_id(model)
    try:
        files = HfApi().list_repo_files(rid, revision=revision)
        path = snapshot_download(
            rid,
            revision=revision,
            cache_dir=cache_dir,
            ignore_patterns=IGNORE_PATTERNS + shadowed_bins(files),
        )
    except GatedRepoError as exc:
        raise ModelUnavailableError(
            f"model '{rid}' is gated on the hub", hint="accept its licence and set HF_TOKEN"
        ) from exc
    except (RepositoryNotFoundError, HFValidationError) as exc:
        raise ModelUnavailableError(f"no model '{rid}' on the Hugging Face hub") from exc
    except LocalEntryNotFoundError as exc:  # what the hub client raises when unreachable
        raise _unavailable(model, cache_dir, " (the hub cannot be reached)") from exc
    except Exception as exc:  # HTTP status, connection and timeout errors of the client
        raise _unavailable(model, cache_dir, f" ({first_line(exc)})") from exc
    return Path(path)


def shadowed_bins(files: list[str]) -> list[str]:
    """``pytorch_model*.bin`` files whose folder also has ``*.safetensors`` (same weights)."""
    folders_with_st = {str(PurePosixPath(f).parent) for f in files if f.endswith(".safetensors")}
    return [
        f
        for f in files
        if fnmatch.fnmatch(PurePosixPath(f).name, "pytorch_model*.bin")
        and str(PurePosixPath(f).parent) in folders_with_st
    ]


# What changes a model's outputs: weights, configs, tokenizer/processor files.
_CONTENT_SUFFIXES = {".safetensors", ".bin", ".pt", ".pth", ".json", ".txt", ".model"}


def folder_digest(folder: Path, *, memo: Path) -> str:
    """sha256 over a model folder's weights, configs and tokenizer files.

    Hashing gigabytes on every query is not an option, so each file's hash is memoised in
    ``memo`` (JSON) under its absolute path, size and mtime; a changed file is re-hashed.
    """
    try:
        known: dict[str, list[object]] = json.loads(memo.read_text())
    except (OSError, ValueError):
        known = {}
    files = sorted(p for p in folder.rglob("*") if p.suffix in _CONTENT_SUFFIXES and p.is_file())
    total = hashlib.sha256()
    changed = False
    for path in files:
        st = path.stat()
        key, stamp = str(path.resolve()), [st.st_size, st.st_mtime_ns]
        entry = known.get(key)
        if entry is None or entry[:2] != stamp:
            entry = [*stamp, sha256_file(path)]
            known[key] = entry
            changed = True
        total.update(f"{path.relative_to(folder).as_posix()}\0{entry[2]}\n".encode())
    if changed:
        with staged_file(memo) as tmp:  # a concurrent reader never sees half a file
            tmp.write_text(json.dumps(known))
    return total.hexdigest()

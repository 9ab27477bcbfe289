"""Settings, resolved as: flag, then ``MMS_*`` environment variable, then config file,
then the XDG default.

The config file is TOML at ``$MMS_CONFIG`` or ``$XDG_CONFIG_HOME/mms/config.toml``::

    index = "~/.local/share/mms/index"
    profile = "builtin"
    threads = 1
    backend = "postgresql://mms@nas/library"  # optional: a shared database
    [limits]
    max_image_pixels = 89478485
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from platformdirs import user_cache_dir, user_config_dir, user_data_dir, user_state_dir

from mmsearch_cli.errors import UsageError

APP = "mms"


@dataclass(frozen=True)
class Limits:
    """Resource limits for hostile or huge input; each is configurable."""

    max_image_pixels: int = 89_478_485  # Pillow's own default bomb limit (~9459 x 9459)
    max_text_bytes: int = 20 * 1024 * 1024  # read at most this much of a text file
    # ... and embed at most this many chunks of it (~160 words each, ~1 MB of prose): each
    # is one MiniLM run, and a text without end must not hold a cron run for an hour
    max_text_chunks: int = 2000
    max_file_seconds: float = 600.0  # audio/video longer than this is indexed up to here
    video_min_interval: float = 1.0  # seconds between keyframes, at least
    video_max_interval: float = 10.0  # a keyframe at least this often, even without cuts
    video_max_keyframes: int = 200  # per video
    # Documents (decoders/documents.py): pages read per PDF, the rest is left out (partial)
    max_pages: int = 2000
    max_ocr_pages: int = 20  # PDF pages without a text layer read by OCR (~1-2 s each)
    # bytes inflated in all from a DOCX/ODT/EPUB zip (a zip bomb stops here)
    max_archive_bytes: int = 100 * 1024 * 1024
    max_document_seconds: float = 120.0  # reading one document stops here (partial)


@dataclass(frozen=True)
class Settings:
    index_dir: Path
    model_dir: Path
    profile: str = "builtin"
    threads: int = 1  # 1 intra-op thread measured best on 2 shared cores (README, Performance)
    limits: Limits = field(default_factory=Limits)
    # A postgresql:// URL: index into and query that database (README, "PostgreSQL backend")
    backend: str | None = None
    # Download missing model files on first use (README, "First run"); off for machines
    # that must not touch the network (MMS_AUTO_FETCH=0, config `auto_fetch = false`).
    auto_fetch: bool = True


def default_index_dir() -> Path:
    return Path(user_data_dir(APP)) / "index"


def default_model_dir() -> Path:
    return Path(user_cache_dir(APP)) / "models"


def backend_index_dir(url: str) -> Path:
    """The local working copy of an index published to ``url``, when no index folder is
    configured: one per database, named by the URL less its password."""
    import hashlib
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")
    user = netloc[0].partition(":")[0]
    key = urlunsplit((parts.scheme, f"{user}@{netloc[2]}" if netloc[1] else netloc[2],
                      parts.path, "", ""))  # fmt: skip
    return Path(user_state_dir(APP)) / "backends" / hashlib.sha256(key.encode()).hexdigest()[:16]


def config_path() -> Path:
    env = os.environ.get("MMS_CONFIG")
    return Path(env).expanduser() if env else Path(user_config_dir(APP)) / "config.toml"


def _read_config_file() -> dict[str, Any]:
    path = config_path()
    if not path.is_file():
        return {}
    import tomllib  # only with a config file: 4 ms of every command otherwise

    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read config file {path}: {exc}") from exc


def _pick(flag: Any, env: str, conf: dict[str, Any], key: str, default: Any) -> tuple[Any, str]:
    """(value, where it came from) by precedence: flag, environment, config file, default."""
    if flag is not None:
        return flag, "a flag"
    if (value := os.environ.get(env)) not in (None, ""):
        return value, env
    if key in conf:
        return conf[key], f"{config_path()} ({key})"
    return default, "the default"


def _path(value: Any, where: str, *, folder: bool) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str | os.PathLike) or not str(value).strip():
        raise UsageError(f"{where} must be a folder path, not {value!r}")
    path = Path(value).expanduser()
    if folder and path.exists() and not path.is_dir():
        raise UsageError(f"{where} must be a folder, but {path} is a file")
    return path


def _number(name: str, raw: Any, kind: type, where: str) -> Any:
    """A limit: a finite positive number of its kind (a string from the environment is
    parsed); NaN, infinities, zero or less, and wrong types are refused."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise UsageError(f"{where}: {name} must be a number, not {raw!r}")
    try:
        value = kind(float(raw)) if kind is int and not isinstance(raw, int) else kind(raw)
    except (TypeError, ValueError, OverflowError):
        raise UsageError(f"{where}: {name} must be a number, not {raw!r}") from None
    if not math.isfinite(value) or value <= 0 or (kind is int and value > 2**53):
        raise UsageError(f"{where}: {name} must be a finite number above 0, not {raw!r}")
    return value


def load_settings(
    *,
    index_dir: str | Path | None = None,
    model_dir: str | Path | None = None,
    profile: str | None = None,
    threads: int | None = None,
    backend: str | None = None,
) -> Settings:
    """Resolve settings; explicit arguments win (the CLI passes its flags here). Each is
    checked once, and a bad one is a ``UsageError`` naming it and where it came from."""
    conf = _read_config_file()
    if not isinstance(conf.get("limits", {}), dict):
        raise UsageError(f"{config_path()}: [limits] must be a table")
    index = _path(*_pick(index_dir, "MMS_INDEX", conf, "index", None), folder=True)
    models = _path(*_pick(model_dir, "MMS_MODEL_DIR", conf, "model_dir", None), folder=True)
    limit_conf = conf.get("limits", {})
    limit_kwargs: dict[str, Any] = {}
    for f in fields(Limits):
        env = f"MMS_{f.name.upper()}"
        raw, where = (os.environ[env], env) if os.environ.get(env) else (
            limit_conf.get(f.name), f"{config_path()} [limits]")  # fmt: skip
        if raw is not None:
            limit_kwargs[f.name] = _number(f.name, raw, type(getattr(Limits(), f.name)), where)
    url, where = _pick(backend, "MMS_BACKEND", conf, "backend", None)
    if url is not None and not isinstance(url, str):
        raise UsageError(f"{where}: backend must be a postgresql:// URL")
    url = url.strip() if url and url.strip() else None
    raw_threads, where = _pick(threads, "MMS_THREADS", conf, "threads", 1)
    n_threads = _number("threads", raw_threads, int, where)
    if n_threads > 256:
        raise UsageError(f"{where}: threads must be at most 256, not {raw_threads!r}")
    raw_fetch, where = _pick(None, "MMS_AUTO_FETCH", conf, "auto_fetch", True)
    auto_fetch = _switch(raw_fetch, where)
    chosen, where = _pick(profile, "MMS_PROFILE", conf, "profile", "builtin")
    if not isinstance(chosen, str) or not chosen:
        raise UsageError(f"{where}: profile must be a name, not {chosen!r}")
    return Settings(
        index_dir=index or (backend_index_dir(url) if url else default_index_dir()),
        model_dir=models or default_model_dir(),
        profile=chosen,
        threads=int(n_threads),
        limits=Limits(**limit_kwargs),
        backend=url,
        auto_fetch=auto_fetch,
    )


def _switch(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "yes", "on", "true"}:
        return True
    if text in {"0", "no", "off", "false"}:
        return False
    raise UsageError(f"{where}: expected on or off (1/0, true/false), not {value!r}")

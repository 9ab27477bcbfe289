"""Settings, resolved as: flag, then ``MMS_*`` environment variable, then config file,
then the XDG default.

The config file is TOML at ``$MMS_CONFIG`` or ``$XDG_CONFIG_HOME/mms/config.toml``::

    index = "~/.local/share/mms/index"
    profile = "builtin"
    threads = 1
    [limits]
    max_image_pixels = 89478485
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from platformdirs import user_cache_dir, user_config_dir, user_data_dir

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


@dataclass(frozen=True)
class Settings:
    index_dir: Path
    model_dir: Path
    profile: str = "builtin"
    threads: int = 1  # 1 intra-op thread measured best on 2 shared cores (README, Performance)
    limits: Limits = field(default_factory=Limits)


def default_index_dir() -> Path:
    return Path(user_data_dir(APP)) / "index"


def default_model_dir() -> Path:
    return Path(user_cache_dir(APP)) / "models"


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


def _pick(flag: Any, env: str, conf: dict[str, Any], key: str, default: Any) -> Any:
    if flag is not None:
        return flag
    if (value := os.environ.get(env)) not in (None, ""):
        return value
    if key in conf:
        return conf[key]
    return default


def load_settings(
    *,
    index_dir: str | Path | None = None,
    model_dir: str | Path | None = None,
    profile: str | None = None,
    threads: int | None = None,
) -> Settings:
    """Resolve settings; explicit arguments win (the CLI passes its flags here)."""
    conf = _read_config_file()
    index = _pick(index_dir, "MMS_INDEX", conf, "index", None)
    models = _pick(model_dir, "MMS_MODEL_DIR", conf, "model_dir", None)
    limit_conf = conf.get("limits", {})
    limit_kwargs: dict[str, Any] = {}
    for f in fields(Limits):
        raw = os.environ.get(f"MMS_{f.name.upper()}", limit_conf.get(f.name))
        if raw is not None:
            try:
                limit_kwargs[f.name] = type(getattr(Limits(), f.name))(raw)
            except (TypeError, ValueError) as exc:
                raise UsageError(f"bad value for limit {f.name}: {raw!r}") from exc
    try:
        n_threads = int(_pick(threads, "MMS_THREADS", conf, "threads", 1))
    except ValueError as exc:
        raise UsageError("MMS_THREADS must be an integer") from exc
    return Settings(
        index_dir=Path(index).expanduser() if index else default_index_dir(),
        model_dir=Path(models).expanduser() if models else default_model_dir(),
        profile=str(_pick(profile, "MMS_PROFILE", conf, "profile", "builtin")),
        threads=max(1, n_threads),
        limits=Limits(**limit_kwargs),
    )

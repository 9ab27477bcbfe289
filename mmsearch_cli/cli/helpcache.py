"""Help text, cached on disk: `mms --help` without importing typer and every command.

Building the help costs ~70 ms of a ~100 ms run (typer, the command modules, reading
every signature); reading it back costs one file. Help is a function of the code and the
terminal width only (env var values are not shown), so the key is: the words asked for,
the width, and a fingerprint of what the text is made from: this package's version, the
``cli`` modules and ``search/rows.py`` (``--format`` lists its formats) by mtime and size,
typer's own module (an upgrade changes the layout) and the Python version. Entries of an
older fingerprint are removed when a new one is written. Written to a temporary name and
renamed; a cache that cannot be read or written is no cache.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys

from mmsearch_cli import __version__

HELP_FLAGS = ("--help", "-h")
_WORD = re.compile(r"[a-z][a-z0-9-]*")  # a command name, never a value or a path


def wanted(args: list[str]) -> bool:
    """Whether ``args`` ask for help only: ``mms`` alone, or command words then --help."""
    if "_MMS_COMPLETE" in os.environ:  # a shell asking for completions
        return False
    if not args:
        return True
    return args[-1] in HELP_FLAGS and all(_WORD.fullmatch(a) for a in args[:-1])


def load(args: list[str]) -> str | None:
    try:
        with open(_entry(args), encoding="utf-8") as fh:
            return fh.read()
    except (OSError, UnicodeDecodeError):
        return None


def save(args: list[str], text: str) -> None:
    entry = _entry(args)
    folder = os.path.dirname(entry)
    try:
        os.makedirs(folder, exist_ok=True)
        with os.scandir(os.path.dirname(folder)) as siblings:  # other fingerprints: old code
            for old in siblings:
                if old.path != folder and old.is_dir(follow_symlinks=False):
                    for stale in os.scandir(old.path):
                        os.unlink(stale.path)
                    os.rmdir(old.path)
        temp = f"{entry}.{os.getpid()}.tmp"
        with open(temp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(temp, entry)
    except OSError:
        pass


def _entry(args: list[str]) -> str:
    asked = "\0".join([*args, str(_columns())])
    name = hashlib.sha256(asked.encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return os.path.join(_cache_root(), "help", _fingerprint(), f"{name}.txt")


def _columns() -> int:
    """The width click lays the help out for (``shutil.get_terminal_size``, without
    importing shutil: it pulls in bz2 and lzma)."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def _fingerprint() -> str:
    from importlib.util import find_spec

    cli = os.path.dirname(os.path.abspath(__file__))
    sources = [os.path.join(cli, n) for n in sorted(os.listdir(cli)) if n.endswith(".py")]
    sources.append(os.path.join(os.path.dirname(cli), "search", "rows.py"))
    typer = find_spec("typer")
    if typer is not None and typer.origin:
        sources.append(typer.origin)
    parts = [__version__, sys.version]
    for source in sources:
        try:
            st = os.stat(source)
        except OSError:
            continue
        parts.append(f"{source}:{st.st_mtime_ns}:{st.st_size}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _cache_root() -> str:
    """``platformdirs.user_cache_dir("mms")`` (what ``config`` uses), without importing
    platformdirs: $XDG_CACHE_HOME/mms or ~/.cache/mms, ~/Library/Caches/mms on macOS."""
    home = os.path.expanduser("~")
    if sys.platform == "darwin":
        return os.path.join(home, "Library", "Caches", "mms")
    if os.name == "nt":
        return os.path.join(os.environ.get("LOCALAPPDATA", home), "mms", "Cache")
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    return os.path.join(base if os.path.isabs(base) else os.path.join(home, ".cache"), "mms")

"""One domain exception family, each member carrying its process exit status.

The CLI maps these to exit codes at a single edge (``cli.app.main``); the library
only raises them, so ``import mmsearch_cli`` stays usable from Python.
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """Documented process exit codes (README, "Exit codes")."""

    OK = 0
    ERROR = 1  # unexpected internal error
    USAGE = 2  # bad flags or arguments (typer/click also use 2)
    INDEX_MISSING = 3  # no index at the path, or it cannot be read
    LOCK_BUSY = 4  # another `mms index` holds the index lock
    NO_RESULTS = 5  # the query ran but nothing matched
    PARTIAL = 6  # the run finished, but some files failed
    MODEL_UNAVAILABLE = 7  # a model cannot be loaded (offline, missing files)
    MISMATCH = 8  # index built with other models/dimensions than requested
    QUALITY = 9  # `mms eval` fell under a --min-* bar
    OUTPUT = 10  # results could not be written (stdout closed, or a full device)
    INTERRUPTED = 130  # Ctrl-C


class MmsError(Exception):
    """Base of every error the user should see as one clean line."""

    status: ExitStatus = ExitStatus.ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class UsageError(MmsError):
    status = ExitStatus.USAGE


class IndexMissingError(MmsError):
    status = ExitStatus.INDEX_MISSING


class IndexCorruptError(MmsError):
    status = ExitStatus.INDEX_MISSING


class IndexWriteError(MmsError):
    """The index cannot be written (disk full, file size limit, permissions). The temp
    file is removed and the target untouched, so the previous index stays intact."""

    status = ExitStatus.INDEX_MISSING


class LockBusyError(MmsError):
    status = ExitStatus.LOCK_BUSY


class NoResultsError(MmsError):
    status = ExitStatus.NO_RESULTS


class ModelUnavailableError(MmsError):
    status = ExitStatus.MODEL_UNAVAILABLE


class MismatchError(MmsError):
    status = ExitStatus.MISMATCH


class QualityBarError(MmsError):
    status = ExitStatus.QUALITY


class OutputError(MmsError):
    status = ExitStatus.OUTPUT


class MediaError(MmsError):
    """A single input file cannot be decoded; the indexer records it and moves on."""


class CodecUnavailableError(MediaError):
    """This machine's FFmpeg cannot decode the file's codec: the machine's fault, so the
    indexer tries the file again on the next run (``deferred``)."""


def first_line(exc: BaseException) -> str:
    """An exception's first non-empty line, for one-line errors (libraries write pages);
    plain words for its kind when it has no message (never a Python class name)."""
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else plain_words(exc)


def plain_words(exc: BaseException) -> str:
    """What an exception without a useful message means, for a user."""
    for kind, words in _PLAIN_WORDS:
        if isinstance(exc, kind):
            return words
    return "an unexpected error (`--debug` shows where)"


_PLAIN_WORDS: tuple[tuple[type[BaseException], str], ...] = (
    (MemoryError, "out of memory"),
    (RecursionError, "nested too deeply"),
    (TimeoutError, "timed out"),
    (ConnectionError, "the connection failed"),
    (PermissionError, "permission denied"),
    (FileNotFoundError, "no such file"),
    (UnicodeError, "text in an unknown encoding"),
    (EOFError, "cut short (ends too early)"),
    (ImportError, "a library it needs is not installed"),
)

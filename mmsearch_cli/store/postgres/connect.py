"""Connections to the backend, and its failures as one line with exit 3.

Every call into psycopg goes through ``guard``: a refused connection, a server that went
away, wrong credentials or a failed statement become a ``BackendError`` naming the
database by its redacted URL. libpq's own message never holds the password, and it is
scrubbed anyway.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from mmsearch_cli.errors import ExitStatus, MmsError, first_line
from mmsearch_cli.store.postgres.url import redact, scrub

if TYPE_CHECKING:
    import psycopg

T = TypeVar("T")

CONNECT_TIMEOUT = 10  # seconds, unless the URL says otherwise (connect_timeout=)
RETRIES = 3  # attempts of one publishing step when the connection drops
BACKOFF = 0.5  # seconds before the second attempt, doubled after each


class BackendError(MmsError):
    """The backend database cannot be reached or read (exit 3, like a missing index)."""

    status = ExitStatus.INDEX_MISSING


class ConnectionLost(BackendError):
    """The connection failed or dropped: worth another attempt (``retrying``)."""


def connect(url: str, *, autocommit: bool = True) -> psycopg.Connection[Any]:
    """A connection with pgvector's types registered (the extension must exist)."""
    import psycopg

    kwargs: dict[str, Any] = {"autocommit": autocommit, "application_name": "mms"}
    if "connect_timeout" not in url:
        kwargs["connect_timeout"] = CONNECT_TIMEOUT
    with guard(url):
        return psycopg.connect(url, **kwargs)


def register_vector(con: psycopg.Connection[Any]) -> None:
    from pgvector.psycopg import register_vector as register

    register(con)


@contextlib.contextmanager
def guard(url: str, doing: str = "read") -> Iterator[None]:
    """Turn psycopg's errors into one-line ``BackendError``s (exit 3)."""
    import psycopg

    try:
        yield
    except psycopg.OperationalError as exc:
        raise ConnectionLost(
            f"cannot {doing} the index database {redact(url)}: {_line(exc, url)}",
            hint="is the server running, and are the credentials right?",
        ) from None
    except psycopg.InterfaceError as exc:  # a connection closed under us
        raise ConnectionLost(
            f"lost the index database {redact(url)}: {_line(exc, url)}",
        ) from None
    except psycopg.Error as exc:
        raise BackendError(
            f"the index database {redact(url)} failed: {_line(exc, url)}",
        ) from None


def _line(exc: BaseException, url: str) -> str:
    text = " ".join(first_line(exc).split())
    return scrub(text, url).removeprefix("connection failed: ")


def retrying(step: Callable[[], T], reconnect: Callable[[], None]) -> T:
    """Run ``step``; if the connection drops, reconnect and run it again, up to
    ``RETRIES`` attempts in all (each step is one transaction: nothing half-done)."""
    delay = BACKOFF
    for attempt in range(1, RETRIES + 1):
        try:
            return step()
        except ConnectionLost:
            if attempt == RETRIES:
                raise
        time.sleep(delay)
        delay *= 2
        with contextlib.suppress(ConnectionLost):
            reconnect()
    raise AssertionError("unreachable")

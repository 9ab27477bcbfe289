"""Backend URLs: checked, shown without their password, and the name of this indexer.

Credentials come from wherever libpq finds them (the URL, ``PGPASSWORD``, ``~/.pgpass``,
a service file); mms passes the URL through untouched (TLS options included) and only
ever shows it redacted.
"""

from __future__ import annotations

import os
import re
import socket
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from mmsearch_cli.errors import UsageError

SCHEMES = ("postgresql", "postgres")
HIDDEN = "***"
_SECRET_KEYS = frozenset({"password", "sslpassword"})


def check(url: str) -> str:
    """A backend URL as given, or a usage error (shown redacted)."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in SCHEMES:
        raise UsageError(
            f"--backend takes a postgresql:// URL, not {redact(url)!r}",
            hint="e.g. postgresql://user@host/db",
        )
    return url


def _netloc(user: str | None, password: str | None, hosts: str) -> str:
    if user is None and password is None:
        return hosts
    return f"{user or ''}{':' + password if password is not None else ''}@{hosts}"


def _split(url: str) -> tuple[str, str | None, str | None, str, str, str, str]:
    parts = urlsplit(url)
    userinfo, sep, hosts = parts.netloc.rpartition("@")
    user: str | None = None
    password: str | None = None
    if sep:
        user, colon, secret = userinfo.partition(":")
        password = secret if colon else None
    return parts.scheme, user, password, hosts, parts.path, parts.query, parts.fragment


def redact(url: str) -> str:
    """The URL with any password (in the user part or the query) replaced by ``***``."""
    try:
        scheme, user, password, hosts, path, query, frag = _split(url)
    except ValueError:
        return HIDDEN
    if password is not None:
        password = HIDDEN
    pairs = [(k, HIDDEN if k.lower() in _SECRET_KEYS else v)
             for k, v in parse_qsl(query, keep_blank_values=True)]  # fmt: skip
    rebuilt = urlunsplit((scheme, _netloc(user, password, hosts), path, urlencode(pairs), frag))
    return rebuilt.replace("%2A%2A%2A", HIDDEN)


def without_password(url: str) -> str:
    """The URL less its secrets: what names a database (the local working copy's key)."""
    scheme, user, _, hosts, path, query, frag = _split(url)
    pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True)
             if k.lower() not in _SECRET_KEYS]  # fmt: skip
    return urlunsplit((scheme, _netloc(user, None, hosts), path, urlencode(pairs), frag))


def secrets_of(url: str) -> list[str]:
    """The password strings in a URL, so a message can be scrubbed of them."""
    try:
        _, _, password, _, _, query, _ = _split(url)
    except ValueError:
        return []
    found = [password] if password else []
    found += [v for k, v in parse_qsl(query) if k.lower() in _SECRET_KEYS and v]
    return found


def scrub(text: str, url: str) -> str:
    """``text`` with the URL's passwords (if any slipped in) replaced by ``***``."""
    for secret in secrets_of(url):
        text = text.replace(secret, HIDDEN)
    return re.sub(r"(password\s*=\s*)\S+", rf"\g<1>{HIDDEN}", text, flags=re.IGNORECASE)


def host_name() -> str:
    """This indexer's name in the database: ``MMS_HOST``, else the machine's host name."""
    return os.environ.get("MMS_HOST") or socket.gethostname()

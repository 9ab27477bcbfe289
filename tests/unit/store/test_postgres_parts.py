"""The backend's pure parts: URLs shown without secrets, globs as regexes, FTS5's tokens
as a tsvector and a tsquery. (The server itself: tests/e2e/test_postgres.py.)"""

from __future__ import annotations

import re

import pytest

from mmsearch_cli.config import backend_index_dir, load_settings
from mmsearch_cli.errors import UsageError
from mmsearch_cli.store.postgres import lexical
from mmsearch_cli.store.postgres.filters import glob_regex
from mmsearch_cli.store.postgres.publish import lock_key, under
from mmsearch_cli.store.postgres.url import check, redact, scrub, without_password


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://mms:s3cr3t@nas.local:5432/library",
        "postgresql://mms:s3cr3t@nas.local/library?sslmode=verify-full&sslrootcert=/ca.pem",
        "postgres://mms@nas/library?password=s3cr3t",
        "postgresql://:s3cr3t@/library?host=/run/postgresql",
    ],
)
def test_a_url_is_never_shown_with_its_password(url: str) -> None:
    shown = redact(url)
    assert "s3cr3t" not in shown and "***" in shown
    assert "s3cr3t" not in without_password(url)
    assert "s3cr3t" not in scrub(f"failed: {url} password=s3cr3t", url)


def test_redaction_keeps_the_rest_of_the_url() -> None:
    shown = redact("postgresql://mms:pw@nas.local:5432/library?sslmode=require")
    assert shown == "postgresql://mms:***@nas.local:5432/library?sslmode=require"
    assert redact("postgresql://mms@nas/db") == "postgresql://mms@nas/db"


def test_only_postgresql_urls_are_backends() -> None:
    assert check("postgresql://h/db") == "postgresql://h/db"
    with pytest.raises(UsageError) as err:
        check("mysql://root:hunter2@h/db")
    assert "hunter2" not in str(err.value)


def test_the_working_copy_is_named_by_the_url_without_its_password(monkeypatch) -> None:
    a = backend_index_dir("postgresql://mms:one@nas/library")
    b = backend_index_dir("postgresql://mms:two@nas/library?sslmode=require")
    assert a == b and "one" not in str(a)
    assert backend_index_dir("postgresql://mms@nas/other") != a
    monkeypatch.setenv("MMS_BACKEND", "postgresql://mms@nas/library")
    assert load_settings().backend == "postgresql://mms@nas/library"
    assert load_settings(index_dir="/tmp/x").index_dir.as_posix() == "/tmp/x"
    monkeypatch.setenv("MMS_BACKEND", "")
    assert load_settings().backend is None


@pytest.mark.parametrize(
    ("glob", "matches", "misses"),
    [
        ("*.jpg", ["/p/a.jpg", "/p/q/b.jpg"], ["/p/a.jpeg"]),
        ("*/2019-0?/*", ["/p/2019-07/x.png"], ["/p/2019-10/x.png"]),
        ("*[!t].md", ["/p/a.md"], ["/p/t.md"]),
        ("*(1)+.txt", ["/p/a(1)+.txt"], ["/p/a1.txt"]),
    ],
)
def test_globs_read_as_sqlite_reads_them(glob: str, matches: list[str], misses: list[str]) -> None:
    pattern = re.compile(glob_regex(glob))
    assert all(pattern.search(p) for p in matches)
    assert not any(pattern.search(p) for p in misses)


def test_segments_are_tokenized_as_the_local_fts5_table_tokenizes_them() -> None:
    tok = lexical.Tokenizer()
    [(body, names)] = tok.split([("Running dogs at the café, DSC_0042", "Iceland 2019 DSC 0042")])
    assert body == ["run", "dog", "at", "the", "cafe", "dsc", "0042"]
    assert names == ["iceland", "2019", "dsc", "0042"]
    text, length = lexical.tsvector(body, names)
    assert length == 11
    assert "'dsc':6,11A" in text and "'cafe':5" in text


def test_a_query_becomes_a_tsquery_of_the_same_terms() -> None:
    tok = lexical.Tokenizer()
    q = lexical.query('red dresses "summer 2019"', tok)
    assert q is not None
    assert q.tsquery == "('summer' <-> '2019') & (('summer' <-> '2019') | ('red') | ('dress'))"
    assert q.terms == [["summer", "2019"], ["summer", "2019"], ["red"], ["dress"]]
    assert lexical.query("the of and", tok) is None
    minus = lexical.query("beach", tok, plus=["sunset"], minus=["people's"])
    assert minus is not None
    assert minus.tsquery == "(('beach') | ('sunset')) & !(('peopl') | ('s'))"
    odd = lexical.query("o'brien \\ ' -- ;", tok)
    assert odd is not None and "'brien'" in odd.tsquery


def test_lock_keys_and_roots() -> None:
    assert lock_key("nas", "/a") == lock_key("nas", "/a")
    assert lock_key("nas", "/a") != lock_key("laptop", "/a")
    assert -(2**63) <= lock_key("nas", "/a") < 2**63
    assert under(b"/a/b/c.txt", b"/a/b") and under(b"/a/b", b"/a/b")
    assert not under(b"/a/bc/d.txt", b"/a/b")

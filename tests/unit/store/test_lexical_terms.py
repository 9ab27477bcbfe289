"""``--plus``/``--minus`` in the lexical space: the FTS5 expression, run by SQLite's own FTS5.

Whatever a user types as a term reaches FTS5 as quoted tokens, never as syntax: every
expression parses (``db.lexical`` would otherwise answer nothing, silently)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmsearch_cli.store.lexical import TOKENIZE, match_expression

ROWS = {
    1: "wind turbines make energy on the hills",
    2: "solar panels make energy from sunlight",
    3: "a dam holds back water for energy",
    4: "people on a sunny beach at sunset",
    5: "an empty beach at sunset",
}


@pytest.fixture(scope="module")
def con() -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(":memory:")
    db.execute(f"CREATE VIRTUAL TABLE t USING fts5(body, tokenize='{TOKENIZE}')")
    db.executemany("INSERT INTO t(rowid, body) VALUES (?, ?)", ROWS.items())
    yield db
    db.close()


def matched(con: sqlite3.Connection, expr: str | None) -> set[int]:
    if expr is None:
        return set()
    return {r for (r,) in con.execute("SELECT rowid FROM t WHERE t MATCH ?", (expr,))}


def test_minus_excludes_and_plus_adds(con: sqlite3.Connection) -> None:
    assert matched(con, match_expression("energy")) == {1, 2, 3}
    assert matched(con, match_expression("energy", minus=["wind"])) == {2, 3}
    assert matched(con, match_expression("energy", minus=["winds", "DAMS"])) == {2}  # stems
    assert matched(con, match_expression("beach", minus=["people"])) == {5}
    assert matched(con, match_expression("beach", plus=["water"])) == {3, 4, 5}
    # a quoted minus phrase excludes the phrase only, not its words one by one
    assert matched(con, match_expression("energy", minus=['"make energy"'])) == {3}
    # stop words alone exclude nothing; a required phrase stays required
    assert matched(con, match_expression("energy", minus=["the of"])) == {1, 2, 3}
    assert matched(con, match_expression('"solar panels" energy', plus=["dam"])) == {2}
    assert match_expression("energy") == '"energy"'  # no terms: as before


@pytest.mark.parametrize(
    "term",
    ['NEAR( "unbalanced', "*", "AND OR NOT", '"', '""', "^body:x", "a - b + c", "(", "col:*",
     "{body}: wind", "\x00", "ünïcödé wind"],
)  # fmt: skip
def test_fts5_syntax_in_a_term_is_only_words(con: sqlite3.Connection, term: str) -> None:
    for expr in (match_expression("energy", minus=[term]), match_expression("x", plus=[term])):
        matched(con, expr)  # parses: an OperationalError would fail the test
    assert matched(con, match_expression("energy", minus=[term])) <= {1, 2, 3}


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=30),
    st.lists(st.text(max_size=20), max_size=3),
    st.lists(st.text(max_size=20), max_size=3),
)
def test_every_expression_parses(query: str, plus: list[str], minus: list[str]) -> None:
    db = sqlite3.connect(":memory:")
    db.execute(f"CREATE VIRTUAL TABLE t USING fts5(body, tokenize='{TOKENIZE}')")
    db.executemany("INSERT INTO t(rowid, body) VALUES (?, ?)", ROWS.items())
    expr = match_expression(query, plus, minus)
    positive = match_expression(query, plus)
    # never a syntax error, and a minus term only ever takes rows away
    assert matched(db, expr) <= matched(db, positive)

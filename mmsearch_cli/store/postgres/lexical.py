"""The lexical space in PostgreSQL, ranked as the local store ranks it.

The local lexical space is SQLite FTS5 (Porter stems, unicode61 with diacritics folded)
ranked by BM25. PostgreSQL's own parsers stem and split words differently, so the
tsvector is built from FTS5's tokens: an in-memory FTS5 table with the same tokenizer
splits each segment's body and path words (``fts5vocab``), and the query's words the same
way. The tsvector then holds exactly the local index's terms (body words unlabelled,
path words labelled ``A``), its GIN index finds the matching segments, and BM25 is
computed in SQL with FTS5's constants and formula:

    idf(t) = max(ln((N - n(t) + 0.5) / (n(t) + 0.5)), 1e-6)
    score  = sum_t idf(t) * f(t) * (k1 + 1) / (f(t) + k1 * (1 - b + b * |D| / avgdl))

where f(t) counts body matches once and path-word matches 0.5 times (FTS5's column
weights 1.0 and 0.5), and N and avgdl come from each source's counts. A quoted phrase's
f is the least of its words' (FTS5 counts the phrase's own occurrences): phrases are
rare in queries, and this only changes how they rank, not what matches.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field

from mmsearch_cli.store.lexical import _WORD, STOP_WORDS, TOKENIZE

K1, B = 1.2, 0.75
NAME_WEIGHT = 0.5  # FTS5's weight of the path-words column (store.db.lexical)
MAX_POSITION = 16383  # tsvector positions stop here
MAX_LEXEME = 2046  # bytes; tsvector refuses longer lexemes
NAME_GAP = 2  # positions between the body's words and the path words: no phrase spans both


class Tokenizer:
    """FTS5's tokenizer (the local lexical table's) on strings, in memory."""

    def __init__(self) -> None:
        self.con = sqlite3.connect(":memory:", isolation_level=None)
        self.con.execute(f"CREATE VIRTUAL TABLE t USING fts5(body, names, tokenize='{TOKENIZE}')")
        self.con.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, instance)")

    def split(self, rows: Sequence[tuple[str, str]]) -> list[tuple[list[str], list[str]]]:
        """Each (body, names) as its (body tokens, names tokens), in order."""
        self.con.execute("BEGIN")
        self.con.executemany(
            "INSERT INTO t(rowid, body, names) VALUES (?, ?, ?)",
            [(n, body, names) for n, (body, names) in enumerate(rows)],
        )
        out: list[tuple[list[str], list[str]]] = [([], []) for _ in rows]
        found: list[tuple[int, int, str, str]] = [
            (doc, offset, col, term)
            for term, doc, col, offset in self.con.execute("SELECT term, doc, col, offset FROM v")
        ]
        self.con.execute("ROLLBACK")
        found.sort()
        for doc, _, col, term in found:
            out[doc][0 if col == "body" else 1].append(term)
        return out

    def words(self, text: str) -> list[str]:
        """A query phrase's tokens, as FTS5 reads a quoted string."""
        return self.split([(text, "")])[0][0]


def _quote(lexeme: str) -> str:
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def _fits(lexeme: str) -> bool:
    return 0 < len(lexeme.encode("utf-8")) <= MAX_LEXEME


def tsvector(body: list[str], names: list[str]) -> tuple[str, int]:
    """A tsvector literal of a segment's tokens, and its length in tokens (BM25's |D|)."""
    positions: dict[str, list[str]] = {}
    for n, term in enumerate(body, start=1):
        positions.setdefault(term, []).append(str(min(n, MAX_POSITION)))
    start = len(body) + NAME_GAP
    for n, term in enumerate(names, start=start):
        positions.setdefault(term, []).append(f"{min(n, MAX_POSITION)}A")
    text = " ".join(f"{_quote(t)}:{','.join(p[:256])}" for t, p in positions.items() if _fits(t))
    return text, len(body) + len(names)


@dataclass
class LexicalQuery:
    """A query as FTS5 would match it: a tsquery literal, and its phrase instances (each
    a list of tokens) that BM25 sums over."""

    tsquery: str
    terms: list[list[str]]
    excluded: list[list[str]] = field(default_factory=list)

    @property
    def words_only(self) -> bool:
        """Every term and every excluded one is a single token: the postings answer it."""
        return all(len(t) == 1 for t in [*self.terms, *self.excluded])


def _phrase(tokens: list[str]) -> str:
    return "(" + " <-> ".join(_quote(t) for t in tokens) + ")"


def _parts(text: str) -> tuple[list[str], list[str]]:
    """A text's quoted phrases and its other words, stop words dropped: the same reading
    as ``store.lexical.match_expression``."""
    phrases: list[str] = []
    rest: list[str] = []
    for n, part in enumerate(text.split('"')):
        words = _WORD.findall(part)
        if n % 2 == 1 and words:
            phrases.append(" ".join(words))
        else:
            rest.extend(w for w in words if w.lower() not in STOP_WORDS)
    return phrases, rest


def _usable(tok: Tokenizer, texts: Sequence[str]) -> list[list[str]]:
    out = [tok.words(t) for t in texts]
    return [p for p in out if p and all(_fits(t) for t in p)]


def query(
    text: str, tok: Tokenizer, plus: Sequence[str] = (), minus: Sequence[str] = ()
) -> LexicalQuery | None:
    """The lexical query for a user's words (``plus`` words rank too, a segment matching
    any ``minus`` word is left out), or None if nothing in it can match."""
    phrase_texts, rest = _parts(text)
    extra: list[str] = []
    for more in plus:
        more_phrases, more_words = _parts(more)
        extra += more_phrases
        rest += more_words
    phrases = _usable(tok, phrase_texts)
    optional = _usable(tok, [*extra, *dict.fromkeys(w.lower() for w in rest)])
    if phrases and optional:
        terms = [*phrases, phrases[0], *optional]
        match = " & ".join(_phrase(p) for p in phrases)
        match += " & (" + " | ".join(_phrase(p) for p in [phrases[0], *optional]) + ")"
    elif phrases or optional:
        terms = phrases or optional
        match = (" & " if phrases else " | ").join(_phrase(p) for p in terms)
    else:
        return None
    excluded: list[list[str]] = []
    for text_out in minus:
        out_phrases, out_words = _parts(text_out)
        excluded += _usable(tok, [*out_phrases, *(w.lower() for w in out_words)])
    if excluded:
        match = f"({match}) & !(" + " | ".join(_phrase(p) for p in excluded) + ")"
    return LexicalQuery(match, terms, excluded)


# The BM25 statement: %(where)s is the structured filters over ``f`` (or TRUE).
BM25_SQL = """
WITH st AS (
    SELECT greatest(coalesce(sum((stats->>'segments')::float8), 0), 1) AS n,
           greatest(coalesce(sum((stats->>'tokens')::float8), 0), 1) AS tokens
    FROM mms_sources
),
terms AS (
    SELECT t.no, t.nw,
           greatest(ln((st.n - c.hit + 0.5) / (c.hit + 0.5)), 1e-6) AS idf
    FROM unnest(%(tq)s::text[], %(nw)s::int[]) WITH ORDINALITY AS t(q, nw, no)
    CROSS JOIN st
    CROSS JOIN LATERAL (SELECT count(*) AS hit FROM mms_segments
                        WHERE tsv @@ t.q::tsquery) AS c
),
words AS (SELECT * FROM unnest(%(no)s::bigint[], %(lex)s::text[]) AS w(no, lex)),
hits AS (
    SELECT s.id, s.dl, s.tsv FROM mms_segments s {join}
    WHERE s.tsv @@ %(match)s::tsquery {where}
),
tf AS (
    SELECT h.id, h.dl, w.no, min(x.f) AS f, count(DISTINCT w.lex) AS nw
    FROM hits h
    CROSS JOIN LATERAL (
        SELECT u.lexeme, cardinality(u.positions)
               - (1 - %(nweight)s) * cardinality(array_positions(u.weights, 'A')) AS f
        FROM unnest(h.tsv) AS u WHERE u.lexeme = ANY(%(lex)s::text[])) AS x
    JOIN words w ON w.lex = x.lexeme
    GROUP BY h.id, h.dl, w.no
)
SELECT id, score FROM (
    SELECT tf.id, sum(terms.idf * tf.f * (%(k1)s + 1)
                      / (tf.f + %(k1)s * (1 - %(b)s + %(b)s * tf.dl / (st.tokens / st.n))))
           AS score
    FROM tf JOIN terms ON terms.no = tf.no AND terms.nw <= tf.nw CROSS JOIN st
    GROUP BY tf.id
) AS scored
-- Equal scores summed in another order differ in their last bits: rounded, ties go by id.
ORDER BY round(score::numeric, 9) DESC, id LIMIT %(k)s
"""


def bm25_params(q: LexicalQuery, k: int) -> dict[str, object]:
    nos: list[int] = []
    lexemes: list[str] = []
    for n, term in enumerate(q.terms, start=1):
        for lexeme in dict.fromkeys(term):
            nos.append(n)
            lexemes.append(lexeme)
    return {
        "tq": [_phrase(t) for t in q.terms],
        "nw": [len(set(t)) for t in q.terms],
        "no": nos,
        "lex": lexemes,
        "match": q.tsquery,
        "nweight": NAME_WEIGHT,
        "k1": K1,
        "b": B,
        "k": k,
    }


# BM25 from the postings (``mms_postings``: one row per word and segment, with the word's
# f and the segment's |D|) when every term is one word: only the query words' postings are
# read, each word's n(t) is its postings' count, and the top k are chosen in SQL. Summed
# over the same terms with the same f, the scores are BM25_SQL's.
POSTINGS_SQL = """
WITH st AS (
    SELECT greatest(coalesce(sum((stats->>'segments')::float8), 0), 1) AS n,
           greatest(coalesce(sum((stats->>'tokens')::float8), 0), 1) AS tokens
    FROM mms_sources
),
p AS MATERIALIZED (
    SELECT lex, seg, f, dl FROM mms_postings WHERE lex = ANY(%(lex)s::text[])
),
terms AS (
    SELECT q.lex, q.times * greatest(ln((st.n - c.hit + 0.5) / (c.hit + 0.5)), 1e-6) AS idf
    FROM unnest(%(lex)s::text[], %(times)s::int[]) AS q(lex, times)
    CROSS JOIN st
    JOIN (SELECT lex, count(*)::float8 AS hit FROM p GROUP BY lex) AS c ON c.lex = q.lex
),
scored AS (
    SELECT p.seg AS id, sum(terms.idf * p.f * (%(k1)s + 1)
                            / (p.f + %(k1)s * (1 - %(b)s + %(b)s * p.dl / (st.tokens / st.n))))
           AS score
    FROM p JOIN terms ON terms.lex = p.lex CROSS JOIN st
    {exclude}
    GROUP BY p.seg
)
SELECT scored.id, scored.score FROM scored {join}
WHERE TRUE {where}
ORDER BY round(scored.score::numeric, 9) DESC, scored.id LIMIT %(k)s
"""
POSTINGS_EXCLUDE = (
    "WHERE NOT EXISTS (SELECT 1 FROM mms_postings x WHERE x.lex = ANY(%(out)s::text[]) "
    "AND x.seg = p.seg)"
)


def postings_params(q: LexicalQuery, k: int) -> dict[str, object]:
    """The parameters of POSTINGS_SQL (``q.words_only`` must hold). A word the query
    holds twice (two words with one stem) counts twice, as in FTS5."""
    times: dict[str, int] = {}
    for (lexeme,) in q.terms:
        times[lexeme] = times.get(lexeme, 0) + 1
    return {
        "lex": list(times),
        "times": list(times.values()),
        "out": [t[0] for t in q.excluded],
        "k1": K1,
        "b": B,
        "k": k,
    }

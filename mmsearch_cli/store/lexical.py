"""Words for the lexical space: what a file's path says, and a user's query as FTS5 syntax.

The lexical space is an SQLite FTS5 table (BM25) over everything textual mms knows of a
segment: chunk text, transcripts, OCR words, label and tag words, embedded metadata, and
the words of its file's path. Exact words matter where embeddings blur them: names,
codes, error messages, "Iceland 2019/DSC_0042.jpg".

A query is plain words by default (any may match; BM25 ranks), "quoted phrases" must
match, and nothing a user types can reach FTS5 as syntax: every token is quoted.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from mmsearch_cli.store.state import SegmentRecord

# FTS5 tokenizer: Porter stems ("dogs" finds "dog"), unicode61 folds case and accents.
TOKENIZE = "porter unicode61 remove_diacritics 2"

# English function words: with OR semantics they match nearly every row and only add
# noise; a query made only of them is left to the dense spaces.
_STOP = (
    "a an and are as at be but by for from has have how i if in into is it its me my no "
    "not of on or our so than that the their them then there these they this to was we "
    "what when where which who why will with you your do does did can could would should "
    "about show find photo photos picture pictures image images"
)
STOP_WORDS = frozenset(_STOP.split())

_WORD = re.compile(r"\w+", re.UNICODE)
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_DIGITS = re.compile(r"(?<=\d)(?=\D)|(?<=\D)(?=\d)")


def path_words(path: str) -> str:
    """The words of a path, split on separators, case changes and digits:
    ``/p/2019-07 Iceland/DSC_0042.jpg`` -> ``2019 07 Iceland DSC 0042 jpg``."""
    parts: list[str] = []
    for token in _WORD.findall(path.replace("_", " ")):
        for piece in _CAMEL.split(token):
            parts.extend(p for p in _DIGITS.split(piece) if p)
    return " ".join(parts)


def name_words(path: str, depth: int = 3) -> str:
    """Path words of the file name and its last ``depth`` folders: the part of a path a
    person names (the folders above them would match every file)."""
    tail = path.split(os.sep)[-(depth + 1) :]
    return path_words(os.sep.join(tail))


def _quote(token: str) -> str:
    return '"' + token.replace('"', '""') + '"'


def match_expression(query: str, plus: Sequence[str] = (), minus: Sequence[str] = ()) -> str | None:
    """FTS5 MATCH syntax for a user's query, or None if nothing in it can match.

    ``red dress "summer 2019"`` -> ``"summer 2019" AND ("summer 2019" OR "red" OR "dress")``:
    every quoted phrase is required; plain words rank. Stop words are dropped. ``plus``
    words and phrases rank beside the query's own; a segment matching any of ``minus``
    is excluded: ``... NOT ("people" OR "crowd")``.
    """
    phrases, rest = _parts(query)
    extra: list[str] = []
    for text in plus:
        more_phrases, more_words = _parts(text)
        extra += more_phrases
        rest += more_words
    optional = [*extra, *(_quote(w) for w in dict.fromkeys(w.lower() for w in rest))]
    if not phrases:
        positive = " OR ".join(optional) if optional else None
    elif not optional:
        positive = " AND ".join(phrases)
    else:
        positive = f"{' AND '.join(phrases)} AND ({' OR '.join([phrases[0], *optional])})"
    excluded: list[str] = []
    for text in minus:
        minus_phrases, minus_words = _parts(text)
        excluded += minus_phrases + [_quote(w.lower()) for w in minus_words]
    if positive is None or not excluded:
        return positive
    # NOT binds tighter than AND and OR in FTS5: both sides go in parentheses.
    return f"({positive}) NOT ({' OR '.join(dict.fromkeys(excluded))})"


def _parts(text: str) -> tuple[list[str], list[str]]:
    """A query's "quoted phrases" (FTS5-quoted) and its other words, stop words dropped."""
    phrases: list[str] = []
    rest: list[str] = []
    for n, part in enumerate(text.split('"')):
        words = _WORD.findall(part)
        if n % 2 == 1 and words:  # inside quotes
            phrases.append(_quote(" ".join(words)))
        else:
            rest.extend(w for w in words if w.lower() not in STOP_WORDS)
    return phrases, rest


def terms(query: str) -> list[str]:
    """The words of a query that take part in matching, lower-cased (for ``--explain``)."""
    return [w.lower() for w in _WORD.findall(query) if w.lower() not in STOP_WORDS]


def body_of(seg: SegmentRecord) -> str:
    """A segment's words for BM25: its text (chunk, transcript, or the sentence made from
    its labels, scenes, colours and OCR words), its file's tags (title, artist, album…)
    and a photo's facts (place, date words, camera, people)."""
    tags = seg.why.get("file_tags") or {}
    facts = seg.why.get("facts") or {}
    extra = " ".join(str(v) for v in [*tags.values(), *facts.values()] if v)
    return f"{seg.text} {extra}".strip()

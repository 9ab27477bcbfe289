"""``mms query``: text, image, audio or video in; ranked files out."""

from __future__ import annotations

import sys
import typing
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from mmsearch_cli.cli import console
from mmsearch_cli.cli.options import (
    FormatOpt,
    IndexOpt,
    QuietOpt,
    check_format,
    parse_types,
    settings,
)
from mmsearch_cli.errors import NoResultsError, UsageError
from mmsearch_cli.items import modality_of
from mmsearch_cli.search.rows import render, to_row

MediaOpt = Annotated[Path | None, typer.Option(exists=False, dir_okay=False, show_default=False)]


def register(app: typer.Typer) -> None:
    app.command("query")(query)
    app.command("rerank")(rerank)


def _parse_date(value: str | None, flag: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{flag} takes a date like 2024-05-31 or 2024-05-31T12:00") from None


def _size(value: str | None, flag: str) -> int | None:
    if not value:
        return None
    units = {"k": 1e3, "m": 1e6, "g": 1e9}
    v = value.strip().lower().rstrip("b")
    try:
        if v and v[-1] in units:
            return int(float(v[:-1]) * units[v[-1]])
        return int(v)
    except ValueError:
        raise UsageError(f"{flag} takes a size like 500k, 20M or 1G") from None


def query(
    text: Annotated[
        str | None,
        typer.Argument(
            help="What to look for. An existing media file path also works.", show_default=False
        ),
    ] = None,
    image: Annotated[
        Path | None,
        typer.Option("--image", help="Find things like this image.", show_default=False),
    ] = None,
    audio: Annotated[
        Path | None,
        typer.Option("--audio", help="Find things like this sound.", show_default=False),
    ] = None,
    video: Annotated[
        Path | None,
        typer.Option("--video", help="Find things like this video.", show_default=False),
    ] = None,
    top: Annotated[
        int, typer.Option("--top", "-k", min=1, envvar="MMS_TOP", help="Number of results.")
    ] = 10,
    types: Annotated[
        str | None,
        typer.Option("--type", "-t", help="Only these file types: text,image,audio,video."),
    ] = None,
    path: Annotated[
        str | None, typer.Option("--path", help="Only paths (or file names) matching this glob.")
    ] = None,
    after: Annotated[
        str | None, typer.Option(help="Only files taken/modified on or after this date.")
    ] = None,
    before: Annotated[
        str | None, typer.Option(help="Only files taken/modified before this date.")
    ] = None,
    min_size: Annotated[
        str | None, typer.Option(help="Only files at least this big (e.g. 200k).")
    ] = None,
    max_size: Annotated[
        str | None, typer.Option(help="Only files at most this big (e.g. 5M).")
    ] = None,
    space: Annotated[
        str | None, typer.Option(help="Search one space only (see `mms info`).")
    ] = None,
    segments: Annotated[
        bool, typer.Option("--segments", help="List matching segments, not files.")
    ] = False,
    explain: Annotated[
        bool, typer.Option("--explain", help="Show each space's rank and score.")
    ] = False,
    rerank: Annotated[
        bool, typer.Option("--rerank", help="Re-score the candidates with a cross-encoder.")
    ] = False,
    reranker: Annotated[
        str | None,
        typer.Option(
            envvar="MMS_RERANKER",
            help="Cross-encoder: a sentence-transformers id or folder [default: packaged].",
        ),
    ] = None,
    candidates: Annotated[int, typer.Option(min=1, help="Candidates from the first stage.")] = 100,
    fmt: FormatOpt = "table",
    null: Annotated[
        bool, typer.Option("-0", "--null", help="NUL-separated paths, for xargs -0.")
    ] = False,
    index: IndexOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Search the index with text, or with an image, sound or video file.

    Example: mms query "a red dress" -k 5 --type image --format jsonl | jq -r .path
    """
    from mmsearch_cli.search.engine import Query, SearchOptions, search
    from mmsearch_cli.store.index import IndexReader

    check_format(fmt)
    conf = settings(index, quiet)
    media = [m for m in (image, audio, video) if m is not None]
    if len(media) + (text is not None) != 1:
        raise UsageError("give exactly one query: TEXT, --image, --audio or --video")
    if text is not None and not text.strip():
        raise UsageError("the query text is empty")
    if text is not None and modality_of(text) not in (None, "text") and Path(text).is_file():
        console.info(f"mms: treating '{text}' as a {modality_of(text)} query (file exists)")
        media, text = [Path(text)], None
    if media:
        if not media[0].is_file():
            raise UsageError(f"query file not found: {media[0]}")
        q = Query(media=media[0].resolve())
    else:
        q = Query(text=text)
    opts = SearchOptions(
        k=top if not rerank else max(top, candidates),
        types=parse_types(types), path_glob=path, space=space, segments=segments,
        pool=max(candidates, top), after=_parse_date(after, "--after"),
        before=_parse_date(before, "--before"), min_size=_size(min_size, "--min-size"),
        max_size=_size(max_size, "--max-size"),
        exclude_paths=frozenset({str(q.media)}) if q.media else frozenset(),
    )  # fmt: skip
    reader = IndexReader.open(conf.index_dir)
    hits = search(reader, q, conf, opts)
    rows = [to_row(h) for h in hits]
    if rerank:
        if text is None:
            raise UsageError("--rerank needs a text query")
        from mmsearch_cli.rerank.stage import rerank_rows

        rows = rerank_rows(text, rows, conf, spec=reranker, k=top)
    if not rows:
        raise NoResultsError("no results")
    emit(rows, fmt, null, explain=explain)


def emit(rows: list[dict[str, typing.Any]], fmt: str, null: bool, *, explain: bool = False) -> None:
    """Results to stdout: a table for people (with each space's rank under --explain),
    or one of the machine formats."""
    if fmt != "table" or null:
        render(rows, fmt, sys.stdout.buffer, nul=null)
        return
    console.print_table(rows)
    if explain:
        for row in rows:
            parts = ", ".join(
                f"{s} #{v['rank']} ({v['score']:.3f})" for s, v in row["spaces"].items()
            )
            sys.stdout.write(f"  {row['rank']:>3}  {parts}\n")


def rerank(
    text: Annotated[
        str, typer.Argument(help="The query the candidates answer.", show_default=False)
    ],
    top: Annotated[
        int | None, typer.Option("--top", "-k", min=1, help="Keep this many [default: all].")
    ] = None,
    reranker: Annotated[
        str | None,
        typer.Option(
            envvar="MMS_RERANKER",
            help="Cross-encoder: a sentence-transformers id or folder [default: packaged].",
        ),
    ] = None,
    alpha: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="Weight of the cross-encoder in the final score."),
    ] = None,
    fmt: FormatOpt = "jsonl",
    null: Annotated[
        bool, typer.Option("-0", "--null", help="NUL-separated paths, for xargs -0.")
    ] = False,
    quiet: QuietOpt = False,
) -> None:
    """Re-order piped `mms query --format jsonl` results with a cross-encoder.

    Example: mms query "red dress" -k 200 --format jsonl | mms rerank "red dress" -k 10
    """
    from mmsearch_cli.rerank.stage import DEFAULT_ALPHA, rerank_rows

    check_format(fmt)
    conf = settings(None, quiet)
    if sys.stdin.isatty():
        raise UsageError("mms rerank reads `mms query --format jsonl` results on stdin")
    rows = read_jsonl_rows(sys.stdin.buffer)
    out = rerank_rows(
        text, rows, conf, spec=reranker, k=top, alpha=DEFAULT_ALPHA if alpha is None else alpha
    )
    if not out:
        raise NoResultsError("no results")
    emit(out, fmt, null)


def read_jsonl_rows(stream: typing.BinaryIO) -> list[dict[str, typing.Any]]:
    """Parse piped rows; a bad line is a usage error naming its line number."""
    import json

    rows = []
    for n, raw in enumerate(stream, start=1):
        line = raw.decode("utf-8", "replace").strip()
        if not line:
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"stdin line {n}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict) or "path" not in row or "score" not in row:
            raise UsageError(
                f"stdin line {n}: expected a `mms query --format jsonl` row with path and score"
            )
        try:
            row["score"] = float(row["score"])
        except (TypeError, ValueError):
            raise UsageError(f"stdin line {n}: score is not a number") from None
        rows.append(row)
    return rows

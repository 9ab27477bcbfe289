"""``mms query`` and ``mms rerank``: ranked files out, as a table or a machine format."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import typer

from mmsearch_cli import api
from mmsearch_cli.cli import console
from mmsearch_cli.cli.options import (
    FormatOpt,
    IndexOpt,
    NoServerOpt,
    NullOpt,
    QuietOpt,
    RerankerOpt,
    TopOpt,
    check_format,
    check_fraction,
    parse_date,
    parse_people,
    parse_size,
    parse_types,
    settings,
)
from mmsearch_cli.errors import ExitStatus, UsageError
from mmsearch_cli.items import modality_of
from mmsearch_cli.search.rows import Row, from_json, render
from mmsearch_cli.serve import client


def register(app: typer.Typer) -> None:
    app.command("query")(query)
    app.command("rerank")(rerank)


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
    top: TopOpt = 10,
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
    people: Annotated[
        str | None,
        typer.Option(help="Only photos with this many people: 0, 2, 2+ or 1-3.", metavar="COUNT"),
    ] = None,
    near: Annotated[
        str | None,
        typer.Option(
            help="Only photos taken near a place: Reykjavik, 'Paris, FR', "
            "64.1,-21.9 or 64.1,-21.9:25km.",
            metavar="PLACE",
        ),
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
    reranker: RerankerOpt = None,
    candidates: Annotated[int, typer.Option(min=1, help="Candidates from the first stage.")] = 100,
    fmt: FormatOpt = "table",
    null: NullOpt = False,
    index: IndexOpt = None,
    no_server: NoServerOpt = False,
    quiet: QuietOpt = False,
) -> int:
    """Search the index with text, or with an image, sound or video file.

    Example: mms query "a red dress" -k 5 --type image --format jsonl | jq -r .path
    """
    check_format(fmt)
    conf = settings(index)
    for flag, given in (("image", image), ("audio", audio), ("video", video)):
        if given is None or not given.is_file():
            continue  # the query path says what is missing
        actual = modality_of(given)
        if actual is not None and actual != flag and {flag, actual} != {"audio", "video"}:
            raise UsageError(f"--{flag} was given {given.name}, which is {actual}",
                             hint=f"use --{actual}")  # fmt: skip
    media = [m for m in (image, audio, video) if m is not None]
    if len(media) + (text is not None) != 1:
        raise UsageError("give exactly one query: TEXT, --image, --audio or --video")
    if text is not None and (kind := api.media_kind(text)):
        console.info(f"mms: treating '{text}' as a {kind} query (file exists)", quiet=quiet)
        media, text = [Path(text)], None
    kinds = parse_types(types)
    since, until = parse_date(after, "--after"), parse_date(before, "--before")
    args: dict[str, Any] = {
        "k": top, "rerank": rerank, "reranker": reranker, "candidates": candidates,
        "path_glob": path, "space": space, "segments": segments,
        "min_size": parse_size(min_size, "--min-size"),
        "max_size": parse_size(max_size, "--max-size"),
        "people": parse_people(people), "near": near,
    }  # fmt: skip
    served = None
    if not no_server:  # a warm server answers the same rows, in milliseconds
        wire = {**args, "text": text, "types": sorted(kinds) if kinds else None,
                "after": since.isoformat() if since else None,
                "before": until.isoformat() if until else None,
                "media": str(media[0].expanduser().resolve()) if media else None}  # fmt: skip
        served = client.call(conf.index_dir, "query", wire)
    rows: list[Row] = served if served is not None else api.query_rows(
        text, media=media[0] if media else None, settings=conf, types=kinds, after=since,
        before=until, **args,
    )  # fmt: skip
    return emit(rows, fmt, null, explain=explain, quiet=quiet)


def emit(rows: list[Row], fmt: str, null: bool, *, explain: bool = False, quiet: bool) -> int:
    """Results to stdout: a table for people (with each space's rank under --explain), or
    one of the machine formats. No rows: a note on stderr and exit 5."""
    if not rows:
        console.info("mms: no results", quiet=quiet)
        return ExitStatus.NO_RESULTS
    if fmt != "table" or null:
        render(rows, fmt, sys.stdout.buffer, nul=null)
        return ExitStatus.OK
    console.print_table(rows)
    if explain:
        for row in rows:
            parts = ", ".join(
                f"{s} #{v['rank']} ({v['score']:.3f})"
                + (f" {' '.join(v['matched'].split())}" if v.get("matched") else "")
                for s, v in row["spaces"].items()
            )
            sys.stdout.write(f"  {row['rank']:>3}  {console.printable(parts)}\n")
    return ExitStatus.OK


def rerank(
    text: Annotated[
        str, typer.Argument(help="The query the candidates answer.", show_default=False)
    ],
    top: Annotated[
        int | None, typer.Option("--top", "-k", min=1, help="Keep this many [default: all].")
    ] = None,
    reranker: RerankerOpt = None,
    alpha: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="Weight of the cross-encoder in the final score."),
    ] = None,
    fmt: FormatOpt = "jsonl",
    null: NullOpt = False,
    no_server: NoServerOpt = False,
    quiet: QuietOpt = False,
) -> int:
    """Re-order piped `mms query --format jsonl` results with a cross-encoder.

    Example: mms query "red dress" -k 200 --format jsonl | mms rerank "red dress" -k 10
    """
    check_format(fmt)
    check_fraction("--alpha", alpha)
    if sys.stdin.isatty():
        raise UsageError("mms rerank reads `mms query --format jsonl` results on stdin")
    rows = read_jsonl_rows(sys.stdin.buffer)
    conf = settings()
    args = {"text": text, "rows": rows, "k": top, "reranker": reranker, "alpha": alpha}
    served = None if no_server else client.call(conf.index_dir, "rerank", args)
    out: list[Row] = (
        served
        if served is not None
        else api.rerank_rows(text, rows, settings=conf, k=top, reranker=reranker, alpha=alpha)
    )
    return emit(out, fmt, null, quiet=quiet)


def read_jsonl_rows(stream: BinaryIO) -> list[Row]:
    """Parse piped rows; a bad line is a usage error naming its line number."""
    rows: list[Row] = []
    for n, raw in enumerate(stream, start=1):
        line = raw.decode("utf-8", "replace").strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"stdin line {n}: not JSON ({exc.msg})") from None
        try:
            rows.append(from_json(obj, f"stdin line {n}", rank=len(rows) + 1))
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    return rows

"""``mms query`` and ``mms rerank``: ranked files out, as a table or a machine format."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import typer

from mmsearch_cli import api
from mmsearch_cli.cli import console, nomatch
from mmsearch_cli.cli.options import (
    BackendOpt,
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
from mmsearch_cli.cli.preview import preview_for
from mmsearch_cli.config import Settings
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
        typer.Option(
            "--image", metavar="FILE", help="Find things like this image.", show_default=False
        ),
    ] = None,
    audio: Annotated[
        Path | None,
        typer.Option(
            "--audio", metavar="FILE", help="Find things like this sound.", show_default=False
        ),
    ] = None,
    video: Annotated[
        Path | None,
        typer.Option(
            "--video", metavar="FILE", help="Find things like this video.", show_default=False
        ),
    ] = None,
    plus: Annotated[
        list[str] | None,
        typer.Option(
            "--plus",
            metavar="TEXT",
            show_default=False,
            help="Add this meaning to the query (repeatable).",
        ),
    ] = None,
    minus: Annotated[
        list[str] | None,
        typer.Option(
            "--minus",
            metavar="TEXT",
            show_default=False,
            help="Take this meaning away; its words no longer match (repeatable).",
        ),
    ] = None,
    plus_image: Annotated[
        list[Path] | None,
        typer.Option(
            "--plus-image",
            "--plus-file",
            metavar="FILE",
            show_default=False,
            help="Add what this image (or sound, video) shows (repeatable).",
        ),
    ] = None,
    minus_image: Annotated[
        list[Path] | None,
        typer.Option(
            "--minus-image",
            "--minus-file",
            metavar="FILE",
            show_default=False,
            help="Take away what this image (or sound, video) shows (repeatable).",
        ),
    ] = None,
    top: TopOpt = 10,
    types: Annotated[
        str | None,
        typer.Option(
            "--type", "-t", metavar="TYPES", help="Only these file types: text,image,audio,video."
        ),
    ] = None,
    path: Annotated[
        str | None,
        typer.Option(
            "--path", metavar="GLOB", help="Only paths (or file names) matching this glob."
        ),
    ] = None,
    after: Annotated[
        str | None,
        typer.Option(metavar="DATE", help="Only files taken/modified on or after this date."),
    ] = None,
    before: Annotated[
        str | None, typer.Option(metavar="DATE", help="Only files taken/modified before this date.")
    ] = None,
    min_size: Annotated[
        str | None, typer.Option(metavar="SIZE", help="Only files at least this big (e.g. 200k).")
    ] = None,
    max_size: Annotated[
        str | None, typer.Option(metavar="SIZE", help="Only files at most this big (e.g. 5M).")
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
        str | None, typer.Option(metavar="SPACE", help="Search one space only (see `mms info`).")
    ] = None,
    segments: Annotated[
        bool, typer.Option("--segments", help="List matching segments, not files.")
    ] = False,
    explain: Annotated[
        bool, typer.Option("--explain", help="Show each space's rank and score.")
    ] = False,
    preview: Annotated[
        bool,
        typer.Option(
            "--preview",
            envvar="MMS_PREVIEW",
            help="Thumbnails in the table, on terminals that show images (kitty, sixel).",
        ),
    ] = False,
    rerank: Annotated[
        bool, typer.Option("--rerank", help="Re-score the candidates with a cross-encoder.")
    ] = False,
    reranker: RerankerOpt = None,
    candidates: Annotated[int, typer.Option(min=1, help="Candidates from the first stage.")] = 100,
    fmt: FormatOpt = "table",
    min_score: Annotated[
        str | None,
        typer.Option(
            "--min-score",
            metavar="auto|SCORE",
            envvar="MMS_MIN_SCORE",
            help='Only results scoring this much; auto: above chance, or "no good match" '
            "(exit 5) when none is a good match [default: auto for the table, else none].",
        ),
    ] = None,
    null: NullOpt = False,
    open_page: Annotated[
        bool,
        typer.Option("--open", help="Write the results as an HTML page and open it in a browser."),
    ] = False,
    index: IndexOpt = None,
    no_server: NoServerOpt = False,
    quiet: QuietOpt = False,
    backend: BackendOpt = None,
) -> int:
    """Search the index with text, or with an image, sound or video file.

    Example: mms query "a red dress" -k 5 --type image --format jsonl | jq -r .path
    """
    check_format(fmt)
    cutoff = nomatch.parse(min_score)
    if open_page and (null or fmt not in ("table", "html")):
        raise UsageError("--open writes an HTML page; it does not combine with -0 or --format")
    conf = settings(index, backend)
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
    args |= arithmetic(plus, minus, plus_image, minus_image)
    served = None
    if not no_server and not conf.backend:  # a warm server answers the same rows, fast
        wire = {**args, "text": text, "types": sorted(kinds) if kinds else None,
                "after": since.isoformat() if since else None,
                "before": until.isoformat() if until else None,
                "media": str(media[0].expanduser().resolve()) if media else None}  # fmt: skip
        served = client.call(conf.index_dir, "query", wire)
    rows: list[Row] = served if served is not None else api.query_rows(
        text, media=media[0] if media else None, settings=conf, types=kinds, after=since,
        before=until, **args,
    )  # fmt: skip
    table = fmt == "table" and not null and not open_page
    roots = api.roots(settings=conf) if table else []  # paths shown from the indexed folders
    if (shown := nomatch.limit(rows, cutoff, table=table, quiet=quiet, roots=roots)) is None:
        return ExitStatus.NO_RESULTS  # "no good match", and the nearest rows, dimmed
    rows = shown
    title = text if text is not None else f"like {media[0]}"
    return emit(rows, "html" if open_page else fmt, null, explain=explain, quiet=quiet,
                title=title, open_page=open_page, conf=conf, preview=preview,
                roots=roots)  # fmt: skip


def arithmetic(
    plus: list[str] | None, minus: list[str] | None, plus_files: list[Path] | None,
    minus_files: list[Path] | None,
) -> dict[str, list[str]]:  # fmt: skip
    """``--plus``/``--minus`` as query fields, files as absolute paths (the server's working
    folder is not ours); only those given, so a server of an older mms still answers."""
    fields = {
        "plus": plus or [], "minus": minus or [],
        "plus_media": [str(Path(f).expanduser().absolute()) for f in plus_files or []],
        "minus_media": [str(Path(f).expanduser().absolute()) for f in minus_files or []],
    }  # fmt: skip
    return {key: value for key, value in fields.items() if value}


def emit(
    rows: list[Row], fmt: str, null: bool, *, explain: bool = False, quiet: bool,
    title: str = "", open_page: bool = False, conf: Settings | None = None,
    preview: bool = False, roots: Sequence[str] = (),
) -> int:  # fmt: skip
    """Results to stdout: a table for people (with each space's rank under --explain), one
    of the machine formats, or an HTML page (``open_page``: to a file a browser opens).
    No rows: a note on stderr and exit 5."""
    if not rows:
        console.info("mms: no results", quiet=quiet)
        return ExitStatus.NO_RESULTS
    if fmt == "html" and not null:
        if open_page:
            show_page(rows, title, conf)
        else:
            api.write_html(rows, sys.stdout.buffer, query=title, settings=conf)
        return ExitStatus.OK
    if fmt != "table" or null:
        render(rows, fmt, sys.stdout.buffer, nul=null)
        return ExitStatus.OK
    console.print_table(
        rows, explain=explain, preview=preview_for(rows) if preview else None, roots=roots
    )
    return ExitStatus.OK


def show_page(rows: list[Row], title: str, conf: Settings | None) -> None:
    """The page to a new private folder (0700: results can be private), its path to
    stdout, then the desktop's browser ($BROWSER, else the system's choice)."""
    import tempfile
    import webbrowser

    page = Path(tempfile.mkdtemp(prefix="mms-results-")) / "results.html"
    with page.open("wb") as fh:
        api.write_html(rows, fh, query=title, settings=conf)
    sys.stdout.write(f"{page}\n")
    sys.stdout.flush()
    if not webbrowser.open(page.as_uri()):
        console.warn(f"mms: no browser found; open {page} yourself")


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
    return emit(out, fmt, null, quiet=quiet, title=text, conf=conf)


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

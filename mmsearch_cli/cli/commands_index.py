"""``mms index`` and ``mms info``."""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from mmsearch_cli import api
from mmsearch_cli.cli import console
from mmsearch_cli.cli.options import (
    BackendOpt,
    IndexOpt,
    JsonOpt,
    QuietOpt,
    WaitOpt,
    check_wait,
    settings,
)
from mmsearch_cli.errors import ExitStatus, UsageError
from mmsearch_cli.search.rows import dumps, tsv_escape


def register(app: typer.Typer) -> None:
    app.command("index")(index)
    app.command("info")(info)
    app.command("stats", hidden=True)(info)
    app.command("forget")(forget)


def index(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Folders (or files) to index.", show_default=False),
    ] = None,
    index: IndexOpt = None,
    profile: Annotated[
        str | None,
        typer.Option(
            envvar="MMS_PROFILE",
            metavar="PROFILE",
            help="builtin | clip | clip-only [default: the index's own, else builtin].",
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            envvar="MMS_MODEL",
            metavar="MODEL",
            help="Add a CLIP/SigLIP space: a sentence-transformers id or a local folder.",
        ),
    ] = None,
    wait: WaitOpt = 0.0,
    follow_symlinks: Annotated[bool, typer.Option(help="Descend into symlinked folders.")] = False,
    hidden: Annotated[bool, typer.Option(help="Include hidden files and folders.")] = False,
    exclude: Annotated[
        list[str] | None,
        typer.Option(metavar="GLOB", help="Glob of paths or names to skip (repeatable)."),
    ] = None,
    retry_failed: Annotated[bool, typer.Option(help="Try again files that failed before.")] = False,
    rebuild: Annotated[bool, typer.Option(help="Start the index over from scratch.")] = False,
    force_prune: Annotated[
        bool,
        typer.Option(help="Drop vanished files even if a root looks unmounted, empty or gutted."),
    ] = False,
    max_delete: Annotated[
        float,
        typer.Option(
            min=0,
            max=100,
            envvar="MMS_MAX_DELETE",
            help="Keep a root's files if a run would drop more than this % of them.",
        ),
    ] = 50.0,
    fetch: Annotated[
        bool | None,
        typer.Option(
            "--fetch/--no-fetch",
            help="Download missing model files on first use [default: on; MMS_AUTO_FETCH=0: off].",
            show_default=False,
        ),
    ] = None,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    backend: BackendOpt = None,
    from_local: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR",
            file_okay=False,
            show_default=False,
            help="Publish this local index into --backend as it is (no embedding).",
        ),
    ] = None,
) -> int:
    """Index folders of images, text, audio and video; re-runs are incremental.

    Example: mms index ~/Pictures ~/notes --exclude '*.tmp'
    """
    conf = settings(index, backend)
    if not paths and from_local is None:
        raise UsageError("give the folders (or files) to index")
    extra = {"from_local": from_local} if from_local is not None else {}
    with console.progress("indexing", quiet=quiet) as update:
        summary = api.index(
            paths or [], settings=conf, **extra, progress=update,
            fetch_progress=downloading(update),
            profile=profile, model=model, wait=check_wait(wait),
            follow_symlinks=follow_symlinks, include_hidden=hidden,
            exclude=tuple(exclude or ()), retry_failed=retry_failed, rebuild=rebuild,
            force_prune=force_prune, max_delete=max_delete / 100, fetch=fetch,
        )  # fmt: skip
    data = summary.to_dict()
    data["index"] = str(conf.index_dir)
    if json_out:
        sys.stdout.write(dumps(data, indent=2) + "\n")
    if summary.fetched and not json_out:
        fetched = ", ".join(summary.fetched)
        console.info(f"fetched model files {fetched} into {conf.model_dir}", quiet=quiet)
    for path, reason in summary.failures:
        console.warn(f"skipped {path}: {reason}")
    for reason, kinds in waiting_by_reason(summary.deferrals).items():
        # One line per cause, not per file: 17 sounds waiting for one model say it once.
        console.warn(f"{count_files(kinds)} not indexed: {reason}; tried again by the next run")
    for path, reason in summary.problems.items():
        console.warn(f"{path}: {reason}")
    for root, reason in summary.held_back.items():
        console.warn(f"root {root} {reason} (`mms forget {root}` drops them; or --force-prune)")
    changed = summary.added + summary.updated + summary.removed + summary.moved + summary.failed
    if summary.unsupported and changed and not json_out:
        skipped = describe_unsupported(dict(summary.unsupported))
        console.info(f"skipped {skipped} (README lists the supported types)", quiet=quiet)
    if changed and not json_out:
        console.info(
            f"indexed {summary.added} new, {summary.updated} changed, {summary.moved} moved, "
            f"{summary.removed} removed, {summary.unchanged} unchanged, {summary.failed} failed"
            + (f", {summary.deferred} deferred" if summary.deferred else "")
            + f" in {summary.seconds:.1f} s → {conf.index_dir}",
            quiet=quiet,
        )
    if conf.backend and not json_out:
        pub = data["backend"]
        console.info(f"published {pub['files']} file(s), removed {pub['removed']} → "
                     f"{pub['url']} (host {pub['host']})", quiet=quiet)  # fmt: skip
    if summary.failed_earlier and not json_out:
        console.info(f"{summary.failed_earlier} failed earlier: `mms info --failed`", quiet=quiet)
    partial = summary.failed or summary.deferred or summary.held_back
    return ExitStatus.PARTIAL if partial else ExitStatus.OK


def downloading(update: Callable[[int, int, str], None]) -> Callable[[int, int, str], None]:
    """The progress bar, in megabytes, while a model file downloads."""

    def follow(done: int, total: int, name: str) -> None:
        update(round(done / 1e6), max(1, round(total / 1e6)), f"downloading {name} (MB)")

    return follow


def waiting_by_reason(deferrals: list[tuple[str, str, str]]) -> dict[str, Counter[str]]:
    """reason -> kinds of file deferred for it, counted."""
    out: dict[str, Counter[str]] = {}
    for _, modality, reason in deferrals:
        out.setdefault(reason, Counter())[modality] += 1
    return out


def count_files(kinds: Counter[str]) -> str:
    """ "17 audio files", "1 video file", "3 image and 2 video files"."""
    total = sum(kinds.values())
    parts = [f"{n} {kind}" for kind, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))]
    words = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"{words} file{'s' if total != 1 else ''}"


def forget(
    paths: Annotated[
        list[Path], typer.Argument(help="Files or folders to drop.", show_default=False)
    ],
    index: IndexOpt = None,
    wait: WaitOpt = 0.0,
    quiet: QuietOpt = False,
    backend: BackendOpt = None,
) -> None:
    """Remove files or whole folders (and those roots) from the index.

    Example: mms forget ~/Pictures/old-phone
    """
    count = api.forget(paths, settings=settings(index, backend), wait=check_wait(wait))
    console.info(f"forgot {count} file(s) under {', '.join(map(str, paths))}", quiet=quiet)


def info(
    index: IndexOpt = None,
    failed: Annotated[
        bool, typer.Option("--failed", help="List files that failed, and why.")
    ] = False,
    json_out: JsonOpt = False,
    backend: BackendOpt = None,
) -> None:
    """Show what an index holds: roots, counts, models, size, failures.

    Example: mms info --failed
    """
    data = api.info(settings=settings(index, backend))
    if failed and not json_out:
        out = sys.stdout.buffer  # original bytes of names that are not valid UTF-8
        for item in data["failed_files"]:
            reason = f"deferred: {item['error']}" if item.get("deferred") else item["error"]
            line = f"{tsv_escape(item['path'])}\t{tsv_escape(reason)}\n"
            out.write(os.fsencode(line))
        out.flush()
        return
    if json_out:
        sys.stdout.write(dumps(data, indent=2) + "\n")
        return
    _print_info(data)


def describe_unsupported(counts: dict[str, int]) -> str:
    """ "14 unsupported: 12 without extension, 2 .xyz" (the commonest first)."""
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return f"{sum(counts.values())} unsupported: " + ", ".join(f"{n} {t}" for t, n in ranked)


def _print_info(data: dict[str, Any]) -> None:
    def out(text: str) -> None:
        sys.stdout.buffer.write(os.fsencode(text))

    out(f"index      {data['index']}\n")
    out(
        f"profile    {data['profile']}   schema {data['schema']}"
        f"   generation {data['generation']}\n"
    )
    updated = (
        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(data["updated"]))
        if data["updated"]
        else "never"
    )
    out(f"updated    {updated}\n")
    out(f"size       {data['bytes_on_disk'] / 1e6:.1f} MB on disk\n")
    out("roots      " + ("\n           ".join(data["roots"]) or "(none)") + "\n")
    counts = ", ".join(f"{n} {m}" for m, n in sorted(data["files_by_modality"].items()))
    out(f"files      {data['files']} ({counts or 'none'}), {data['segments']} segments\n")
    deferred = data.get("deferred", 0)
    out(
        f"failed     {data['failed']}"
        + (f" ({deferred} deferred: tried again by every run)" if deferred else "")
        + ("   (mms info --failed lists them)" if data["failed"] else "")
        + "\n"
    )
    if data.get("partial"):
        out(f"partial    {data['partial']} texts indexed up to max_text_chunks (see README)\n")
    if data.get("unsupported_by_type"):
        skipped = describe_unsupported(data["unsupported_by_type"])
        out(f"skipped    {skipped} (at the last run; README lists the supported types)\n")
    out("spaces\n")
    for s in data["spaces"]:
        models = ", ".join(f"{m}: {e}" for m, e in s["encoders"].items())
        out(f"  {s['name']:<12} {s['dim']:>5}-d  {s['vectors']:>7} vectors   {models}\n")
    sys.stdout.buffer.flush()

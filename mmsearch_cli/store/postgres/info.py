"""``mms info`` and ``mms doctor`` on the backend: SQL aggregates, one snapshot."""

from __future__ import annotations

import os
from typing import Any

from mmsearch_cli.store.info import describe_spaces
from mmsearch_cli.store.postgres.connect import BackendError, connect, guard
from mmsearch_cli.store.postgres.reader import PgReader
from mmsearch_cli.store.postgres.schema import HNSW_MAX_DIM, POSTINGS_OF, SCHEMA, version
from mmsearch_cli.store.postgres.url import redact

HNSW_MIN_VERSION = (0, 5)


def backend_info(url: str) -> dict[str, Any]:
    """What the database holds, in the shape of ``store.info.index_info`` (the URL is shown
    redacted; roots read ``host:root``)."""
    reader = PgReader(url)
    try:
        con = reader.con
        with reader.guard():
            by_modality = dict(con.execute(
                "SELECT modality, count(*) FROM mms_files WHERE status = 'ok' GROUP BY modality"
            ).fetchall())  # fmt: skip
            failed = con.execute(
                "SELECT path, coalesce(error, '') FROM mms_files WHERE status <> 'ok' ORDER BY path"
            ).fetchall()
            segments, partial = con.execute(
                "SELECT (SELECT count(*) FROM mms_segments), (SELECT count(*) FROM mms_files "
                "WHERE status = 'ok' AND meta ? 'partial')"
            ).fetchone() or (0, 0)
            size = con.execute(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "WHERE c.relname IN ('mms_meta', 'mms_spaces', 'mms_sources', 'mms_files', "
                "'mms_segments', 'mms_postings')"
            ).fetchone()
        meta = reader.meta
        return {
            "index": redact(url),
            "backend": "postgresql",
            "schema": SCHEMA,
            "generation": reader.generation,
            "profile": reader.profile,
            "created": 0.0,
            "updated": meta["updated"],
            "roots": meta["roots"],
            "sources": meta["sources"],
            "files": sum(by_modality.values()),
            "files_by_modality": by_modality,
            "segments": int(segments),
            "failed": len(failed),
            "partial": int(partial),
            "unsupported_by_type": {},
            "failed_files": [{"path": os.fsdecode(bytes(p)), "error": e} for p, e in failed],
            "bytes_on_disk": int(size[0]) if size else 0,
            "spaces": describe_spaces(reader.spaces.values()),
        }
    finally:
        reader.close()


def backend_doctor(url: str, report: Any, fix: bool = False) -> None:
    """Check the database into ``report`` (a ``store.doctor.Report``): it answers, its schema
    is one this mms reads, pgvector can build HNSW, every space has its column and index,
    every segment has the vectors its spaces list, and each source's counts are right.
    ``fix`` rebuilds a missing index and recounts; segments without their vectors have
    their files deleted and their source marked unpublished (the next run sends them)."""
    from mmsearch_cli.store.doctor import DAMAGED, FATAL, NOTE, OK

    try:
        con = connect(url)
    except BackendError as exc:
        report.add("database", FATAL, exc.message)
        return
    try:
        with guard(url, "check"):
            found = version(con)
            if found != SCHEMA:
                report.add("schema", FATAL, f"schema {found}, this mms reads {SCHEMA}")
                return
            report.add("schema", OK, f"schema {SCHEMA}")
            ext = con.execute(
                "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
            ).fetchone()
            got = tuple(int(p) for p in str(ext[0]).split(".")[:2]) if ext else (0, 0)
            level = OK if got >= HNSW_MIN_VERSION else NOTE
            report.add("pgvector", level, f"pgvector {ext[0] if ext else 'missing'}"
                       + ("" if level == OK else ": no HNSW, spaces are scanned"))  # fmt: skip
            _check_spaces(con, report, fix, OK, NOTE, DAMAGED)
            _check_counts(con, report, fix, OK, NOTE)
            _check_postings(con, report, fix, OK, NOTE)
    finally:
        con.close()


def _check_spaces(con: Any, report: Any, fix: bool, ok: str, note: str, damaged: str) -> None:
    spaces = con.execute("SELECT name, col, (info->>'dim')::int FROM mms_spaces").fetchall()
    sql = "SELECT indexname FROM pg_indexes WHERE tablename = 'mms_segments'"
    indexes = {r[0] for r in con.execute(sql).fetchall()}
    for name, col, dim in spaces:
        if dim <= HNSW_MAX_DIM and f"mms_segments_{col}" not in indexes:
            report.add(f"space {name}", note, "its HNSW index is missing", "rebuild it")
            if fix:
                con.execute(f"CREATE INDEX mms_segments_{col} ON mms_segments "
                            f"USING hnsw ({col} vector_cosine_ops)")  # fmt: skip
                report.repaired.append(f"rebuilt the HNSW index of space {name}")
        lacking = con.execute(
            f"SELECT DISTINCT s.file_id FROM mms_segments s WHERE %s = ANY(s.spaces) "
            f"AND s.{col} IS NULL",
            (name,),
        ).fetchall()
        if not lacking:
            report.add(f"space {name}", ok, "every segment has its vector")
            continue
        report.add(f"space {name}", damaged, f"{len(lacking)} file(s) lack vectors",
                   "delete them; the next `mms index` publishes them again")  # fmt: skip
        if fix:
            with con.transaction():
                con.execute(
                    "UPDATE mms_sources SET generation = -1 WHERE id IN (SELECT source_id FROM "
                    "mms_files WHERE id = ANY(%s))",
                    ([r[0] for r in lacking],),
                )
                con.execute("DELETE FROM mms_files WHERE id = ANY(%s)", ([r[0] for r in lacking],))
            report.repaired.append(f"deleted {len(lacking)} file(s) lacking vectors in {name}")


def _check_counts(con: Any, report: Any, fix: bool, ok: str, note: str) -> None:
    """Each source's counts (BM25's N and avgdl read them) against the rows."""
    import json

    cols = [c for (c,) in con.execute("SELECT col FROM mms_spaces").fetchall()]
    per = "".join(f", count(s.{c})" for c in cols)
    rows = con.execute(
        f"SELECT src.id, src.host, src.root, src.stats, "
        f"(SELECT count(*) FROM mms_files f WHERE f.source_id = src.id), "
        f"count(s.id), coalesce(sum(s.dl), 0){per} FROM mms_sources src "
        "LEFT JOIN mms_files f ON f.source_id = src.id LEFT JOIN mms_segments s "
        "ON s.file_id = f.id GROUP BY src.id"
    ).fetchall()
    for sid, host, root, stats, files, segs, tokens, *vecs in rows:
        actual = {"files": int(files), "segments": int(segs), "tokens": int(tokens),
                  "vectors": {c: int(n) for c, n in zip(cols, vecs, strict=True)}}  # fmt: skip
        recorded = {k: (stats or {}).get(k) for k in ("files", "segments", "tokens")}
        recorded["vectors"] = {c: (stats or {}).get("vectors", {}).get(c, 0) for c in cols}
        if recorded == actual:
            report.add(f"source {host}:{root}", ok, f"{files} files, {segs} segments")
            continue
        report.add(f"source {host}:{root}", note, "its counts are off", "recount")
        if fix:
            con.execute("UPDATE mms_sources SET stats = %s WHERE id = %s",
                        (json.dumps(actual), sid))  # fmt: skip
            report.repaired.append(f"recounted {host}:{root}")


def _check_postings(con: Any, report: Any, fix: bool, ok: str, note: str) -> None:
    """The postings (word-keyed BM25 rows) against the segments' tsvectors; ``fix``
    rebuilds them."""
    got = con.execute(
        "SELECT (SELECT count(*) FROM mms_segments s, unnest(s.tsv)), "
        "(SELECT count(*) FROM mms_postings), (SELECT count(*) FROM mms_postings p "
        "WHERE NOT EXISTS (SELECT 1 FROM mms_segments s WHERE s.id = p.seg))"
    ).fetchone()
    words, postings, orphans = (int(n) for n in got)
    if words == postings and not orphans:
        report.add("postings", ok, f"{postings} word postings")
        return
    report.add("postings", note, f"{postings} postings for {words} words ({orphans} orphans)",
               "rebuild them")  # fmt: skip
    if fix:
        with con.transaction():
            con.execute("DELETE FROM mms_postings")
            con.execute(
                f"INSERT INTO mms_postings(lex, seg, f, dl) SELECT {POSTINGS_OF.format(s='s')} "
                "FROM mms_segments s, unnest(s.tsv) u"
            )
        report.repaired.append("rebuilt the postings")

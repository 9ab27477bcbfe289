"""The backend's own schema, created and migrated by mms (versioned, in ``mms_meta``).

    mms_meta      key -> jsonb: the schema version
    mms_spaces    a vector space: its record (``SpaceInfo``: dimension, embedders and
                  their fingerprints) and its column in ``mms_segments``
    mms_sources   one (host, root) an indexer publishes: the local generation and index
                  it last published in full, its counts (segments, tokens, vectors), and
                  its index's score calibration (``search.calibrate``)
    mms_files     the files, as the local store has them, keyed by (source, path bytes)
    mms_segments  the segments, their lexical body (text and tsvector) and one vector
                  column per space (``v_<n>``, HNSW with cosine distance)
    mms_postings  (schema 2) one row per word and segment: the word's BM25 frequency and
                  the segment's length, keyed by word, so BM25 reads only the query's
                  words (``lexical.POSTINGS_SQL``); a trigger drops a deleted segment's
                  postings

Several indexers publish into one database; mixing models in a space is refused
(``check_space``). A database of a newer schema is refused, never touched.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from mmsearch_cli.errors import IndexCorruptError, IndexMissingError, MismatchError
from mmsearch_cli.store.postgres.lexical import NAME_WEIGHT
from mmsearch_cli.store.postgres.url import redact
from mmsearch_cli.store.state import SpaceInfo

if TYPE_CHECKING:
    import psycopg

SCHEMA = 2
SCHEMA_LOCK = 0x6D6D7300  # advisory lock key ("mms\0") held while the schema changes
HNSW_MAX_DIM = 2000  # pgvector indexes vectors up to this size; larger spaces are scanned

# A posting's values from a segment ``{s}``'s tsvector lexeme ``u``: the word, the segment,
# its f (body matches once, path-word matches NAME_WEIGHT times) and the segment's |D|.
POSTINGS_OF = (
    "u.lexeme, {s}.id, (cardinality(u.positions) - " + repr(1 - NAME_WEIGHT)
    + " * cardinality(array_positions(u.weights, 'A')))::real, {s}.dl"
)  # fmt: skip

# Migrations: MIGRATIONS[n] takes schema n to n + 1.
MIGRATIONS: list[str] = [
    """
    CREATE EXTENSION IF NOT EXISTS vector;
    CREATE TABLE mms_meta(key text PRIMARY KEY, value jsonb NOT NULL);
    CREATE TABLE mms_spaces(
        name text PRIMARY KEY, col text NOT NULL UNIQUE, info jsonb NOT NULL);
    CREATE TABLE mms_sources(
        id serial PRIMARY KEY,
        host text NOT NULL,
        root text NOT NULL,
        generation bigint NOT NULL DEFAULT -1,
        index_id text,
        profile text,
        updated double precision NOT NULL DEFAULT 0,
        stats jsonb NOT NULL DEFAULT '{}',
        meta jsonb NOT NULL DEFAULT '{}',
        UNIQUE(host, root));
    CREATE TABLE mms_files(
        id bigserial PRIMARY KEY,
        source_id integer NOT NULL REFERENCES mms_sources ON DELETE CASCADE,
        path bytea NOT NULL,
        path_text text NOT NULL,
        name_text text NOT NULL,
        size bigint NOT NULL,
        mtime_ns bigint NOT NULL,
        modality text NOT NULL,
        hash text,
        status text NOT NULL,
        error text,
        indexed_at double precision NOT NULL,
        taken double precision NOT NULL,
        meta jsonb NOT NULL,
        UNIQUE(source_id, path));
    CREATE INDEX mms_files_path ON mms_files(path);
    CREATE INDEX mms_files_modality ON mms_files(modality, status);
    CREATE INDEX mms_files_taken ON mms_files(taken);
    CREATE INDEX mms_files_size ON mms_files(size);
    CREATE INDEX mms_files_people ON mms_files(((meta->>'people')::float8));
    CREATE INDEX mms_files_latitude ON mms_files(((meta->'gps'->>0)::float8));
    CREATE TABLE mms_segments(
        id bigserial PRIMARY KEY,
        file_id bigint NOT NULL REFERENCES mms_files ON DELETE CASCADE,
        local_id bigint NOT NULL,
        kind text NOT NULL,
        chunk integer,
        start double precision,
        "end" double precision,
        text text NOT NULL,
        why jsonb NOT NULL,
        spaces text[] NOT NULL,
        body text NOT NULL,
        names text NOT NULL,
        tsv tsvector NOT NULL,
        dl integer NOT NULL);
    CREATE INDEX mms_segments_file ON mms_segments(file_id);
    CREATE INDEX mms_segments_tsv ON mms_segments USING gin(tsv);
    """,
    # 2: the postings, filled from the tsvectors of a schema 1 database.
    f"""
    CREATE TABLE mms_postings(
        lex text NOT NULL, seg bigint NOT NULL, f real NOT NULL, dl integer NOT NULL);
    INSERT INTO mms_postings(lex, seg, f, dl)
        SELECT {POSTINGS_OF.format(s="s")} FROM mms_segments s, unnest(s.tsv) u;
    ALTER TABLE mms_postings ADD PRIMARY KEY (lex, seg) INCLUDE (f, dl);
    CREATE INDEX mms_postings_seg ON mms_postings(seg);
    ANALYZE mms_postings;
    CREATE FUNCTION mms_drop_postings() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM mms_postings p USING gone WHERE p.seg = gone.id;
        RETURN NULL;
    END $$;
    CREATE TRIGGER mms_segments_postings AFTER DELETE ON mms_segments
        REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION mms_drop_postings();
    """,
]


def migrate(con: psycopg.Connection[Any], url: str) -> int:
    """Bring the schema to ``SCHEMA`` (under an advisory lock: indexers may start at once);
    return the version found. Refuses a newer one."""
    with con.transaction():
        con.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        found = version(con)
        check_version(found, url)
        for step in range(found, SCHEMA):
            con.execute(MIGRATIONS[step])
            con.execute(
                "INSERT INTO mms_meta VALUES ('schema', %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (json.dumps(step + 1),),
            )
    return found


def version(con: psycopg.Connection[Any]) -> int:
    """The schema version of the database (0: no mms schema yet)."""
    row = con.execute("SELECT to_regclass('mms_meta') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return 0
    got = con.execute("SELECT value FROM mms_meta WHERE key = 'schema'").fetchone()
    return int(got[0]) if got else 0


def check_version(found: int, url: str) -> None:
    if found > SCHEMA:
        raise IndexCorruptError(
            f"index database {redact(url)} was written by a newer mms (schema {found})",
            hint=f"this mms reads schema {SCHEMA}; upgrade mms",
        )


def check_readable(con: psycopg.Connection[Any], url: str) -> None:
    """A reader's check: an mms schema this mms reads, with something published."""
    found = version(con)
    if found == 0:
        raise IndexMissingError(
            f"no mms index in the database {redact(url)}",
            hint="run `mms index FOLDER --backend URL` first",
        )
    check_version(found, url)
    if found < SCHEMA:
        raise IndexCorruptError(
            f"index database {redact(url)} has an older schema ({found})",
            hint="run `mms index` with --backend once to migrate it",
        )


def read_spaces(con: psycopg.Connection[Any]) -> dict[str, tuple[SpaceInfo, str]]:
    """name -> (its record, its column), in the order they were added."""
    rows = con.execute("SELECT name, col, info FROM mms_spaces ORDER BY col").fetchall()
    rows.sort(key=lambda r: int(r[1].removeprefix("v_")))
    return {name: (SpaceInfo(**info), col) for name, col, info in rows}


def check_space(recorded: SpaceInfo, local: SpaceInfo, url: str) -> None:
    """Refuse to publish vectors of another model (or dimension) into a space (exit 8)."""
    if recorded.dim != local.dim:
        raise MismatchError(
            f"space '{local.name}' in {redact(url)} holds {recorded.dim}-d vectors, "
            f"this index {local.dim}-d",
            hint="publish to another database, or index with the database's models",
        )
    changed = [
        f"{modality}: {recorded.encoders.get(modality)} -> {name}"
        for modality, name in local.encoders.items()
        if recorded.encoders.get(modality, name) != name
    ]
    for name, fp in local.fingerprints.items():
        theirs = recorded.fingerprints.get(name)
        if theirs is not None and _core(theirs) != _core(fp):
            changed.append(f"{name} set up differently")
    if changed:
        raise MismatchError(
            f"space '{local.name}' in {redact(url)} was built with other models "
            f"({'; '.join(changed)})",
            hint="the database keeps one set of models; index with the same ones",
        )


def _core(fp: dict[str, Any]) -> dict[str, Any]:
    """The fingerprint fields that change vectors (as ``embedders.spaces`` compares them:
    not a runtime path)."""
    return {k: v for k, v in fp.items() if k not in ("path", "runtime")}


def ensure_spaces(
    con: psycopg.Connection[Any], spaces: dict[str, SpaceInfo], url: str
) -> dict[str, str]:
    """Record the local index's spaces in the database (a new one gets its column and
    HNSW index), refusing other models in a known one; return name -> column."""
    known = read_spaces(con)
    for name, info in spaces.items():
        if name in known:
            check_space(known[name][0], info, url)
    missing = [info for name, info in spaces.items() if name not in known]
    if missing:
        with con.transaction():
            con.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            known = read_spaces(con)  # another indexer may have added them meanwhile
            for info in missing:
                if info.name in known:
                    check_space(known[info.name][0], info, url)
                    continue
                col = f"v_{len(known) + 1}"
                con.execute(f"ALTER TABLE mms_segments ADD COLUMN {col} vector({int(info.dim)})")
                if info.dim <= HNSW_MAX_DIM:
                    con.execute(
                        f"CREATE INDEX mms_segments_{col} ON mms_segments "
                        f"USING hnsw ({col} vector_cosine_ops)"
                    )
                record = _portable(info)
                con.execute(
                    "INSERT INTO mms_spaces(name, col, info) VALUES (%s, %s, %s)",
                    (info.name, col, json.dumps(asdict(record))),
                )
                known[info.name] = (record, col)
    return {name: col for name, (_, col) in known.items()}


def _portable(info: SpaceInfo) -> SpaceInfo:
    """A space's record without the local store's file bookkeeping."""
    return SpaceInfo(
        name=info.name, dim=info.dim, metric=info.metric, encoders=dict(info.encoders),
        fingerprints=dict(info.fingerprints), options=dict(info.options),
        weight=dict(info.weight),
    )  # fmt: skip

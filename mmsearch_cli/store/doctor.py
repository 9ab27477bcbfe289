"""``mms doctor``: check an index for damage, and repair what can be repaired.

Checks: the manifest parses and is of a schema this mms reads; the database opens and
passes SQLite's own check; every space's vector files hold the rows the database counts,
with increasing ids; the records and the vectors agree both ways (every segment's vector
is stored, every stored id is a segment's or a tombstone); the journal of an interrupted
run; temp files left by killed runs.

Repairs (under the writer lock, each in a normal commit):

* damaged or missing manifest: rewritten from the database, which is the truth.
* a manifest from a newer schema: refused, never touched.
* a damaged database: moved aside as ``meta.sqlite.damaged``, and a fresh index is started
  with the spaces' setup from the manifest; the next ``mms index`` embeds the files again.
* vector files that do not match the database: that space's vectors are dropped and the
  files that had vectors in it forgotten, so the next ``mms index`` re-embeds them.
* inconsistent records: the files concerned are forgotten (re-embedded next run).
* journal and temp files: replayed (or dropped when stale) and deleted.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmsearch_cli.errors import IndexCorruptError, IndexMissingError, MmsError
from mmsearch_cli.store import db, flat
from mmsearch_cli.store.index import IndexWriter, stale_tmp_files
from mmsearch_cli.store.journal import Journal
from mmsearch_cli.store.lock import index_lock, lock_holder
from mmsearch_cli.store.manifest import database_path, manifest_of, read_manifest, sidecar_path
from mmsearch_cli.store.state import SCHEMA_VERSION, SpaceInfo
from mmsearch_cli.store.vectors import VectorIndex

OK, NOTE, DAMAGED, FATAL = "ok", "note", "damaged", "fatal"


@dataclass
class Finding:
    check: str
    level: str  # ok | note (harmless, --repair tidies it) | damaged | fatal (no repair)
    detail: str
    repair: str = ""  # what --repair does about it


@dataclass
class Report:
    index: str
    findings: list[Finding] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return all(f.level in (OK, NOTE) for f in self.findings)

    @property
    def repairable(self) -> bool:
        return any(f.repair for f in self.findings) and not any(
            f.level == FATAL for f in self.findings
        )

    def add(self, check: str, level: str, detail: str, repair: str = "") -> None:
        self.findings.append(Finding(check, level, detail, repair))

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "healthy": self.healthy,
            "findings": [asdict(f) for f in self.findings],
            "repaired": self.repaired,
        }


# -- checks ---------------------------------------------------------------------------


def check(index_dir: Path) -> Report:
    """Inspect without changing anything. Raises IndexMissingError if there is no index."""
    report = Report(str(index_dir))
    if not index_dir.is_dir() or not _has_index_files(index_dir):
        raise IndexMissingError(f"no index at {index_dir}", hint="run `mms index DIR` first")
    _check_access(index_dir, report)
    busy = lock_holder(index_dir)
    if busy and not sidecar_path(index_dir).exists():
        # The first `mms index` has not committed yet: not damage (monitoring must not
        # page anyone for it).
        report.add("index", NOTE, f"the first `mms index` is in progress ({busy})")
        return report
    if busy:
        report.add("lock", NOTE, f"an `mms index` is running ({busy}); journal not checked")
    manifest = _check_manifest(index_dir, report)
    if manifest is not None and int(manifest.get("schema", 0)) < SCHEMA_VERSION:
        report.add("manifest", NOTE, "an index of an older mms: the next `mms index` converts it")
        return report
    con = _check_database(index_dir, report, manifest)
    if con is not None:
        try:
            meta = db.read_meta(con)
            generation = int(meta.get("generation", 0))
            if manifest is None and generation == 0 and not sidecar_path(index_dir).exists():
                for f in report.findings:  # a first run stopped before its first commit
                    if f.check == "manifest" and f.detail == "missing":
                        f.level, f.repair = NOTE, ""
                        f.detail = (
                            "none yet: the first `mms index` stopped before its "
                            "first commit; run it again to resume"
                        )
            if manifest is not None and int(manifest.get("generation", -1)) != generation:
                report.add("manifest", NOTE, f"behind the database (generation {generation})",
                           "rewrite it from the database")  # fmt: skip
            elif manifest is not None:
                truth = manifest_of(meta, db.read_spaces(con))
                differ = [k for k in truth if k != "updated" and manifest.get(k) != truth[k]]
                if differ:
                    report.add("manifest", DAMAGED,
                               f"{', '.join(differ)} differ from the database (hand-edited?)",
                               "rewrite it from the database")  # fmt: skip
            broken, stray = _check_spaces(index_dir, con, report)
            _check_records(con, report, broken, stray)
            if not busy:
                _check_journal(index_dir, generation, report)
        finally:
            con.close()
    if not busy:
        tmp = stale_tmp_files(index_dir)
        if tmp:
            report.add("temp files", NOTE, f"{len(tmp)} left by killed runs", "delete them")
    return report


def _check_access(index_dir: Path, report: Report) -> None:
    """Files this user may not read are not damage: say so and stop (nothing is repaired
    on them: a vector file of another owner is intact, and dropping it loses its work)."""
    denied: list[str] = []
    try:
        names = [index_dir / n for n in ("sidecar.json", db.DATABASE)]
        for sub in ("spaces", "journal"):
            if (index_dir / sub).is_dir():
                names += sorted((index_dir / sub).iterdir())
        denied = [str(p.relative_to(index_dir)) for p in names
                  if p.exists() and not os.access(p, os.R_OK)]  # fmt: skip
    except PermissionError as exc:
        denied = [f"{exc.filename} (cannot list)"]
    if denied:
        shown = ", ".join(denied[:3]) + (f" and {len(denied) - 3} more" if len(denied) > 3 else "")
        report.add("permissions", FATAL,
                   f"this user may not read {shown}: not damage, so nothing is "
                   "repaired; give the files back to the index's owner (chown/chmod)")  # fmt: skip
        raise _Stop(report)


def _has_index_files(index_dir: Path) -> bool:
    names = ("sidecar.json", db.DATABASE, "spaces", "journal")
    return any((index_dir / n).exists() for n in names)


def _check_manifest(index_dir: Path, report: Report) -> dict[str, Any] | None:
    if not sidecar_path(index_dir).exists():
        report.add("manifest", DAMAGED, "missing", "rewrite it from the database")
        return None
    try:
        manifest = read_manifest(index_dir)
    except IndexCorruptError as exc:
        if "newer mms" in exc.message:
            report.add("manifest", FATAL, exc.message, "")
            raise _Stop(report) from None
        detail = exc.message.split("(", 1)[1].rstrip(")") if "(" in exc.message else "unreadable"
        report.add("manifest", DAMAGED, f"does not parse or is invalid: {detail}",
                   "rewrite it from the database")  # fmt: skip
        return None
    report.add(
        "manifest", OK, f"schema {manifest['schema']}, generation {manifest.get('generation')}"
    )
    return manifest


class _Stop(Exception):
    def __init__(self, report: Report) -> None:
        self.report = report


def _check_database(
    index_dir: Path, report: Report, manifest: dict[str, Any] | None
) -> sqlite3.Connection | None:
    path = database_path(index_dir)
    if not path.exists():
        report.add("database", DAMAGED, f"{path.name} is missing", _START_OVER)
        return None
    try:
        con = db.connect(path, write=False)
        result = con.execute("PRAGMA quick_check").fetchone()[0]
        if result != "ok":
            con.close()
            report.add("database", DAMAGED, f"SQLite says: {result}", _START_OVER)
            return None
        db.read_meta(con)
        db.read_spaces(con)
    except (sqlite3.DatabaseError, ValueError, TypeError, KeyError) as exc:
        report.add("database", DAMAGED, f"cannot be read ({exc})", _START_OVER)
        return None
    report.add("database", OK, f"{path.name} passes SQLite's check")
    return con


_START_OVER = "move it aside and start an empty index with the same spaces"


def _check_spaces(
    index_dir: Path, con: sqlite3.Connection, report: Report
) -> tuple[set[str], dict[str, list[int]]]:
    """Each space's vector files against the database: the broken spaces, and per space
    the stored ids no segment owns (vectors of records lost some other way)."""
    broken: set[str] = set()
    stray: dict[str, list[int]] = {}
    for name, info in db.read_spaces(con).items():
        problem, extra = _space_problem(index_dir, con, info)
        if extra:
            stray[name] = extra
        if problem:
            broken.add(name)
            report.add(f"space {name}", DAMAGED, problem,
                       "drop its vectors; the next `mms index` re-embeds those files")  # fmt: skip
        else:
            report.add(f"space {name}", OK, f"{info.count} vectors, {info.dim}-d")
    return broken, stray


def _space_problem(
    index_dir: Path, con: sqlite3.Connection, info: SpaceInfo
) -> tuple[str, list[int]]:
    """What is wrong with a space's vectors ("" if nothing), and its stray ids."""
    try:
        vectors = (
            flat.FlatVectors.open(index_dir / info.vectors, info.dim, info.rows)
            if info.vectors
            else None
        )
    except (OSError, ValueError) as exc:
        return str(exc), []
    if vectors is None:
        return ("" if info.rows == 0 else f"no vector file for {info.rows} rows"), []
    ids = np.asarray(vectors.ids)
    if ids.size and np.any(np.diff(ids) <= 0):
        return "vector ids are not increasing", []
    dead = np.asarray(db.tombstones(con, info.name), dtype=np.int64)
    listed = np.asarray(sorted(_segment_ids_in(con, info.name)), dtype=np.int64)
    missing = np.setdiff1d(listed, ids)
    if missing.size:
        return f"{missing.size} vectors the database lists are not in {info.vectors}.vec", []
    extra = np.setdiff1d(np.setdiff1d(ids, listed), dead).tolist()
    if info.file and info.graph_rows:
        try:
            VectorIndex.load_graph(index_dir / info.file, info.dim)
        except (RuntimeError, OSError, ValueError) as exc:
            return f"graph {info.file} cannot be read ({exc})", extra
    return "", extra


def _segment_ids_in(con: sqlite3.Connection, space: str) -> list[int]:
    sql = "SELECT s.id FROM segments s, json_each(s.spaces) j WHERE j.value = ?"
    return [i for (i,) in con.execute(sql, (space,))]


def inconsistent_files(con: sqlite3.Connection) -> tuple[set[str], set[int]]:
    """Files whose records disagree (an ok file without segments, segments of a missing
    file), and such orphan segment ids."""
    bad_files = {
        os.fsdecode(p)
        for (p,) in con.execute(
            "SELECT path FROM files f WHERE status = 'ok' "
            "AND NOT EXISTS (SELECT 1 FROM segments s WHERE s.file_id = f.id)"
        )
    }
    orphans = {
        i
        for (i,) in con.execute(
            "SELECT id FROM segments s "
            "WHERE NOT EXISTS (SELECT 1 FROM files f WHERE f.id = s.file_id)"
        )
    }
    return bad_files, orphans


def _check_records(
    con: sqlite3.Connection, report: Report, broken: set[str], stray: dict[str, list[int]]
) -> None:
    files, orphans = inconsistent_files(con)
    loose = sum(len(ids) for ids in stray.values())
    if files or orphans or loose:
        report.add("records", DAMAGED,
                   f"{len(files)} files without segments, {len(orphans)} orphan segments, "
                   f"{loose} vectors of no segment",
                   "forget those files, mark those vectors deleted; the next `mms index` "
                   "re-embeds the files")  # fmt: skip
    elif not broken:
        report.add("records", OK, "files, segments and vectors agree")


def _check_journal(index_dir: Path, generation: int, report: Report) -> None:
    journal = Journal(index_dir / "journal")
    total = len(journal)
    if not total:
        return
    usable = [b for b in journal.batches() if b.base_generation == generation]
    files = sum(len(b) for b in usable)
    if usable:
        report.add(
            "journal",
            NOTE,
            f"{len(usable)} batches ({files} files) from an interrupted run; the next "
            "`mms index` replays them",
            "replay them now",
        )
    if total > len(usable):
        report.add("journal", NOTE, f"{total - len(usable)} stale batch files", "delete them")


# -- repairs --------------------------------------------------------------------------


def repair(index_dir: Path) -> Report:
    """Check and repair under the writer lock; return the report of a check afterwards."""
    with index_lock(index_dir, wait=0):
        before = check(index_dir)
        if any(f.level == FATAL for f in before.findings):
            return before
        done: list[str] = []
        if any(f.check == "database" and f.level == DAMAGED for f in before.findings):
            _start_over(index_dir, done)
        else:
            _repair_in_place(index_dir, before, done)
        for tmp in stale_tmp_files(index_dir):
            with contextlib.suppress(OSError):
                tmp.unlink()
                done.append(f"deleted {tmp.name}")
    after = check(index_dir)
    after.repaired = done
    return after


def _repair_in_place(index_dir: Path, before: Report, done: list[str]) -> None:
    broken = {f.check.removeprefix("space ") for f in before.findings
              if f.check.startswith("space ") and f.level == DAMAGED}  # fmt: skip
    writer = IndexWriter.open(index_dir, manifest=False)
    try:
        replayed = writer.replay()
        if replayed:
            done.append(f"replayed {replayed} files from the journal")
        bad_files, orphans = inconsistent_files(writer.con)
        stray: dict[str, list[int]] = {}
        for name, info in writer.spaces.items():
            if name not in broken:
                _, extra = _space_problem(index_dir, writer.con, info)
                if extra:
                    stray[name] = extra
        for name, ids in stray.items():
            writer.tombstone(name, ids)
            done.append(f"marked {len(ids)} vectors of no segment in '{name}' deleted")
        for name in sorted(broken):
            forgotten = writer.drop_space_vectors(name)
            done.append(f"dropped the vectors of space '{name}'; {forgotten} files will be "
                        "embedded again by the next `mms index`")  # fmt: skip
        for path in sorted(bad_files):
            writer.drop_file(path)
        if bad_files or orphans:
            writer.drop_orphans(orphans)
            done.append(f"forgot {len(bad_files)} inconsistent files and "
                        f"{len(orphans)} orphan segments")  # fmt: skip
        writer.commit()
        done.append("rewrote the manifest from the database")
    finally:
        writer.close()
    Journal(index_dir / "journal").clear()


def _start_over(index_dir: Path, done: list[str]) -> None:
    """The database is lost: keep it aside, start empty with the manifest's spaces."""
    spaces: dict[str, SpaceInfo] = {}
    with contextlib.suppress(MmsError, TypeError, KeyError):
        manifest = read_manifest(index_dir)
        for name, raw in (manifest.get("spaces") or {}).items():
            info = SpaceInfo(**raw)
            spaces[name] = SpaceInfo(name=info.name, dim=info.dim, metric=info.metric,
                                     encoders=info.encoders, fingerprints=info.fingerprints,
                                     options=info.options, weight=info.weight)  # fmt: skip
    path = database_path(index_dir)
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        with contextlib.suppress(FileNotFoundError):
            os.replace(p, p.with_name(p.name + ".damaged"))
    sidecar_path(index_dir).unlink(missing_ok=True)
    for p in (index_dir / "spaces").glob("*") if (index_dir / "spaces").is_dir() else []:
        p.unlink()
    Journal(index_dir / "journal").clear()
    writer = IndexWriter.open(index_dir)
    try:
        for info in spaces.values():
            writer.add_space(info)
        writer.commit()
    finally:
        writer.close()
    done.append(f"the database was damaged: kept as {path.name}.damaged and started an empty "
                f"index with {len(spaces)} spaces; run `mms index DIR` to fill it")  # fmt: skip


def doctor(index_dir: Path, *, fix: bool = False) -> Report:
    """Entry point for the CLI: check, and repair when asked and needed."""
    try:
        report = check(index_dir)
    except _Stop as stop:
        return stop.report
    if fix and (not report.healthy or report.repairable):
        return repair(index_dir)
    return report

"""Crash loop against the PostgreSQL backend: SIGKILL `mms index --backend` at random
moments, and the database must end identical in content to a clean run's.

Usage: python benchmarks/crash_loop_backend.py [--kills 20] [--seed 1] [--images 10]
                                              [--backend URL|pgserver]

A copy of sample_data (text notes, some images, one broken file) is indexed by real
`mms index ROOT --backend URL` processes (one host, one working copy) that are killed at
random moments: uniformly over a run, and one kill in two while it publishes (the child
publishes in transactions of ``MMS_CRASH_BATCH`` files, 3 by default, so a kill lands
between or inside them). Between cycles the corpus changes (``crash_loop.mutate``:
files touched, edited, deleted, restored, moved). After every kill, without repairing
anything:

* `mms query --backend` answers (exit 0, or 3 before anything was ever published);
* every source's counts (files, segments, tokens, vectors per space: BM25 reads them)
  equal its rows, and the postings equal the segments' words, with no orphans; the
  published generation of a source is only ever one its rows are complete for (checked
  at the end).

Some kills are chained (the resumed run is killed again); otherwise the next run must
complete. At the end the database is compared with a clean run's: a fresh database
filled by an uninterrupted `mms index --backend` with a fresh working copy on the same
files (same files, metadata, segments, words, postings and counts; vectors within 1e-6),
and, strictly, with the working copy published into a fresh database (`--from-local`):
every field, times indexed and local ids included.

`--backend pgserver` (the default) starts the pgserver wheel's server here
(``tests/support/pg.py``); a URL must allow CREATE DATABASE.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
HOST = "crash-host"
CHILD = """
import contextlib, os, sys
from mmsearch_cli.cli import console
from mmsearch_cli.store.postgres import publish
publish.BATCH_FILES = int(os.environ.get("MMS_CRASH_BATCH", "3"))
log = os.environ["MMS_CRASH_PROGRESS"]

@contextlib.contextmanager
def progress(label, quiet=False):
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        yield lambda done, total, what: os.write(
            fd, f"{done} {total} {'P' if what == 'publishing' else 'E'}\\n".encode())
    finally:
        os.close(fd)

console.progress = progress
from mmsearch_cli.cli.app import main
main()
"""


def _crash_loop() -> Any:
    """benchmarks/crash_loop.py (corpus, mutations, the in-process CLI)."""
    return _benchmark("crash_loop")


def _benchmark(name: str) -> Any:
    """Another benchmark script as a module (benchmarks/ is not a package)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / f"benchmarks/{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class Tally:
    kills: int = 0
    not_killed: int = 0
    recoveries: int = 0  # kills after which every check passed
    completed_runs: int = 0
    phases: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _env(url: str, log: Path | str) -> dict[str, str]:
    return {**os.environ, "MMS_CRASH_PROGRESS": str(log), "MMS_HOST": HOST,
            "MMS_BACKEND": url}  # fmt: skip


def _cmd(root: Path, index: Path) -> list[str]:
    return [sys.executable, "-c", CHILD, "index", str(root), "--index", str(index), "-q"]


def complete_run(root: Path, index: Path, url: str) -> int:
    proc = subprocess.run(_cmd(root, index), capture_output=True, env=_env(url, os.devnull))
    return proc.returncode


def _progress(log: Path) -> tuple[int, int, str]:
    """(done, total, "E" embedding / "P" publishing) of the child's last progress line."""
    try:
        lines = log.read_text().splitlines()
    except FileNotFoundError:
        return 0, -1, ""
    parts = lines[-1].split() if lines else []
    if len(parts) != 3:
        return 0, -1, ""
    return int(parts[0]), int(parts[1]), parts[2]


def killed_run(
    root: Path, index: Path, url: str, delay: float, in_publish: bool, work: Path,
    rng: random.Random,
) -> tuple[bool, str]:  # fmt: skip
    """Start the run, SIGKILL it after ``delay`` s (or a moment after it starts
    publishing). Returns (killed, phase)."""
    log = work / "progress.log"
    log.unlink(missing_ok=True)
    proc = subprocess.Popen(_cmd(root, index), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=_env(url, log))  # fmt: skip
    deadline = time.monotonic() + delay
    while proc.poll() is None and time.monotonic() < deadline:
        if in_publish and _progress(log)[2] == "P":
            time.sleep(rng.uniform(0.0, 0.08))
            break
        time.sleep(0.002 if in_publish else 0.01)
    if proc.poll() is not None:
        return False, "(no kill: run done)"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done, total, what = _progress(log)
    if total < 0:
        return True, "startup/scan"
    if what == "P":
        return True, "publishing"
    return True, "embedding" if done < total else "local commit"


# -- the database's content ------------------------------------------------------------


def content(url: str, *, strict: bool = False) -> dict[str, Any]:
    """What the database holds, by (host, root, path): each file's record, its segments
    in order (fields, words, postings, vectors), and each source's counts. Surrogate ids
    are left out; ``strict`` keeps the times indexed and the local ids (equal only
    between publishes of one working copy)."""
    import psycopg
    from pgvector.psycopg import register_vector

    out: dict[str, Any] = {}
    with psycopg.connect(url) as con:
        register_vector(con)
        cols = [c for (c,) in con.execute("SELECT col FROM mms_spaces ORDER BY name")]
        vecs = "".join(f", s.{c}" for c in cols)
        local = ", s.local_id" if strict else ""
        when = ", f.indexed_at" if strict else ""
        rows = con.execute(
            f"SELECT src.host, src.root, f.path, f.size, f.mtime_ns, f.modality, f.hash, "
            f"f.status, f.error, f.taken, f.meta{when}, s.id, s.kind, s.chunk, s.start, "
            f's."end", s.text, s.why, s.spaces, s.body, s.names, s.tsv::text, s.dl{local}'
            f"{vecs} FROM mms_files f JOIN mms_sources src ON src.id = f.source_id "
            "LEFT JOIN mms_segments s ON s.file_id = f.id "
            "ORDER BY src.host, src.root, f.path, s.kind, s.chunk, s.start, s.local_id"
        ).fetchall()
        postings: dict[int, list[tuple[Any, ...]]] = {}
        for seg, lex, f, dl in con.execute(
            "SELECT seg, lex, f, dl FROM mms_postings ORDER BY seg, lex"
        ):
            postings.setdefault(int(seg), []).append((lex, f, dl))
        n_file = 11 + (1 if strict else 0)  # the segment id's column
        segments = {r[n_file] for r in rows}
        out["orphan postings"] = sum(1 for s in postings if s not in segments)
        for row in rows:
            key = (row[0], row[1], bytes(row[2]))
            record = out.setdefault(key, {"file": row[3:n_file], "segments": []})
            if row[n_file] is None:
                continue
            seg = list(row[n_file + 1 : len(row) - len(cols)])
            vectors = [None if v is None else _array(v) for v in row[len(row) - len(cols) :]]
            record["segments"].append(
                {"fields": seg, "postings": postings.get(int(row[n_file]), []), "vectors": vectors}
            )
        out["sources"] = con.execute(
            "SELECT host, root, stats FROM mms_sources ORDER BY host, root"
        ).fetchall()
    return out


def _array(v: Any) -> np.ndarray:
    return np.asarray(v.to_numpy() if hasattr(v, "to_numpy") else v, np.float32)


def differences(a: dict[str, Any], b: dict[str, Any], tol: float = 1e-6) -> list[str]:
    """What differs between two ``content``s (vectors within ``tol``)."""
    diffs: list[str] = []
    for key in ("orphan postings", "sources"):
        if a.get(key) != b.get(key):
            diffs.append(f"{key}: {a.get(key)} != {b.get(key)}")
    files_a = {k for k in a if isinstance(k, tuple)}
    files_b = {k for k in b if isinstance(k, tuple)}
    if files_a != files_b:
        diffs.append(f"files differ: {sorted(files_a ^ files_b)[:5]}")
    for key in sorted(files_a & files_b):
        fa, fb = a[key], b[key]
        if fa["file"] != fb["file"] or len(fa["segments"]) != len(fb["segments"]):
            diffs.append(f"{key[2]!r}: record or segment count differs")
            continue
        for sa, sb in zip(fa["segments"], fb["segments"], strict=True):
            if sa["fields"] != sb["fields"] or sa["postings"] != sb["postings"]:
                diffs.append(f"{key[2]!r}: a segment differs")
                break
            for va, vb in zip(sa["vectors"], sb["vectors"], strict=True):
                if (va is None) != (vb is None) or (
                    va is not None and float(np.max(np.abs(va - vb))) > tol
                ):
                    diffs.append(f"{key[2]!r}: vectors differ")
                    break
    return diffs


def check_database(url: str) -> list[str]:
    """A kill's aftermath, read only: queries answer; counts, postings consistent."""
    import psycopg

    crash_loop = _crash_loop()
    code, _ = crash_loop.cli("query", "a fish in the sea", "-k", "3", "--format", "jsonl",
                             "--backend", url)  # fmt: skip
    with psycopg.connect(url) as con:
        known = con.execute("SELECT to_regclass('mms_postings') IS NOT NULL").fetchone()
        if not known or not known[0]:
            return [] if code == 3 else [f"query on an empty database exited {code}"]
        problems = [] if code in (0, 5) else [f"query exited {code}"]
        cols = [c for (c,) in con.execute("SELECT col FROM mms_spaces")]
        per = "".join(f", count(s.{c})" for c in cols)
        for sid, stats, files, segs, tokens, *vecs in con.execute(
            "SELECT src.id, src.stats, (SELECT count(*) FROM mms_files f "
            f"WHERE f.source_id = src.id), count(s.id), coalesce(sum(s.dl), 0){per} "
            "FROM mms_sources src LEFT JOIN mms_files f ON f.source_id = src.id "
            "LEFT JOIN mms_segments s ON s.file_id = f.id GROUP BY src.id"
        ):
            actual = {"files": files, "segments": segs, "tokens": tokens,
                      "vectors": dict(zip(cols, vecs, strict=True))}  # fmt: skip
            stats = dict(stats or {})
            recorded = {k: stats.get(k, 0) for k in ("files", "segments", "tokens")}
            recorded["vectors"] = {c: (stats.get("vectors") or {}).get(c, 0) for c in cols}
            if recorded != actual:
                problems.append(f"source {sid}: counts {recorded} != rows {actual}")
        words, postings, orphans = con.execute(
            "SELECT (SELECT count(*) FROM mms_segments s, unnest(s.tsv)), "
            "(SELECT count(*) FROM mms_postings), (SELECT count(*) FROM mms_postings p "
            "WHERE NOT EXISTS (SELECT 1 FROM mms_segments s WHERE s.id = p.seg))"
        ).fetchone() or (0, 0, 0)
        if words != postings or orphans:
            problems.append(f"{postings} postings for {words} words, {orphans} orphans")
    return problems


# -- the loop ---------------------------------------------------------------------------


def crash_loop(
    kills: int, work: Path, make_db: Callable[[str], str], *, seed: int = 1,
    n_images: int = 10, n_texts: int | None = None, chain: float = 0.3, log: Any = print,
) -> tuple[Tally, list[str], list[str]]:  # fmt: skip
    """Run the loop; return the tally and the final differences from a clean run's
    database and (strict) from the working copy's clean publish."""
    base = _crash_loop()
    rng = random.Random(seed)
    root = base.make_corpus(work / "corpus", n_images, n_texts)
    index, trash = work / "index", work / "trash"
    url = make_db("crash")
    tally = Tally()
    full = 6.0 + 0.15 * sum(1 for p in root.rglob("*") if p.is_file())
    chained = False
    while tally.kills < kills:
        if not chained and tally.kills + tally.not_killed > 0:
            base.mutate(root, trash, rng)
        in_publish = rng.random() < 0.5
        delay = full * 1.5 if in_publish else rng.uniform(0.0, full * 1.1)
        started = time.monotonic()
        killed, phase = killed_run(root, index, url, delay, in_publish, work, rng)
        if not killed:
            tally.not_killed += 1
            full = 0.5 * full + 0.5 * (time.monotonic() - started)
        else:
            tally.kills += 1
            tally.phases[phase] = tally.phases.get(phase, 0) + 1
        problems = check_database(url)
        if killed and not problems:
            tally.recoveries += 1
        chained = killed and not problems and rng.random() < chain and tally.kills < kills
        if not chained:
            t0 = time.monotonic()
            code = complete_run(root, index, url)
            after = check_database(url)
            if code in (0, 6) and not after:
                tally.completed_runs += 1
                full = 0.5 * full + 0.5 * (time.monotonic() - t0)
            problems += after + ([f"next run exited {code}"] if code not in (0, 6) else [])
        if problems:
            tally.problems.append(f"kill {tally.kills} ({phase}): {'; '.join(problems)}")
        log(f"kill {tally.kills:>3}/{kills} {phase:<20}" + (" chained" if chained else "")
            + (f"  PROBLEMS: {problems}" if problems else ""))  # fmt: skip
    code = complete_run(root, index, url)
    if code not in (0, 6):
        tally.problems.append(f"final run exited {code}")
    clean_url = make_db("clean")
    reference = work / "reference-index"
    shutil.rmtree(reference, ignore_errors=True)
    code = complete_run(root, reference, clean_url)
    if code not in (0, 6):
        tally.problems.append(f"the clean run exited {code}")
    diffs = differences(content(url), content(clean_url))
    copy_url = make_db("copy")
    proc = subprocess.run(
        [sys.executable, "-m", "mmsearch_cli", "index", "--from-local", str(index), "-q"],
        capture_output=True, env=_env(copy_url, os.devnull),
    )  # fmt: skip
    if proc.returncode != 0:
        tally.problems.append(f"--from-local exited {proc.returncode}")
    strict = differences(content(url, strict=True), content(copy_url, strict=True), tol=0.0)
    return tally, diffs, strict


def databases(spec: str) -> contextlib.AbstractContextManager[Callable[[str], str]]:
    """A function making fresh databases (their URLs): ``scale.py``'s, on the wheel's
    server or a URL's."""
    return _benchmark("scale").backend_server(spec)  # type: ignore[no-any-return]


def table(tally: Tally, diffs: list[str], strict: list[str], seconds: float) -> str:
    rows = [
        ("kills (SIGKILL)", str(tally.kills)),
        ("  by moment", ", ".join(f"{k} {v}" for k, v in sorted(tally.phases.items()))),
        ("runs that finished before their kill moment", str(tally.not_killed)),
        ("recoveries (all checks passed after the kill)", f"{tally.recoveries}/{tally.kills}"),
        ("next runs completed", str(tally.completed_runs)),
        ("database = a clean run's", "yes" if not diffs else "NO: " + "; ".join(diffs[:5])),
        ("database = its working copy published clean (every field)",
         "yes" if not strict else "NO: " + "; ".join(strict[:5])),
        ("wall time", f"{seconds / 60:.1f} min"),
    ]  # fmt: skip
    width = max(len(r[0]) for r in rows)
    lines = [f"{'measure':<{width}}  value"] + [f"{a:<{width}}  {b}" for a, b in rows]
    lines += [f"problem: {p}" for p in tally.problems]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--images", type=int, default=10, help="images in the corpus")
    parser.add_argument("--backend", default="pgserver", help="postgresql:// URL or pgserver")
    parser.add_argument("--keep", type=Path, default=None, help="work in DIR and keep it")
    args = parser.parse_args()
    os.environ.setdefault("MMS_THREADS", "1")
    os.environ.setdefault("MMS_MODEL_DIR", str(ROOT / ".cache" / "models"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        if args.keep:
            work = args.keep
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mms-pgcrash-")))
        make_db = stack.enter_context(databases(args.backend))
        tally, diffs, strict = crash_loop(args.kills, work, make_db, seed=args.seed,
                                          n_images=args.images)  # fmt: skip
    print(table(tally, diffs, strict, time.monotonic() - started))
    sys.exit(0 if not diffs and not strict and not tally.problems else 1)


if __name__ == "__main__":
    main()

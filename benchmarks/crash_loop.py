"""Crash loop: SIGKILL `mms index` at random moments, check the index after every kill.

Usage: python benchmarks/crash_loop.py [--kills 50] [--seed 1] [--images 40] [--keep DIR]
                                      [--server]

A copy of sample_data (text notes, some images, one broken file) is indexed by real
`mms index` processes that are killed at random moments: uniformly over a run, and one
kill in four while a commit is writing (a temp file appears in the index). Between kill
cycles the corpus changes (files touched, edited, deleted, restored, moved) so every run
has work. After each kill the harness checks, without touching the index:

* the sidecar loads, every space loads and holds every live id (no missing vectors);
* `mms info --json` agrees with the sidecar; no segment points to a missing file record,
  every ok file has its segments, failed files have none;
* a query answers (exit 0, or 5 on an empty index);
* work lost: files the killed run finished (progress reports) that are neither in the
  sidecar nor in a journal batch the next run will replay. The batch in flight (at most
  BATCH_FILES files) may be lost; more is counted as "lost beyond the batch in flight".

Some kills are chained (the resumed run is killed again); otherwise the next run must
complete. At the end the index is compared with one built by an uninterrupted run on the
same files: same files and status, same segments per file, vectors within 1e-6.

With ``--server`` the process killed is ``mms serve --watch`` instead: each cycle starts a
server (its catch-up batch must bring the index up to date), changes the corpus (events),
and SIGKILLs the server at a random moment: one kill in two while a batch is in flight
(journal batches or a temp manifest in the index). The same checks follow every kill;
at the end a last server catches up and stops, and the index must equal an
uninterrupted run's: what a killed batch had not committed is picked up by the next
server, nothing is lost for good.

The child is the real CLI entry point with one hook: its progress callback appends the
number of finished files to a file (`mms index` shows progress only on a terminal).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data"
CHILD = """
import contextlib, os, sys
from mmsearch_cli.cli import console
log = os.environ["MMS_CRASH_PROGRESS"]

@contextlib.contextmanager
def progress(label, quiet=False):
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        yield lambda done, total, path: os.write(fd, f"{done} {total}\\n".encode())
    finally:
        os.close(fd)

console.progress = progress
from mmsearch_cli.cli.app import main
main()
"""


@dataclass
class Tally:
    kills: int = 0
    not_killed: int = 0  # the run finished before its kill moment
    recoveries: int = 0  # kills after which every check passed
    completed_runs: int = 0
    files_lost: int = 0  # finished files not persisted, summed over kills
    worst_lost: int = 0
    lost_beyond_batch: int = 0
    manual_repairs: int = 0
    phases: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


# -- corpus ---------------------------------------------------------------------------


def make_corpus(dest: Path, n_images: int, n_texts: int | None = None) -> Path:
    texts = sorted((SAMPLE / "text").iterdir())[:n_texts]
    images = sorted(p for p in (SAMPLE / "images").rglob("*") if p.is_file())
    rng = random.Random(0)
    picked = rng.sample(images, min(n_images, len(images)))
    for src in [*texts, *picked, SAMPLE / "broken" / "empty.jpg"]:
        target = dest / src.relative_to(SAMPLE)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    return dest


def mutate(root: Path, trash: Path, rng: random.Random) -> None:
    """Give the next run work: touch, edit, delete, restore and move files."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    now = time.time_ns()
    for p in rng.sample(files, max(1, len(files) // 4)):
        os.utime(p, ns=(now, now + rng.randrange(1, 10**9)))
    notes = [p for p in files if p.suffix in (".md", ".txt")]
    if notes:
        note = rng.choice(notes)
        with note.open("a") as fh:
            fh.write(f"\nEdited in cycle {rng.randrange(10**6)}.\n")
    trash.mkdir(exist_ok=True)
    for p in sorted(trash.iterdir()):  # restore what was deleted last time
        shutil.move(p, root / p.name.replace("__", "/"))
    for p in rng.sample(files, min(2, len(files))):
        if p.exists():
            shutil.move(p, trash / str(p.relative_to(root)).replace("/", "__"))
    left = sorted(p for p in root.rglob("*") if p.is_file())
    if left:
        src = rng.choice(left)
        moved = root / "moved" / f"m{rng.randrange(10**6)}{src.suffix}"
        moved.parent.mkdir(exist_ok=True)
        shutil.move(src, moved)


# -- in-process CLI, for checks -------------------------------------------------------


def cli(*args: str | os.PathLike[str]) -> tuple[int, bytes]:
    from mmsearch_cli.cli.app import run

    out = io.BytesIO()
    w_out = io.TextIOWrapper(out, encoding="utf-8", errors="surrogateescape", write_through=True)
    w_err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="replace")
    with mock.patch.object(sys, "stdout", w_out), mock.patch.object(sys, "stderr", w_err):
        code = run([os.fspath(a) for a in args])
        w_out.flush()
    return int(code), out.getvalue()


MMS = [sys.executable, "-m", "mmsearch_cli"]


def mms_cmd(*args: str | os.PathLike[str]) -> list[str]:
    return [sys.executable, "-c", CHILD, *(os.fspath(a) for a in args)]


# -- checks ---------------------------------------------------------------------------


def check_index(index: Path) -> list[str]:
    """Everything a reader relies on, without modifying the index. [] when healthy."""
    from mmsearch_cli.errors import MmsError
    from mmsearch_cli.store import db
    from mmsearch_cli.store.doctor import inconsistent_files
    from mmsearch_cli.store.index import IndexReader
    from mmsearch_cli.store.manifest import sidecar_path

    if not sidecar_path(index).exists():
        code, _ = cli("info", "--index", index, "--json")
        return [] if code == 3 else [f"no manifest, but info exited {code}"]
    problems: list[str] = []
    try:
        reader = IndexReader.open(index)
        for name in reader.spaces:
            reader.space(name)  # raises if the vector files hold fewer rows than counted
    except MmsError as exc:
        return [f"index does not load: {exc}"]
    bad, orphans = inconsistent_files(reader.con)
    if bad or orphans:
        problems.append(f"{len(bad)} inconsistent files, {len(orphans)} orphan segments")
    counts = db.counts(reader.con)
    reader.close()
    code, out = cli("info", "--index", index, "--json")
    if code != 0:
        return [*problems, f"info exited {code}"]
    info = json.loads(out)
    ok = sum(counts["by_modality"].values())
    if (info["files"], info["segments"]) != (ok, counts["segments"]):
        problems.append(f"info counts {info['files']}/{info['segments']} disagree")
    code, _ = cli("query", "a fish in the sea", "-k", "3", "--format", "jsonl", "--index", index)
    if code not in (0, 5):
        problems.append(f"query exited {code}")
    return problems


def persisted_since(index: Path, started: float) -> int:
    """Files written by a run that started at ``started``: committed, or journaled for
    the generation the next run will open (what it replays)."""
    from mmsearch_cli.store import db
    from mmsearch_cli.store.index import IndexReader
    from mmsearch_cli.store.journal import Journal
    from mmsearch_cli.store.manifest import sidecar_path

    gen, paths = 0, set()
    if sidecar_path(index).exists():
        reader = IndexReader.open(index)
        gen = reader.generation
        paths = {r.path for r in db.iter_files(reader.con) if r.indexed_at >= started}
        reader.close()
    for batch in Journal(index / "journal").batches():
        if batch.base_generation != gen:
            break
        paths |= {f.path for f in batch.files if f.indexed_at >= started}
    return len(paths)


def finished_files(progress_log: Path) -> tuple[int, int]:
    """(files finished, files to do) from the child's progress lines; (0, -1) if none."""
    try:
        lines = progress_log.read_text().split()
    except FileNotFoundError:
        return 0, -1
    if len(lines) < 2:
        return 0, -1
    return int(lines[-2]), int(lines[-1])


# -- runs -----------------------------------------------------------------------------


def complete_run(root: Path, index: Path) -> int:
    proc = subprocess.run(
        mms_cmd("index", root, "--index", index, "-q"),
        capture_output=True,
        env={**os.environ, "MMS_CRASH_PROGRESS": os.devnull},
    )
    return proc.returncode


def killed_run(
    root: Path, index: Path, delay: float, at_commit: bool, work: Path
) -> tuple[bool, str, int, int]:
    """Start `mms index`, SIGKILL it after ``delay`` s (or at its first commit write).
    Returns (killed, phase, files finished, files persisted)."""
    log = work / "progress.log"
    log.unlink(missing_ok=True)
    started = time.time()
    proc = subprocess.Popen(
        mms_cmd("index", root, "--index", index, "-q"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "MMS_CRASH_PROGRESS": str(log)},
    )
    deadline = time.monotonic() + delay
    while proc.poll() is None and time.monotonic() < deadline:
        if at_commit and _committing(index, log):
            break
        time.sleep(0.002 if at_commit else 0.01)
    if proc.poll() is not None:
        return False, "(no kill: run done)", 0, 0
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done, total = finished_files(log)
    if total < 0:
        phase = "startup/scan"
    elif done < total:
        phase = "embedding"
    else:
        phase = "commit/exit"
    if at_commit and phase == "commit/exit":
        phase = "during commit"
    return True, phase, done, persisted_since(index, started)


def _committing(index: Path, log: Path) -> bool:
    """Past embedding (the progress log says every file is done): the run is committing."""
    done, total = finished_files(log)
    return (total >= 0 and done == total) or any(index.glob(".sidecar.json.*.tmp"))


# -- comparison -----------------------------------------------------------------------


def snapshot(index: Path) -> dict[str, Any]:
    """Per file: status, segments (kind, chunk, times, text) and vectors per space."""
    from mmsearch_cli.store import db
    from mmsearch_cli.store.index import IndexReader

    reader = IndexReader.open(index)
    by_file: dict[str, list[Any]] = {}
    for seg in db.iter_segments(reader.con):
        by_file.setdefault(seg.file, []).append(seg)
    out: dict[str, Any] = {}
    for rec in db.iter_files(reader.con):
        segs = by_file.get(rec.path, [])
        vecs = {}
        for name in reader.spaces:
            ids = [s.id for s in segs if name in s.spaces]
            if ids:
                vecs[name] = reader.space(name).get(ids)
        out[rec.path] = {
            "status": rec.status,
            "segments": [(s.kind, s.chunk, s.start, s.end, s.text) for s in segs],
            "vectors": vecs,
        }
    reader.close()
    return out


def compare(a: dict[str, Any], b: dict[str, Any]) -> tuple[list[str], float]:
    """Differences between two snapshots, and the largest vector difference."""
    diffs: list[str] = []
    if set(a) != set(b):
        diffs.append(f"file sets differ: {sorted(set(a) ^ set(b))[:5]}")
    worst = 0.0
    for path in sorted(set(a) & set(b)):
        fa, fb = a[path], b[path]
        if fa["status"] != fb["status"] or fa["segments"] != fb["segments"]:
            diffs.append(f"{path}: status or segments differ")
            continue
        if set(fa["vectors"]) != set(fb["vectors"]):
            diffs.append(f"{path}: spaces differ")
            continue
        for name, va in fa["vectors"].items():
            worst = max(worst, float(np.max(np.abs(va - fb["vectors"][name]))))
    if worst > 1e-6:
        diffs.append(f"vectors differ by up to {worst:.2e}")
    return diffs, worst


# -- the loop -------------------------------------------------------------------------


def crash_loop(
    kills: int, work: Path, *, seed: int = 1, n_images: int = 40, n_texts: int | None = None,
    chain: float = 0.35, log: Any = print,
) -> tuple[Tally, list[str], float]:  # fmt: skip
    """Run the loop; return the tally, the final comparison's differences and max diff."""
    from mmsearch_cli.indexing.embed import BATCH_FILES

    rng = random.Random(seed)
    root = make_corpus(work / "corpus", n_images, n_texts)
    index, trash = work / "index", work / "trash"
    tally = Tally()
    full = 4.0 + 0.15 * sum(1 for p in root.rglob("*") if p.is_file())  # first estimate
    chained = False
    while tally.kills < kills:
        if not chained and tally.kills + tally.not_killed > 0:
            mutate(root, trash, rng)
        at_commit = rng.random() < 0.25
        delay = full * 1.5 if at_commit else rng.uniform(0.0, full * 1.1)
        started = time.monotonic()
        killed, phase, done, kept = killed_run(root, index, delay, at_commit, work)
        if not killed:
            tally.not_killed += 1
            full = 0.5 * full + 0.5 * (time.monotonic() - started)
        else:
            tally.kills += 1
            tally.phases[phase] = tally.phases.get(phase, 0) + 1
            lost = max(0, done - kept)
            tally.files_lost += lost
            tally.worst_lost = max(tally.worst_lost, lost)
            tally.lost_beyond_batch += max(0, lost - BATCH_FILES)
        problems = check_index(index)
        if killed and not problems:
            tally.recoveries += 1
        chained = killed and not problems and rng.random() < chain and tally.kills < kills
        if not chained:
            t0 = time.monotonic()
            code = complete_run(root, index)
            after = check_index(index)
            if code in (0, 6) and not after:
                tally.completed_runs += 1
                full = 0.5 * full + 0.5 * (time.monotonic() - t0)
            problems += after + ([f"next run exited {code}"] if code not in (0, 6) else [])
        if problems:
            tally.manual_repairs += 1
            tally.problems.append(f"kill {tally.kills} ({phase}): {'; '.join(problems)}")
            cli("doctor", "--repair", "--index", index)
        log(
            f"kill {tally.kills:>3}/{kills} {phase:<14} finished {done:>3} persisted {kept:>3}"
            + (" chained" if chained else "")
            + (f"  PROBLEMS: {problems}" if problems else "")
        )
    code = complete_run(root, index)
    if code not in (0, 6):
        tally.problems.append(f"final run exited {code}")
    reference = work / "reference-index"
    shutil.rmtree(reference, ignore_errors=True)
    code = complete_run(root, reference)
    diffs, worst = compare(snapshot(index), snapshot(reference))
    return tally, diffs, worst


def start_server(index: Path, log: Path) -> subprocess.Popen[bytes]:
    """``mms serve --watch`` on the index, once it answers and its catch-up batch is done."""
    proc = subprocess.Popen(
        [*MMS, "serve", "--watch", "--debounce", "0.3", "--index", str(index), "--log", str(log)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    calm, deadline = 0, time.monotonic() + 600
    while calm < 2 and time.monotonic() < deadline and proc.poll() is None:
        code, out = cli("serve", "status", "--index", index, "--json")
        watching = json.loads(out).get("watching") or {} if code == 0 else {}
        ready = code == 0 and watching.get("batches", 0) >= 1
        calm = calm + 1 if ready and not watching["pending"] and not watching["busy"] else 0
        time.sleep(0.3)
    return proc


def _batch_in_flight(index: Path) -> bool:
    journal = index / "journal"
    return any(index.glob(".sidecar.json.*.tmp")) or (journal.is_dir() and any(journal.iterdir()))


def serve_loop(
    kills: int, work: Path, *, seed: int = 1, n_images: int = 40, log: Any = print
) -> tuple[Tally, list[str], float]:
    """Kill ``mms serve --watch`` instead of ``mms index``; same checks, same final test."""
    rng = random.Random(seed)
    root = make_corpus(work / "corpus", n_images)
    index, trash = work / "index", work / "trash"
    if complete_run(root, index) not in (0, 6):
        raise SystemExit("the first index run failed")
    tally = Tally()
    while tally.kills < kills:
        server = start_server(index, work / "serve.log")
        if server.poll() is not None:
            tally.problems.append(f"server exited {server.returncode} at start")
            break
        mutate(root, trash, rng)
        at_commit = rng.random() < 0.5
        deadline = time.monotonic() + (10.0 if at_commit else rng.uniform(0.0, 4.0))
        seen_batch = False
        while time.monotonic() < deadline:
            seen_batch = seen_batch or _batch_in_flight(index)
            if at_commit and seen_batch:
                break
            time.sleep(0.002)
        server.send_signal(signal.SIGKILL)
        server.wait()
        phase = "batch in flight" if _batch_in_flight(index) else "between batches"
        tally.kills += 1
        tally.phases[phase] = tally.phases.get(phase, 0) + 1
        problems = check_index(index)
        if problems:
            tally.manual_repairs += 1
            tally.problems.append(f"kill {tally.kills} ({phase}): {'; '.join(problems)}")
            cli("doctor", "--repair", "--index", index)
        else:
            tally.recoveries += 1
        log(f"kill {tally.kills:>3}/{kills} {phase:<16}"
            + (f"  PROBLEMS: {problems}" if problems else ""))  # fmt: skip
    server = start_server(index, work / "serve.log")  # the last catch-up
    server.send_signal(signal.SIGTERM)
    if server.wait(timeout=120) != 0:
        tally.problems.append(f"last server exited {server.returncode}")
    else:
        tally.completed_runs += 1
    reference = work / "reference-index"
    shutil.rmtree(reference, ignore_errors=True)
    complete_run(root, reference)
    diffs, worst = compare(snapshot(index), snapshot(reference))
    return tally, diffs, worst


def table(tally: Tally, diffs: list[str], worst: float, seconds: float) -> str:
    from mmsearch_cli.indexing.embed import BATCH_FILES

    rows = [
        ("kills (SIGKILL)", str(tally.kills)),
        ("  by moment", ", ".join(f"{k} {v}" for k, v in sorted(tally.phases.items()))),
        ("runs that finished before their kill moment", str(tally.not_killed)),
        ("recoveries (all checks passed after the kill)", f"{tally.recoveries}/{tally.kills}"),
        ("next runs completed", str(tally.completed_runs)),
        (f"files lost in the batch in flight (<= {BATCH_FILES} each)", str(tally.files_lost)),
        ("  worst single kill", str(tally.worst_lost)),
        ("files lost beyond the batch in flight", str(tally.lost_beyond_batch)),
        ("manual repairs needed", str(tally.manual_repairs)),
        ("final index = uninterrupted run", "yes" if not diffs else "NO: " + "; ".join(diffs)),
        ("  max vector difference", f"{worst:.1e}"),
        ("wall time", f"{seconds / 60:.1f} min"),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"{'measure':<{width}}  value"] + [f"{a:<{width}}  {b}" for a, b in rows]
    lines += [f"problem: {p}" for p in tally.problems]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--images", type=int, default=40, help="images in the corpus")
    parser.add_argument("--keep", type=Path, default=None, help="work in DIR and keep it")
    parser.add_argument("--server", action="store_true", help="kill `mms serve --watch`")
    args = parser.parse_args()
    os.environ.setdefault("MMS_THREADS", "1")
    os.environ.setdefault("MMS_MODEL_DIR", str(ROOT / ".cache" / "models"))
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        if args.keep:
            work = args.keep
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mms-crash-")))
        loop = serve_loop if args.server else crash_loop
        tally, diffs, worst = loop(args.kills, work, seed=args.seed, n_images=args.images)
    print(table(tally, diffs, worst, time.monotonic() - started))
    sys.exit(0 if not diffs and not tally.problems else 1)


if __name__ == "__main__":
    main()

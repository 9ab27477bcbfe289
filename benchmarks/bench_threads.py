"""Index throughput by thread count, on a quiet machine and beside a busy neighbour.

Why: the default of one thread per process (``MMS_THREADS``) should be measured, not
assumed. On 2 shared cores, torch with 2 threads was once seen to slow to seconds per
image while another process was busy. This indexes the images of ``sample_data/`` into a
fresh index with 1 and 2 threads, with and without a CPU-bound neighbour process, and
prints a table (median of ``--repeat`` runs)::

    python benchmarks/bench_threads.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "sample_data" / "images"


def _burn(stop: object) -> None:
    while not stop.is_set():  # type: ignore[attr-defined]
        sum(i * i for i in range(10_000))


def index_seconds(threads: int) -> float:
    with tempfile.TemporaryDirectory(prefix="mms-threads-") as tmp:
        env = {**os.environ, "MMS_THREADS": str(threads)}
        started = time.perf_counter()
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "mms"), "index", str(IMAGES), "--index", tmp, "-q"],
            env=env, capture_output=True, text=True,
        )  # fmt: skip
        elapsed = time.perf_counter() - started
        if proc.returncode not in (0, 6):
            raise SystemExit(f"mms index failed ({proc.returncode}): {proc.stderr.strip()}")
        return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n = sum(1 for p in IMAGES.rglob("*") if p.is_file())
    print(f"{n} images from {IMAGES.relative_to(ROOT)}, {os.cpu_count()} CPUs\n")
    print("| neighbour | MMS_THREADS | wall s (median) | images/s |")
    print("|---|---|---|---|")
    for busy in (False, True):
        stop = mp.Event()
        burner = mp.Process(target=_burn, args=(stop,), daemon=True) if busy else None
        if burner:
            burner.start()
        try:
            for threads in (1, 2):
                runs = [index_seconds(threads) for _ in range(args.repeat)]
                wall = statistics.median(runs)
                print(f"| {'busy' if busy else 'idle'} | {threads} | {wall:.1f} | {n / wall:.1f} |")
        finally:
            stop.set()
            if burner:
                burner.join()


if __name__ == "__main__":
    main()

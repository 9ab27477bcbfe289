"""Photo indexing cost with everything on: scenes, faces, EXIF places, colours, OCR.

Usage: python benchmarks/photos.py [--photos DIR] [--limit N]

Indexes N real photos (default: the shared corpus's images/, else sample_data/images)
with `mms index` in fresh processes, once with one photo (model loading) and once with
all of them, and reports the steady rate, (N - 1) / (wall_N - wall_1), and the peak RSS.
Then it times each stage per photo in this process on one thread, one after the other.
A reference workload (numpy matrix products) runs first, so numbers from a noisy shared
machine can be compared as ratios. Prints a table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MMS = [sys.executable, "-m", "mmsearch_cli"]
SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


def reference_seconds() -> float:
    import numpy as np

    a = np.random.default_rng(0).standard_normal((512, 512)).astype(np.float32)
    start = time.perf_counter()
    for _ in range(50):
        a = np.tanh(a @ a.T / 512)
    return time.perf_counter() - start


def index_run(folder: Path) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of `mms index` on ``folder`` into a new index."""
    with tempfile.TemporaryDirectory() as index:
        cmd = ["/usr/bin/time", "-f", "%M", *MMS, "index", str(folder), "--index", index, "-q"]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ})
        wall = time.perf_counter() - start
    if proc.returncode not in (0, 6):
        raise SystemExit(proc.stderr)
    return wall, int(proc.stderr.strip().splitlines()[-1])


def stage_costs(photos: list[Path]) -> list[tuple[str, str]]:
    from mmsearch_cli.config import load_settings
    from mmsearch_cli.decoders.faces import shared_detector
    from mmsearch_cli.decoders.image import load_image
    from mmsearch_cli.embedders.adapter import AdapterImageEmbedder
    from mmsearch_cli.embedders.scenes import SceneClassifier
    from mmsearch_cli.items import MediaItem

    conf = load_settings()
    images = [load_image(p, max_pixels=conf.limits.max_image_pixels) for p in photos]
    rows = []

    def per_photo(label: str, fn: object) -> None:
        assert callable(fn)
        fn(images[0])  # load the model first
        start = time.perf_counter()
        for img in images:
            fn(img)
        ms = 1000 * (time.perf_counter() - start) / len(images)
        rows.append((f"  {label}", f"{ms:.0f} ms per photo"))

    start = time.perf_counter()
    for p in photos:
        load_image(p, max_pixels=conf.limits.max_image_pixels)
    decode_ms = 1000 * (time.perf_counter() - start) / len(photos)
    rows.append(("  decode (Pillow, <= 1024 px)", f"{decode_ms:.0f} ms per photo"))
    per_photo("faces (MTCNN, <= 640 px)", shared_detector(conf.model_dir).count)
    adapter = AdapterImageEmbedder(model_dir=conf.model_dir)
    per_photo("ImageNet classes, colours, OCR, adapter",
              lambda im: adapter.embed([MediaItem("image", im, "image")]))  # fmt: skip
    for size in (160, 224):
        scenes = SceneClassifier(model_dir=conf.model_dir, size=size)
        per_photo(f"scenes (Places365 at {size} px)", lambda im, s=scenes: s.read([im]))
    return rows


def main() -> int:
    corpus = ROOT.parent / "shared" / "corpus" / "images"
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--photos",
        type=Path,
        default=corpus if corpus.is_dir() else ROOT / "sample_data" / "images",
    )
    ap.add_argument("--limit", type=int, default=200)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    photos = sorted(p for p in args.photos.rglob("*") if p.suffix.lower() in SUFFIXES)
    photos = photos[: args.limit]
    rows: list[tuple[str, str]] = []
    ref = statistics.median(reference_seconds() for _ in range(3))
    rows.append(("reference (numpy, 50 products of 512x512)", f"{ref * 1000:.0f} ms"))
    with tempfile.TemporaryDirectory() as tmp:
        one, all_ = Path(tmp) / "one", Path(tmp) / "all"
        one.mkdir()
        all_.mkdir()
        for n, p in enumerate(photos):
            shutil.copy2(p, all_ / f"p{n:04d}{p.suffix.lower()}")  # opaque, unique names
        shutil.copy2(photos[0], one / f"p0000{photos[0].suffix.lower()}")
        wall_1, _ = index_run(one)
        wall_n, rss = index_run(all_)
    rate = (len(photos) - 1) / max(1e-9, wall_n - wall_1)
    rows.append(
        (f"mms index, {len(photos)} photos", f"{wall_n:.1f} s wall, model load ~{wall_1:.1f} s")
    )
    rows.append(
        ("photos per second (steady)", f"{rate:.1f} ({rate * ref:.2f} per reference-second)")
    )
    rows.append(("peak RSS while indexing", f"{rss / 1024:.0f} MiB"))
    rows.append(("stages, one thread, in sequence:", ""))
    rows.extend(stage_costs(photos[:40]))
    width = max(len(a) for a, _ in rows)
    print(f"{'measure':<{width}}  value")
    print(f"{'-' * width}  -----")
    for a, b in rows:
        print(f"{a:<{width}}  {b}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

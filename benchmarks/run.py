"""Benchmarks for the foundation: index throughput, cold query latency, peak memory.

Usage: python benchmarks/run.py [--runs 5]
Prints a table. Uses sample_data/ and a temporary index; models come from MMS_MODEL_DIR.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MMS = [sys.executable, "-m", "mmsearch_cli"]


def timed(
    args: list[str], env: dict[str, str]
) -> tuple[float, int, subprocess.CompletedProcess[bytes]]:
    """Wall seconds and peak RSS (KiB) of one fresh `mms` process."""
    cmd = ["/usr/bin/time", "-f", "%M", *MMS, *args]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, env=env)
    wall = time.perf_counter() - started
    rss = int(proc.stderr.decode().strip().splitlines()[-1])
    return wall, rss, proc


def _long_audio(env: dict[str, str], tmp: Path) -> list[tuple[str, str]]:
    """A 10-minute recording of mixed speech and animal sounds: audio s/s and peak RSS."""
    import numpy as np
    import soundfile as sf

    from mmsearch_cli.decoders.audio import load

    clips = sorted((ROOT / "sample_data/audio").rglob("*.wav")) + sorted(
        (ROOT / "sample_data/audio/animals").glob("*.mp3")
    )
    parts = [load(c, 16000) for c in clips]
    pad = np.zeros(16000, dtype=np.float32)
    wave = np.concatenate([x for p in parts for x in (p, pad)])
    wave = np.tile(wave, int(np.ceil(600 * 16000 / len(wave))))[: 600 * 16000]
    folder = tmp / "long-audio"
    folder.mkdir()
    sf.write(folder / "ten_minutes.wav", wave, 16000)
    w, r, _ = timed(["index", str(folder), "--index", str(tmp / "long-index"), "-q"], env)
    return [
        (
            "index 10-min mixed audio (speech+animals)",
            f"{w:.1f} s = {600 / w:.1f} audio s per wall s",
        ),
        ("index 10-min audio: peak RSS", f"{r / 1024:.0f} MiB"),
    ]


def _drawings(env: dict[str, str], tmp: Path, n: int = 120) -> list[tuple[str, str]]:
    """Generated flat-colour drawings (wide, tall and square): the image adapter reads these
    through three classifier views, photos through one."""
    import numpy as np
    from PIL import Image, ImageDraw

    folder = tmp / "drawings"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        size = [(512, 256), (256, 512), (384, 384)][i % 3]
        img = Image.new("RGB", size, "white")
        pen = ImageDraw.Draw(img)
        for _ in range(4):
            x0, y0 = (int(v) for v in rng.integers(0, min(size) // 2, 2))
            box = (x0, y0, x0 + int(rng.integers(40, 200)), y0 + int(rng.integers(40, 200)))
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            (pen.ellipse if i % 2 else pen.rectangle)(box, fill=colour, outline=(0, 0, 0), width=3)
        img.save(folder / f"drawing{i:03d}.png")
    w, r, p = timed(["index", str(folder), "--index", str(tmp / "drawings-index"), "--json", "-q"],
                    env)  # fmt: skip
    done = json.loads(p.stdout)["embedded_by_modality"].get("image", 0)
    return [("index drawings only (generated)",
             f"{done} files in {w:.1f} s = {done / w:.2f} files/s (incl. model load), "
             f"peak {r / 1024:.0f} MiB")]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        index = str(Path(tmp) / "index")
        wall, rss, proc = timed(
            ["index", str(ROOT / "sample_data"), "--index", index, "--json", "-q"], env
        )
        summary = json.loads(proc.stdout)
        files = sum(summary["embedded_by_modality"].values())
        rows.append(("index sample_data: files", f"{files} ok, {summary['failed']} failed"))
        rows.append(
            ("index sample_data: wall", f"{wall:.1f} s ({files / wall:.1f} files/s overall)")
        )
        rows.append(("index sample_data: peak RSS", f"{rss / 1024:.0f} MiB"))
        # Per-modality throughput: index each modality's folder alone into a fresh index.
        for modality, sub in (
            ("image", "images"),
            ("text", "text"),
            ("audio", "audio"),
            ("video", "video"),
        ):
            with tempfile.TemporaryDirectory() as t2:
                w, r, p = timed(
                    ["index", str(ROOT / "sample_data" / sub), "--index", t2, "--json", "-q"], env
                )
                n = json.loads(p.stdout)["embedded_by_modality"].get(modality, 0)
                if modality == "video":  # sample videos: 30 s + 5.3 s
                    rows.append(
                        ("index video: video s per wall s", f"{35.3 / w:.1f} (incl. model load)")
                    )
                rows.append(
                    (
                        f"index {modality} only",
                        f"{n} files in {w:.1f} s = {n / w:.2f} files/s (incl. model load), "
                        f"peak {r / 1024:.0f} MiB",
                    )
                )
        rows.extend(_drawings(env, Path(tmp)))
        rows.extend(_long_audio(env, Path(tmp)))
        w, r, p = timed(["index", str(ROOT / "sample_data"), "--index", index, "--json", "-q"], env)
        rows.append(("re-index unchanged (no-op)", f"{w:.2f} s wall, peak {r / 1024:.0f} MiB"))
        for label, q in (
            ("text", ["query", "a hammer"]),
            ("image", ["query", "--image", str(ROOT / "sample_data/images/fishes/fish1.webp")]),
        ):
            walls, rsss = [], []
            for _ in range(args.runs):
                w, r, p = timed([*q, "--index", index, "-k", "5", "--format", "jsonl"], env)
                assert p.returncode == 0, p.stderr
                walls.append(w)
                rsss.append(r)
            rows.append(
                (
                    f"cold `mms query` ({label}), median of {args.runs}",
                    f"{statistics.median(walls) * 1000:.0f} ms, peak {max(rsss) / 1024:.0f} MiB",
                )
            )
    width = max(len(a) for a, _ in rows)
    print(f"{'measure':<{width}}  value")
    print(f"{'-' * width}  -----")
    for a, b in rows:
        print(f"{a:<{width}}  {b}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

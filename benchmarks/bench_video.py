"""How fast can keyframes be pulled out of a video, and which way of reading frames wins?

Every method feeds the same candidates (one every ``step`` seconds, as ``keyframes``
plans them) through the same scene-change selection, so only frame access differs:

* ``cv2 read-all``: ``VideoCapture.read()`` on every frame;
* ``cv2 grab+retrieve``: ``grab()`` every frame, ``retrieve()`` only candidates;
* ``cv2 seek``: ``set(CAP_PROP_POS_FRAMES)`` before each candidate (on the long video,
  timed on the first candidates and extrapolated, marked ``~``);
* ``av I-frames only``: PyAV with ``skip_frame="NONKEY"``, every I-frame a candidate;
* ``mms keyframes()``: the chosen design (PyAV, keyframe-snapped candidates, seek when it
  skips more than a few frames).

Run: ``python benchmarks/bench_video.py``. Two 10-minute test videos (640x360 H.264, cuts
between scenes of distinct colours every 8-40 s; one with x264's default GOP, one with
an I-frame every second like a phone's) are generated once, in about 45 s each, into
``$TMPDIR/mms-bench``; their cut times are kept beside them to report cut recall.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mmsearch_cli.config import Limits  # noqa: E402
from mmsearch_cli.decoders import video  # noqa: E402

LIMITS = Limits()
SAMPLES = ROOT / "sample_data" / "video"
SEEK_PROBES = 60  # candidates timed for the seek method on long videos


def make_long_video(path: Path, gop: int = 250, seconds: int = 600, fps: int = 25) -> list[float]:
    """Scenes of distinct hues with a slow pan and a moving disc; returns the cut times.

    ``gop`` 250 is x264's default (an I-frame at least every 10 s, more at cuts); 25 is
    like a phone camera (an I-frame every second).
    """
    import av
    import cv2

    cuts_file = path.with_suffix(".cuts.json")
    if path.exists() and cuts_file.exists():
        return list(json.loads(cuts_file.read_text()))
    rng = np.random.default_rng(7)
    width, height = 640, 360
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=fps)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.options = {"preset": "veryfast", "crf": "26"}
    stream.codec_context.thread_count = 1
    stream.codec_context.gop_size = gop
    cuts: list[float] = []
    frame_no, scene = 0, 0
    while frame_no < seconds * fps:
        cuts.append(frame_no / fps)
        hue = int(scene * 0.382 % 1.0 * 180)  # golden-ratio steps keep neighbours apart
        field = cv2.resize(rng.random((6, 10)).astype(np.float32), (2 * width, 2 * height))
        hsv = np.empty((2 * height, 2 * width, 3), np.uint8)
        hsv[..., 0] = (hue + 12 * field).astype(np.uint8) % 180
        hsv[..., 1] = (120 + 120 * field).astype(np.uint8)
        hsv[..., 2] = (60 + 180 * (1 - field)).astype(np.uint8)
        base = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
        length = int(rng.integers(8, 40)) * fps
        for j in range(min(length, seconds * fps - frame_no)):
            x = abs((j * 2) % (2 * width) - width)  # pan back and forth, never wrap
            view = base[height // 2 : height // 2 + height, x : x + width]
            img: np.ndarray[Any, np.dtype[np.uint8]] = np.ascontiguousarray(view, np.uint8)
            cx = int((j * 5) % width)
            cv2.circle(img, (cx, height // 2), 30, (255, 255, 255), -1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        frame_no += length
        scene += 1
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    cuts_file.write_text(json.dumps(cuts))
    return cuts


def plan(info: video.VideoInfo) -> tuple[float, video._Selector]:
    """The candidate stride and selector ``keyframes`` would use with default limits."""
    length = min(info.duration, LIMITS.max_file_seconds)
    frames = LIMITS.video_max_keyframes
    gap_min = max(LIMITS.video_min_interval, length / frames)
    gap_max = max(LIMITS.video_max_interval, gap_min)
    step = max(0.5, length / (4 * frames))
    return step, video._Selector(gap_min, gap_max, video.DEFAULT_THRESHOLD)


def _cv2_small(bgr: np.ndarray) -> np.ndarray:
    import cv2

    small = cv2.resize(bgr, video._SIG_SIZE, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2RGB)


def _capture(path: Path) -> tuple[object, float]:
    import cv2

    cv2.setNumThreads(1)
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
    return cap, cap.get(cv2.CAP_PROP_FPS)


def cv2_read_all(path: Path, step: float) -> Iterator[tuple[float, np.ndarray]]:
    cap, fps = _capture(path)
    i, due = 0, 0.0
    while True:
        ok, frame = cap.read()  # type: ignore[attr-defined]
        if not ok:
            return
        if i / fps >= due - 1e-6:
            yield i / fps, _cv2_small(frame)
            due += step
        i += 1


def cv2_grab_retrieve(path: Path, step: float) -> Iterator[tuple[float, np.ndarray]]:
    cap, fps = _capture(path)
    i, due = 0, 0.0
    while cap.grab():  # type: ignore[attr-defined]
        if i / fps >= due - 1e-6:
            _, frame = cap.retrieve()  # type: ignore[attr-defined]
            yield i / fps, _cv2_small(frame)
            due += step
        i += 1


def cv2_seek(path: Path, step: float, limit: int | None) -> Iterator[tuple[float, np.ndarray]]:
    import cv2

    cap, fps = _capture(path)
    total = cap.get(cv2.CAP_PROP_FRAME_COUNT)  # type: ignore[attr-defined]
    for k in range(limit or math.ceil(total / fps / step)):
        cap.set(cv2.CAP_PROP_POS_FRAMES, round(k * step * fps))  # type: ignore[attr-defined]
        ok, frame = cap.read()  # type: ignore[attr-defined]
        if not ok:
            return
        yield k * step, _cv2_small(frame)


def av_iframes(path: Path, step: float) -> Iterator[tuple[float, np.ndarray]]:
    import av
    from av.video.reformatter import VideoReformatter

    thumbs = VideoReformatter()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        stream.codec_context.skip_frame = "NONKEY"
        for frame in container.decode(stream):
            yield float(frame.time or 0.0), video._small_rgb(frame, thumbs)


def run(
    name: str, frames: Callable[[], Iterator[tuple[float, np.ndarray]]], info: video.VideoInfo
) -> tuple[str, int, int, float]:
    _, select = plan(info)
    start = time.perf_counter()
    candidates = 0
    for t, rgb in frames():
        candidates += 1
        select.keep(t, video._signature(rgb))
    return name, candidates, select.kept, time.perf_counter() - start


def main() -> None:
    work = Path(tempfile.gettempdir()) / "mms-bench"
    work.mkdir(exist_ok=True)
    long_path, phone_path = work / "ten_minutes.mp4", work / "ten_minutes_gop1s.mp4"
    t0 = time.perf_counter()
    cuts = make_long_video(long_path)
    make_long_video(phone_path, gop=25)
    print(f"10-minute videos ready in {time.perf_counter() - t0:.1f} s in {work}\n")
    print(f"{'video':24} {'method':20} {'cands':>6} {'keyfr':>6} {'wall s':>8} {'video s/s':>10}")
    for path in (SAMPLES / "earth.mp4", SAMPLES / "bigbuckbunny.mp4", long_path, phone_path):
        info = video.probe(path)
        step, _ = plan(info)
        long = info.duration > 120
        seek_limit = SEEK_PROBES if long else None
        rows = [
            run("cv2 read-all", partial(cv2_read_all, path, step), info),
            run("cv2 grab+retrieve", partial(cv2_grab_retrieve, path, step), info),
            run("cv2 seek", partial(cv2_seek, path, step, seek_limit), info),
            run("av I-frames only", partial(av_iframes, path, step), info),
        ]
        start = time.perf_counter()
        kept = list(video.keyframes(path))
        rows.append(("mms keyframes()", -1, len(kept), time.perf_counter() - start))
        for method, cands, n_kept, wall in rows:
            approx = ""
            if method == "cv2 seek" and long:  # scale the probed candidates to the whole plan
                wall *= math.ceil(info.duration / step) / cands
                approx, n_kept = "~", -1
            shown = "-" if cands < 0 else str(cands)
            kept_shown = "-" if n_kept < 0 else str(n_kept)
            print(
                f"{path.name:24} {method:20} {shown:>6} {kept_shown:>6} "
                f"{approx + f'{wall:.2f}':>8} {info.duration / wall:>10.0f}"
            )
        if path in (long_path, phone_path):
            times = np.array([k.t for k in kept])
            hit = sum(bool(np.any(np.abs(times - c) <= 1.0)) for c in cuts)
            print(f"  cut recall of mms keyframes() (within 1 s): {hit}/{len(cuts)}")


if __name__ == "__main__":
    main()

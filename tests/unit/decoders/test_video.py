"""Video probing and scene-change keyframes, on the sample videos and on videos made here."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from mmsearch_cli.decoders.video import Keyframe, keyframes, probe
from mmsearch_cli.errors import MediaError
from tests.conftest import ROOT

VIDEOS = ROOT / "sample_data" / "video"
EARTH, BUNNY = VIDEOS / "earth.mp4", VIDEOS / "bigbuckbunny.mp4"
TRUNCATED = ROOT / "sample_data" / "broken" / "truncated.mp4"
SAMPLE_EVERY = 0.5  # the default candidate stride of keyframes()

# BGR for cv2.VideoWriter; each scene's keyframe must show its colour.
SCENES_BGR = [(0, 0, 255), (0, 255, 0), (255, 0, 0)]


def write_cv2_video(
    path: Path, scenes: Sequence[tuple[tuple[int, int, int], float]], fps: int, size=(160, 120)
) -> Path:
    """Solid-colour scenes (BGR colour, seconds) with OpenCV's 'mp4v' encoder."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, size)
    assert writer.isOpened()
    for colour, seconds in scenes:
        frame = np.full((size[1], size[0], 3), colour, np.uint8)
        for _ in range(round(seconds * fps)):
            writer.write(frame)
    writer.release()
    return path


def write_av_video(path: Path, frames: Sequence[np.ndarray], fps: int, **stream_setup) -> Path:
    """RGB frames through PyAV's libx264 (B-frames on, as x264 defaults)."""
    height, width = frames[0].shape[:2]
    # faststart: the MP4 index goes first, as in files that stream (and survive truncation)
    options = {"movflags": "faststart"} if path.suffix == ".mp4" else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if "gop" in stream_setup:
            stream.codec_context.gop_size = stream_setup["gop"]
            stream.options = {"x264-params": "scenecut=0"}  # I-frames only every `gop`
        if "rotation" in stream_setup:
            stream.set_display_rotation(stream_setup["rotation"])
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def assert_well_formed(kept: list[Keyframe], duration: float, min_gap: float) -> None:
    times = [k.t for k in kept]
    assert times, "no keyframes"
    assert times[0] < 0.1, "the first frame is always kept"
    assert all(b - a >= min_gap - 1e-6 for a, b in itertools.pairwise(times))
    assert all(0.0 <= t <= duration for t in times)
    for k in kept:
        assert k.image.mode == "RGB"
        assert max(k.image.size) <= 640


@pytest.mark.parametrize("path", [EARTH, BUNNY], ids=lambda p: p.name)
def test_probe_agrees_with_opencv(path: Path) -> None:
    info = probe(path)
    cap = cv2.VideoCapture(str(path))
    assert info.width == cap.get(cv2.CAP_PROP_FRAME_WIDTH)
    assert info.height == cap.get(cv2.CAP_PROP_FRAME_HEIGHT)
    assert info.fps == pytest.approx(cap.get(cv2.CAP_PROP_FPS), rel=1e-3)
    assert info.frame_count == cap.get(cv2.CAP_PROP_FRAME_COUNT)
    assert info.duration == pytest.approx(info.frame_count / info.fps, abs=0.1)
    assert info.has_audio  # both carry an AAC track (earth's is silent)


@pytest.mark.parametrize("path", [EARTH, BUNNY], ids=lambda p: p.name)
@pytest.mark.parametrize("max_interval", [2.0, 30.0])
def test_sample_videos_respect_the_intervals(path: Path, max_interval: float) -> None:
    info = probe(path)
    kept = list(keyframes(path, min_interval=1.0, max_interval=max_interval))
    assert_well_formed(kept, info.duration, min_gap=1.0)
    times = [k.t for k in kept] + [info.duration]
    # A frame at least every max_interval, give or take one candidate stride.
    assert max(b - a for a, b in itertools.pairwise(times)) <= (max_interval + SAMPLE_EVERY + 0.05)
    assert math.floor(info.duration / (max_interval + SAMPLE_EVERY)) <= len(kept)
    assert len(kept) <= info.duration / 1.0 + 1
    # Downscaled to 640 px on the long side, aspect kept (the bunny is 1280x720).
    width, height = kept[0].image.size
    assert max(width, height) == min(640, max(info.width, info.height))
    assert width / height == pytest.approx(info.width / info.height, rel=0.02)


def test_first_keyframe_is_the_first_frame() -> None:
    first = next(keyframes(BUNNY)).image
    cap = cv2.VideoCapture(str(BUNNY))
    ok, bgr = cap.read()
    assert ok
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    reference = cv2.resize(rgb, first.size, interpolation=cv2.INTER_AREA)
    assert np.abs(np.asarray(first, np.int16) - reference).mean() < 4


def test_keyframe_at_each_cut(tmp_path: Path) -> None:
    path = write_cv2_video(tmp_path / "cuts.mp4", [(c, 3.0) for c in SCENES_BGR], fps=25)
    kept = list(keyframes(path))
    assert_well_formed(kept, 9.0, min_gap=1.0)
    assert len(kept) <= 4
    for cut, (b, g, r) in zip([0.0, 3.0, 6.0], SCENES_BGR, strict=True):
        near = [k for k in kept if cut - 1 / 25 <= k.t <= cut + SAMPLE_EVERY + 1 / 25]
        assert near, f"no keyframe within one sample of the cut at {cut} s"
        pixel = np.asarray(near[0].image)[10, 10].astype(int)
        assert np.abs(pixel - (r, g, b)).max() < 30, "frame and time disagree"


def test_fast_cuts_are_held_to_min_interval(tmp_path: Path) -> None:
    scenes = [(SCENES_BGR[i % 3], 0.4) for i in range(25)]  # a cut every 0.4 s for 10 s
    path = write_cv2_video(tmp_path / "fast.mp4", scenes, fps=25)
    kept = list(keyframes(path, min_interval=2.0))
    assert_well_formed(kept, 10.0, min_gap=2.0)
    assert 4 <= len(kept) <= 6  # several, but no more than one per 2 s


def test_static_video_gets_a_frame_per_max_interval(tmp_path: Path) -> None:
    path = write_cv2_video(
        tmp_path / "static.mp4", [((40, 120, 200), 120.0)], fps=10, size=(64, 48)
    )
    kept = list(keyframes(path, max_interval=30.0))
    assert_well_formed(kept, 120.0, min_gap=1.0)
    assert len(kept) in (4, 5)  # 0, 30, 60, 90 (and 120 if the last frame reaches it)
    assert [round(k.t) for k in kept[:4]] == [0, 30, 60, 90]


def test_max_seconds_and_max_frames(tmp_path: Path) -> None:
    assert all(k.t <= 10.0 for k in keyframes(EARTH, max_interval=2.0, max_seconds=10.0))
    # threshold 0 makes every candidate a change; the cap must spread, not truncate.
    kept = list(keyframes(EARTH, threshold=0.0, max_frames=5))
    assert 4 <= len(kept) <= 5  # spread D/5 apart, so the candidate grid may drop one
    assert kept[-1].t >= 0.7 * probe(EARTH).duration


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".ts"])
def test_seeking_keeps_frames_and_times_aligned(tmp_path: Path, suffix: str) -> None:
    # 30 s at 10 fps, a new colour every second, an I-frame only every 5 s: sparse
    # candidates make keyframes() seek, and each image must show its second's colour.
    # MP4 seeks by its index, MKV by a packet scan, MPEG-TS overshoots and is replayed.
    colours = [
        cv2.cvtColor(np.array([[[h * 6, 255, 255]]], np.uint8), cv2.COLOR_HSV2RGB)[0, 0]
        for h in range(30)
    ]
    frames = [np.full((48, 64, 3), colours[i // 10], np.uint8) for i in range(300)]
    path = write_av_video(tmp_path / f"gop{suffix}", frames, fps=10, gop=50)
    kept = list(keyframes(path, threshold=0.0, max_frames=8, min_interval=0.1))
    assert 7 <= len(kept) <= 8
    assert kept[0].t < 0.1
    assert kept[-1].t > 20
    for k in kept:
        pixel = np.asarray(k.image)[24, 32].astype(int)
        assert np.abs(pixel - colours[int(k.t + 1e-6)]).max() < 25, f"wrong frame at {k.t}"


def test_rotation_metadata_is_applied_like_opencv(tmp_path: Path) -> None:
    rgb = np.zeros((48, 64, 3), np.uint8)
    rgb[:12, :12] = (255, 0, 0)  # a red marker in the stored top-left corner
    path = write_av_video(tmp_path / "portrait.mp4", [rgb] * 10, fps=10, rotation=90)
    info = probe(path)
    assert (info.width, info.height) == (48, 64)
    image = np.asarray(next(keyframes(path)).image)
    ok, bgr = cv2.VideoCapture(str(path)).read()  # OpenCV applies the display matrix
    assert ok
    assert image.shape == bgr.shape
    assert np.abs(image.astype(int) - bgr[..., ::-1].astype(int)).mean() < 8


def test_truncated_video_raises_media_error() -> None:
    with pytest.raises(MediaError) as err:
        probe(TRUNCATED)
    assert "\n" not in str(err.value)
    with pytest.raises(MediaError):
        list(keyframes(TRUNCATED))


@pytest.mark.parametrize(
    "path",
    [
        ROOT / "sample_data" / "audio" / "animals" / "cat.mp3",
        ROOT / "sample_data" / "broken" / "text_not_image.png",
        ROOT / "sample_data" / "text" / "earth_at_night.md",
        ROOT / "sample_data" / "missing.mp4",
    ],
    ids=lambda p: p.name,
)
def test_not_a_video_raises_media_error(path: Path) -> None:
    with pytest.raises(MediaError):
        list(keyframes(path))


def test_damaged_stream_keeps_what_decodes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(100)]
    # faststart puts the index first, so the file still opens after losing its end
    data = bytearray(write_av_video(tmp_path / "whole.mp4", frames, fps=10).read_bytes())
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(bytes(data[: len(data) // 2]))
    times = [k.t for k in keyframes(cut, max_interval=1.0)]
    assert times[0] < 0.1 and 2 <= len(times) < 10
    garbled = tmp_path / "garbled.mp4"  # the middle third overwritten with noise
    middle = slice(len(data) // 3, 2 * len(data) // 3)
    data[middle] = rng.integers(0, 255, middle.stop - middle.start, dtype=np.uint8).tobytes()
    garbled.write_bytes(bytes(data))
    times = [k.t for k in keyframes(garbled, max_interval=1.0)]
    assert times[0] < 0.1 and len(times) >= 3

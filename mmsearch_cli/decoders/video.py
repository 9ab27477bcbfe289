"""Video files: header probe and scene-change keyframes.

Frames come from PyAV, not ``cv2.VideoCapture`` (measured in ``benchmarks/bench_video.py``,
one thread): decoding every frame costs the same in both, but OpenCV re-decodes the
previous GOP on every seek (45 ms a candidate on 360p, 200 ms on 720p) while PyAV lands
on the keyframe asked for, reads the container's keyframe index for free and gives real
timestamps. OpenCV only computes the colour histograms.

Candidates come every ``sample_every`` seconds, each moved up to 1 s onto an I-frame
when one is near (it decodes alone, and encoders put them at cuts); between candidates
the decoder runs on or seeks, whichever decodes fewer frames, and skips B-frames nothing
references. On 10 minutes of 360p H.264 that is 1.1 s with an I-frame every second (as
phones write) and 3 s with x264's defaults, against 4-7 s for OpenCV's grab/retrieve.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mmsearch_cli.config import Limits
from mmsearch_cli.errors import CodecUnavailableError, MediaError

if TYPE_CHECKING:
    from PIL import Image

_LIMITS = Limits()
DEFAULT_THRESHOLD = 0.35  # Bhattacharyya distance of HSV histograms (0 same, 1 disjoint)
MAX_SIDE = 640  # returned frames; the image models want 224 px
_SIG_SIZE = (64, 36)  # frame size the histogram is taken on
_HIST_BINS = [16, 4, 4]  # hue matters most; saturation and value coarser
_SAMPLES_PER_KEYFRAME = 4  # candidate budget: at most this many per allowed keyframe
_SNAP_SECONDS = 1.0  # a candidate may move this far to land on an I-frame (decodes alone)
_SEEK_COST_FRAMES = 16  # a seek costs about as much as decoding this many frames
_MAX_BAD_PACKETS = 1000  # give up on a stream that is mostly undecodable


@dataclass(frozen=True)
class VideoInfo:
    duration: float  # seconds; 0.0 if the container does not say
    fps: float
    width: int  # as displayed, i.e. after the rotation metadata
    height: int
    frame_count: int  # from the header, or estimated as duration * fps
    has_audio: bool  # an audio stream exists (it may still be silent)


@dataclass(frozen=True)
class Keyframe:
    t: float  # seconds from the start of the video stream
    image: Image.Image  # RGB, at most MAX_SIDE px on the long side


def probe(path: str | Path) -> VideoInfo:
    """Read the container header. Raises ``MediaError`` if it is not a readable video."""
    container, stream = _open(Path(path))
    try:
        return _info(container, stream, _first_frame_rotation(container, stream))
    finally:
        container.close()


def keyframes(
    path: str | Path,
    *,
    min_interval: float = _LIMITS.video_min_interval,
    max_interval: float = _LIMITS.video_max_interval,
    max_frames: int = _LIMITS.video_max_keyframes,
    threshold: float = DEFAULT_THRESHOLD,
    sample_every: float = 0.5,
    max_seconds: float = _LIMITS.max_file_seconds,
    threads: int = 1,
) -> Iterator[Keyframe]:
    """Yield the first frame, then a frame at each scene change and at least every
    ``max_interval`` seconds, never two within ``min_interval``, at most ``max_frames``,
    covering the first ``max_seconds`` of the video.

    A candidate becomes a keyframe when its histogram differs from the last keyframe's
    by more than ``threshold``, so slow drifts count as well as cuts. For long videos
    both ``min_interval`` and the candidate stride grow so that ``max_frames`` spread
    over the whole video and the cost stays bounded. Raises ``MediaError`` (on first
    iteration) for a file that cannot be opened or has no decodable frame.
    """
    import av
    from av.video.reformatter import VideoReformatter

    source = Path(path)
    container, stream = _open(source)
    sampler = _Sampler(source, container, stream, threads)  # owns the container from here
    try:
        info = _info(container, stream)
        index = sampler.index = _keyframe_index(source, stream, max_seconds)
        length = min(info.duration or (index.end if index else max_seconds), max_seconds)
        gap_min = max(min_interval, length / max_frames)
        gap_max = max(max_interval, gap_min)
        step = max(sample_every, length / (_SAMPLES_PER_KEYFRAME * max_frames))
        select = _Selector(gap_min, gap_max, threshold)
        thumbs, outputs = VideoReformatter(), VideoReformatter()  # one cached scaler each
        try:
            for t, frame in sampler.samples(step, length, select.deadline):
                if select.keep(t, _signature(_small_rgb(frame, thumbs))):
                    yield Keyframe(t=t, image=_to_image(frame, outputs))
                    if select.kept >= max_frames:
                        return
        except av.error.FFmpegError as exc:  # e.g. a frame format swscale cannot convert
            if not select.kept:
                raise MediaError(f"{source.name}: cannot decode video: {exc}") from exc
        if not select.kept:
            raise MediaError(f"{source.name}: no decodable video frame")
    finally:
        sampler.close()


# --- opening and probing ----------------------------------------------------------------


def _open(path: Path) -> tuple[Any, Any]:
    import av

    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise MediaError(f"cannot open video: {reason}") from exc
    # Cover art in audio files shows up as a one-frame video stream; it is not a video.
    streams = [s for s in container.streams.video if not _is_cover_art(s)]
    if not streams:
        container.close()
        raise MediaError("no video stream")
    if streams[0].codec_context is None:  # PyAV found no decoder for it in this FFmpeg
        container.close()
        raise CodecUnavailableError(
            f"this machine's FFmpeg has no decoder for its codec ({streams[0].codec_tag or '?'})"
        )
    if streams[0].codec_context.width <= 0 or streams[0].codec_context.height <= 0:
        container.close()
        raise MediaError("video stream has no picture size")
    return container, streams[0]


def _is_cover_art(stream: Any) -> bool:
    import av

    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def _info(container: Any, stream: Any, rotation: int = 0) -> VideoInfo:
    fps = float(stream.average_rate or stream.guessed_rate or 0.0)
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / 1_000_000  # AV_TIME_BASE
    else:
        duration = 0.0
    width, height = stream.codec_context.width, stream.codec_context.height
    if rotation % 180 == 90:
        width, height = height, width
    return VideoInfo(
        duration=duration,
        fps=fps,
        width=width,
        height=height,
        frame_count=int(stream.frames or round(duration * fps)),
        has_audio=bool(container.streams.audio),
    )


def _first_frame_rotation(container: Any, stream: Any) -> int:
    """Display rotation in degrees counterclockwise; PyAV exposes it per frame only."""
    import av

    try:
        frame = next(container.decode(stream), None)
    except av.error.FFmpegError:
        return 0
    return int(getattr(frame, "rotation", 0) or 0) % 360


# --- selection and sampling -----------------------------------------------------------


class _Selector:
    """Keeps a candidate if it is the first, if ``gap_max`` has passed, or if it differs
    from the last kept one by more than ``threshold`` and ``gap_min`` has passed."""

    def __init__(self, gap_min: float, gap_max: float, threshold: float) -> None:
        self.gap_min, self.gap_max, self.threshold = gap_min - 1e-6, gap_max - 1e-6, threshold
        self.last_t, self.last_sig, self.kept = -math.inf, np.empty(0, np.float32), 0

    def deadline(self) -> float:
        return self.last_t + self.gap_max

    def keep(self, t: float, sig: np.ndarray) -> bool:
        since = t - self.last_t
        if not (
            self.kept == 0
            or since >= self.gap_max
            or (since >= self.gap_min and _distance(sig, self.last_sig) > self.threshold)
        ):
            return False
        self.last_t, self.last_sig, self.kept = t, sig, self.kept + 1
        return True


@dataclass(frozen=True)
class _Index:
    """Keyframe positions of the video stream, read from packet flags without decoding."""

    times: list[float]  # seconds from the stream start, ascending
    pts: list[int]
    end: float  # time of the last packet seen

    def before(self, t: float) -> int:
        """Position of the last keyframe at or before ``t`` (-1 if none)."""
        return bisect.bisect_right(self.times, t + 1e-6) - 1

    def near(self, t: float, low: float, high: float) -> float | None:
        """The keyframe time in (low, high] closest to ``t``, if any."""
        lo, hi = bisect.bisect_right(self.times, low), bisect.bisect_right(self.times, high)
        return min(self.times[lo:hi], key=lambda k: abs(k - t), default=None)


def _keyframe_index(path: Path, stream: Any, until: float) -> _Index | None:
    """None when the stream lacks timestamps; then the sampler only decodes forward."""
    start = stream.start_time or 0
    if stream.time_base is None:
        return None
    # MP4/MOV/MKV carry an index: free to read, but MP4 lists decode timestamps while
    # seeking goes by presentation ones; the first keyframe packet gives the offset.
    # Other containers get one pass over the packets, without decoding.
    entries = getattr(stream, "index_entries", ())  # absent from older PyAV
    if len(entries) > 1:
        shift = _pts_minus_dts(path, stream.index)
        marks: Iterable[tuple[int | None, bool]] = (
            (e.timestamp + shift, e.is_keyframe) for e in entries if not e.is_discard
        )
    else:
        marks = _demux_marks(path, stream.index)
    times: list[float] = []
    pts: list[int] = []
    end = 0.0
    for ts, is_key in marks:
        if ts is None:
            return None
        t = max(0.0, float((ts - start) * stream.time_base))
        if t > until:
            break
        end = max(end, t)
        if is_key and (not times or t > times[-1]):
            times.append(t)
            pts.append(ts)
    return _Index(times, pts, end) if times else None


def _pts_minus_dts(path: Path, stream_index: int) -> int:
    import av

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            for packet in container.demux(container.streams[stream_index]):
                if packet.pts is not None and packet.dts is not None:
                    return int(packet.pts - packet.dts)
    except av.error.FFmpegError:
        pass
    return 0


def _demux_marks(path: Path, stream_index: int) -> Iterator[tuple[int | None, bool]]:
    import av

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            for packet in container.demux(container.streams[stream_index]):
                if packet.size:  # skip the empty flush packet at the end
                    yield packet.pts, packet.is_keyframe
    except av.error.FFmpegError:
        return  # a damaged tail: index what could be read


class _Sampler:
    """Decodes the frames nearest a series of target times, seeking when it saves work.

    Owns the container it is given (``close`` it). A seek that lands past the keyframe
    asked for (MPEG-TS seeks by bytes and overshoots a GOP) turns seeking off and
    replays from the start, so no candidate is lost.
    """

    def __init__(self, path: Path, container: Any, stream: Any, threads: int) -> None:
        self.path, self.threads = path, threads
        self.index: _Index | None = None  # set it to snap candidates and to seek
        self._attach(container, stream)
        self.start = stream.start_time or 0
        self.fps = float(stream.average_rate or stream.guessed_rate or 25.0)
        self.pos = -math.inf  # time of the last decoded frame
        self.count = 0  # frames decoded, for streams without timestamps
        self.landing: float | None = None  # where the last seek should have landed
        self.resume = -math.inf  # self.pos before that seek

    def _attach(self, container: Any, stream: Any) -> None:
        self.container, self.stream = container, stream
        stream.codec_context.thread_count = max(1, self.threads)
        stream.thread_type = "AUTO"
        # Candidates are >= 0.5 s apart, so B-frames nothing references need not be
        # decoded: half of x264's frames, 2.4x faster; a candidate moves a frame or two.
        stream.codec_context.skip_frame = "NONREF"
        self.frames = self._decode()

    def close(self) -> None:
        self.container.close()

    def samples(
        self, step: float, length: float, deadline: Callable[[], float]
    ) -> Iterator[tuple[float, Any]]:
        """Candidates about every ``step`` seconds; ``deadline()`` is when the selector
        must next keep a frame, whatever it shows."""
        last = -math.inf
        half_frame = 0.5 / self.fps
        for k in range(math.ceil(length / step) + 1):
            target = k * step
            if target >= length and k > 0:
                break
            if target <= last + step / 2:
                continue  # a candidate snapped forward already covers this one
            if self.index is not None:
                low, high = max(target - _SNAP_SECONDS, last + step / 2), target + _SNAP_SECONDS
                # Snapping must not move a candidate across the max_interval deadline.
                if target < (due := deadline()):
                    high = min(high, due)
                else:  # overdue: only back, and not before the deadline
                    low, high = max(low, due - 1e-6), target
                snapped = self.index.near(target, low, high)
                target = snapped if snapped is not None else target
                self._maybe_seek(target)
            for t, frame in self._frames_from():
                if t >= target - half_frame:
                    if t > length:
                        return
                    last = t
                    yield t, frame
                    break
            else:
                return  # end of stream

    def _maybe_seek(self, target: float) -> None:
        assert self.index is not None
        i = self.index.before(target)
        if i < 0 or (self.index.times[i] - max(self.pos, 0.0)) * self.fps <= _SEEK_COST_FRAMES:
            return
        import av

        try:
            self.container.seek(self.index.pts[i], stream=self.stream, backward=True)
        except av.error.FFmpegError:
            return  # keep decoding forward; slower but correct
        self.frames = self._decode()
        self.landing, self.resume = self.index.times[i], self.pos
        self.pos = self.index.times[i] - 1.0 / self.fps

    def _replay(self) -> None:
        """Seeking is unreliable here: decode forward from a fresh start instead."""
        self.index, self.pos = None, self.resume
        self.container.close()
        container, stream = _open(self.path)
        self._attach(container, stream)

    def _frames_from(self) -> Iterator[tuple[float, Any]]:
        while (frame := next(self.frames, None)) is not None:
            self.count += 1
            if frame.pts is not None and self.stream.time_base is not None:
                t = float((frame.pts - self.start) * self.stream.time_base)
            else:
                t = (self.count - 1) / self.fps
            if self.landing is not None:
                landing, self.landing = self.landing, None
                if t > landing + 1.5 / self.fps:
                    self._replay()
                    continue
            if t < self.pos:
                continue  # before the target of a seek, or a repeated timestamp
            self.pos = t
            yield t, frame

    def _decode(self) -> Iterator[Any]:
        """Decoded frames from the current position; a damaged packet is skipped (the
        decoder resynchronises at the next keyframe), a damaged container ends the stream."""
        import av

        packets = self.container.demux(self.stream)
        bad = 0
        while True:
            try:
                packet = next(packets)
            except (StopIteration, av.error.FFmpegError):
                return
            try:
                decoded = packet.decode()
            except av.error.FFmpegError:
                bad += 1
                if bad > _MAX_BAD_PACKETS:
                    return
                continue
            yield from decoded


# --- frame features ---------------------------------------------------------------------


def _small_rgb(frame: Any, reformatter: Any) -> np.ndarray:
    """A thumbnail for the histogram: 0.1 ms with a reused reformatter (whose scaler
    context is cached), 0.5-7 ms with ``frame.reformat``, which builds one per call."""
    return reformatter.reformat(
        frame, width=_SIG_SIZE[0], height=_SIG_SIZE[1], format="rgb24", interpolation="AREA"
    ).to_ndarray()


def _signature(rgb: np.ndarray) -> np.ndarray:
    """Normalised HSV histogram of a small RGB frame."""
    import cv2

    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, _HIST_BINS, [0, 180, 0, 256, 0, 256])
    return cv2.normalize(hist, hist).flatten()


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    import cv2

    return float(cv2.compareHist(a, b, cv2.HISTCMP_BHATTACHARYYA))


def _to_image(frame: Any, reformatter: Any) -> Image.Image:
    from PIL import Image

    scale = min(1.0, MAX_SIDE / max(frame.width, frame.height))
    width, height = max(2, round(frame.width * scale)), max(2, round(frame.height * scale))
    image = reformatter.reformat(
        frame, width=width, height=height, format="rgb24", interpolation="AREA"
    ).to_image()
    rotation = int(getattr(frame, "rotation", 0) or 0) % 360
    if rotation:  # the display matrix says how far to turn it counterclockwise
        turn = {
            90: Image.Transpose.ROTATE_90,
            180: Image.Transpose.ROTATE_180,
            270: Image.Transpose.ROTATE_270,
        }.get(rotation)
        image = image.transpose(turn) if turn is not None else image
    return image

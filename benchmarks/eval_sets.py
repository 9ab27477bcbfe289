"""Evaluation sets that keep quality numbers honest once a lexical space reads file paths.

The shared corpus and ``sample_data/`` name files and folders by their labels
(``images/tools/hammer8.webp``): a space that reads path words would find the answers in
the names, and the numbers would measure the naming, not the search. Three sets:

* ``opaque``: a corpus copied into one flat folder under names that carry no label
  (``m0042.webp``), with its queries rewritten. Measures content only.
* ``spoken``: 130+ short English sentences spoken by ``espeak-ng``, each queried by its own
  words. The sentences share most words on purpose, so exact words (names, numbers,
  codes) decide: the lexical space's signal on transcripts.
* ``paths``: photos and notes filed as a person files them (``2019-07 Iceland/DSC_0042.jpg``)
  whose queries only the path words answer: the lexical space's path signal, shown apart.

    python benchmarks/eval_sets.py opaque --corpus ../shared/corpus \
        --out .cache/datasets/corpus-opaque
    python benchmarks/eval_sets.py spoken --out .cache/datasets/spoken-phrases
    python benchmarks/eval_sets.py paths --out .cache/datasets/path-library

Each writes its files and a ``queries.jsonl`` in the ``mms eval`` format into ``--out``, is
deterministic, and skips work already done. Only the standard library is imported at the
top, so tests and other benchmarks can import this file cheaply (``benchmarks/quality.py``
and the CI quality gate use ``opaque_copy``).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data"
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
DATASETS = ROOT / ".cache" / "datasets"

QUERY_MEDIA = ("image", "audio", "video")
QUERY_FIELDS = ("text", *QUERY_MEDIA)

# --------------------------------------------------------------------------------------
# 1. Opaque copy
# --------------------------------------------------------------------------------------

# Fixed key: the order must be stable across runs and machines, yet not follow the labels.
OPAQUE_KEY = b"mms-opaque-names-v1"
MAPPING = "MAPPING.tsv"


def _extensions() -> frozenset[str]:
    # Lazy: importing mmsearch_cli here keeps this module importable without the package.
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from mmsearch_cli.items import EXTENSIONS

    return frozenset(EXTENSIONS)


def _corpus_files(src: Path) -> list[str]:
    """Relative POSIX paths of the files ``mms index src`` would read, plus everything in a
    top-level ``broken/`` (damaged on purpose: the copy must fail the same way)."""
    exts = _extensions()
    out: list[str] = []
    for folder, dirs, files in os.walk(src):
        # mms skips hidden entries by default; a flat copy would unhide them.
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        rel_dir = Path(folder).relative_to(src)
        for name in sorted(files):
            if name.startswith("."):
                continue
            rel = (rel_dir / name).as_posix()
            if Path(name).suffix.lower() in exts or rel.startswith("broken/"):
                out.append(rel)
    return out


def _opaque_names(rels: Sequence[str], key: bytes) -> dict[str, str]:
    """Relative path -> ``m####<ext>``, numbered in keyed-hash order of the path."""

    def digest(rel: str) -> str:
        # fsencode: the corpus has a file name that is not valid UTF-8.
        return hmac.new(key, os.fsencode(rel), hashlib.sha256).hexdigest()

    width = max(4, len(str(len(rels))))
    ordered = sorted(rels, key=digest)
    # The extension stays: mms picks the decoder by it.
    return {rel: f"m{n:0{width}d}{Path(rel).suffix}" for n, rel in enumerate(ordered, start=1)}


def _read_mapping(path: Path) -> dict[str, str]:
    """``MAPPING.tsv`` as new name -> original relative path (empty if absent)."""
    if not path.is_file():
        return {}
    mapping: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8", errors="surrogateescape").splitlines():
        if line and not line.startswith("#"):
            new, _, old = line.partition("\t")
            mapping[new] = old
    return mapping


def _write_if_changed(path: Path, text: str) -> None:
    # Unchanged files keep their mtime, so a re-run does not make mms re-read anything.
    data = text.encode("utf-8", errors="surrogateescape")
    if path.is_file() and path.read_bytes() == data:
        return
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _normalise(base: Path, value: str, src: Path) -> str | None:
    """``value`` (relative to ``base``) as a POSIX path relative to ``src``, or None."""
    full = os.path.normpath(os.path.join(os.path.abspath(base), value))
    rel = os.path.relpath(full, os.path.abspath(src))
    if rel == os.curdir or rel.startswith(os.pardir):
        return None
    return Path(rel).as_posix()


def _rewrite_queries(queries: Path, src: Path, names: dict[str, str]) -> list[dict[str, Any]]:
    """The queries with every path renamed; ValueError naming each bad line."""
    base = queries.parent
    out: list[dict[str, Any]] = []
    problems: list[str] = []
    lines = queries.read_text(encoding="utf-8").splitlines()
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{queries}:{n}"
        try:
            query = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where}: not valid JSON ({exc.msg})") from None
        if not isinstance(query, dict) or not isinstance(query.get("relevant"), dict):
            raise ValueError(f"{where}: expected an object with a 'relevant' mapping")
        if sum(f in query for f in QUERY_FIELDS) != 1:
            raise ValueError(f"{where}: needs exactly one of {', '.join(QUERY_FIELDS)}")

        def renamed(value: str, what: str, where: str = where) -> str:
            rel = _normalise(base, value, src)
            if rel is None or not (src / rel).is_file():
                problems.append(f"{where}: {what} {value!r} does not exist under {src}")
            elif rel not in names:
                problems.append(f"{where}: {what} {value!r} is not a file mms indexes")
            else:
                return names[rel]
            return value

        for field in QUERY_MEDIA:
            if field in query:
                query[field] = renamed(query[field], f"{field} query file")
        relevant: dict[str, int] = {}
        for path, grade in query["relevant"].items():
            new = renamed(path, "relevant path")
            # Two spellings of one file ("a/b", "./a/b") merge under the higher grade.
            relevant[new] = max(grade, relevant.get(new, grade))
        query["relevant"] = relevant
        out.append(query)
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise ValueError(f"{len(problems)} query path(s) cannot be copied:\n  {shown}{more}")
    return out


def opaque_copy(src: Path, queries: Path, dest: Path, *, key: bytes = OPAQUE_KEY) -> Path:
    """Copy every file of ``src`` that mms indexes (and all of ``broken/``, damaged as it is)
    into the flat folder ``dest`` under opaque names, ``m0001.webp`` ..., numbered in the
    order of a keyed hash of the relative path: deterministic, and neither the names nor
    their order follow the labels. Extensions and bytes are kept unchanged.

    A text's own words may still name its subject: that is content, not path, and is what
    a search should read.

    Writes ``dest/queries.jsonl`` (same ids, grades and other fields; every relevant and
    query-media path renamed) and ``dest/MAPPING.tsv`` (new name, tab, original relative
    path) for debugging. Copies nothing if ``dest`` already holds the same mapping. Raises
    ValueError if a query names a file that does not exist under ``src`` (or that mms does
    not index) and if ``dest`` is a non-empty folder this function did not write. Returns
    the new queries file."""
    src, dest = Path(src), Path(dest)
    if not src.is_dir():
        raise ValueError(f"corpus folder not found: {src}")
    if not queries.is_file():
        raise ValueError(f"query file not found: {queries}")
    names = _opaque_names(_corpus_files(src), key)
    rewritten = _rewrite_queries(queries, src, names)  # validate before touching dest

    wanted = {new: old for old, new in names.items()}
    mapping_file = dest / MAPPING
    previous = _read_mapping(mapping_file)
    if dest.is_dir() and not previous and any(dest.iterdir()):
        raise ValueError(f"{dest} is not empty and has no {MAPPING}: refusing to write into it")
    dest.mkdir(parents=True, exist_ok=True)

    same = previous == wanted and all(
        (dest / new).is_file() and (dest / new).stat().st_size == (src / old).stat().st_size
        for new, old in wanted.items()
    )
    if not same:
        # Files of an older mapping would otherwise be indexed beside the new ones.
        for stale in previous.keys() - wanted.keys():
            (dest / stale).unlink(missing_ok=True)
        mapping_file.unlink(missing_ok=True)  # written last: a half copy is redone
        for new, old in sorted(wanted.items()):
            target = dest / new
            if (
                previous.get(new) == old
                and target.is_file()
                and target.stat().st_size == (src / old).stat().st_size
            ):
                continue
            tmp = dest / f".{new}.part"  # hidden: mms would skip it if left behind
            shutil.copy2(src / old, tmp)
            os.replace(tmp, target)
        text = "".join(f"{new}\t{old}\n" for new, old in sorted(wanted.items()))
        _write_if_changed(mapping_file, text)

    target = dest / "queries.jsonl"
    _write_if_changed(target, "".join(json.dumps(q, ensure_ascii=False) + "\n" for q in rewritten))
    return target


# --------------------------------------------------------------------------------------
# 2. Spoken sentences
# --------------------------------------------------------------------------------------

# Written for this project. Groups share most of their words so that a sentence embedding
# blurs them and the exact words (names, numbers, codes, on/off) decide.
SENTENCES: tuple[str, ...] = (
    # lights, taps, doors, heating
    "turn the kitchen light off",
    "turn the kitchen light on",
    "turn the garden light off",
    "turn the garden light on",
    "dim the bedroom light to half",
    "the bedroom light keeps flickering",
    "the kitchen tap is dripping again",
    "the garden tap froze last night",
    "the bathroom tap needs a new washer",
    "the bathroom fan is very loud",
    "open the garage door please",
    "close the garage door at ten",
    "the garage door remote needs a battery",
    "set the heating to twenty one degrees",
    "set the heating to eighteen at night",
    "the heating stays off until October",
    # devices and error codes
    "error code 404 on the router",
    "error code 500 on the web server",
    "error code E13 on the dishwasher",
    "error code E31 on the washing machine",
    "the router password is tiger seven",
    "restart the router after midnight",
    "the printer says paper jam in tray two",
    "the printer is out of black ink",
    "the laptop will not connect to the wifi",
    "the wifi name is Maple House",
    "the backup drive is almost full",
    "the backup ran at three this morning",
    "update the phone before the trip",
    "the phone charger is in the car",
    # people, calls, times
    "call Anna at nine",
    "call Anna after lunch",
    "call Tom at nine",
    "call Tom about the car",
    "call Grandma on Sunday evening",
    "text Priya the new address",
    "text Marco when the train arrives",
    "email Doctor Okafor the blood results",
    "Anna lands at gate fourteen",
    "Tom lands at gate forty",
    "meet Sofia outside the cinema at seven",
    "meet Sofia at the station at eight",
    "Jamal is picking up the kids today",
    "Jamal owes us twenty pounds",
    "lunch with Helen on Thursday",
    "dinner with Helen and Raj on Friday",
    # travel
    "the train to Glasgow leaves at six",
    "the train to Bristol leaves at ten past six",
    "the flight to Lisbon is delayed",
    "the flight to Berlin is cancelled",
    "our flight number is BA 2490",
    "the booking reference is QX7 PL2",
    "the hotel in Porto has free parking",
    "the hotel breakfast starts at seven",
    "the taxi to the airport is booked for five",
    "the ferry to Skye leaves at noon",
    "my passport expires in March next year",
    "renew the car insurance before July",
    # shopping and cooking
    "buy milk eggs and bread",
    "buy oat milk and bananas",
    "we are out of coffee filters",
    "we are out of dishwasher tablets",
    "the recipe needs two hundred grams of flour",
    "the recipe needs three eggs and sugar",
    "bake the bread for forty minutes",
    "bake the cake at one eighty degrees",
    "the soup needs more salt",
    "the curry is too spicy for Leo",
    "order pizza for six people",
    "order flowers for Mum's birthday",
    # health
    "the dentist appointment is on Tuesday at ten",
    "the doctor appointment moved to Wednesday",
    "take one tablet twice a day",
    "take two tablets with food",
    "Leo has a cough and a fever",
    "Emma needs her flu jab in November",
    "the pharmacy shuts at half past five",
    "refill the inhaler prescription this week",
    # work
    "the meeting with Priya moved to Thursday",
    "the meeting with Marco is cancelled",
    "send the quarterly report to finance",
    "send the invoice to Acme by Friday",
    "invoice 3318 is still unpaid",
    "invoice 3381 was paid yesterday",
    "the project deadline is the fifteenth of May",
    "the project budget is forty thousand",
    "the client wants the slides by noon",
    "ticket 7102 is waiting for review",
    "deploy version two point four tonight",
    "roll back to version two point three",
    # family and school
    "pick up Emma from school at three",
    "pick up Leo from football at five",
    "Emma's school trip is on Monday",
    "Leo's football match is on Saturday",
    "the parents evening is at six thirty",
    "sign the permission slip for the zoo trip",
    "Emma lost her blue water bottle",
    "Leo needs new football boots",
    # pets and garden
    "feed the cat twice a day",
    "the cat has a vet check on Friday",
    "walk the dog before breakfast",
    "the dog ate a sock again",
    "water the tomatoes every evening",
    "the tomatoes are ready to pick",
    "mow the front lawn on Sunday",
    "the back lawn is full of moss",
    "the hedge needs cutting before June",
    "the compost bin is full",
    # money and paperwork
    "the electricity bill went up again",
    "the water bill is due on the first",
    "pay the council tax in April",
    "the bank card ends in 4417",
    "the new card PIN arrived today",
    "transfer fifty pounds to Anna",
    "transfer five hundred to savings",
    "the mortgage rate changes in August",
    "the tax return is due in January",
    "keep the receipts for the new boiler",
    # car and repairs
    "the car needs an oil change",
    "the car makes a noise when braking",
    "the left rear tyre is flat",
    "the parking permit expires on the tenth",
    "the plumber comes on Monday morning",
    "the electrician quoted three hundred pounds",
    "the boiler pressure dropped to one bar",
    "a roof tile blew off in the storm",
    "the fence panel by the shed is broken",
    "the shed key is on the blue hook",
    # codes, rooms, numbers
    "the locker code is 2791",
    "the gate code is 5580",
    "flat 12B is on the third floor",
    "the parcel is in locker 19",
    "room 214 is on the second floor",
    "platform 9 for the Leeds train",
    "bus 42 stops outside the library",
)

# Fixed voice, speed, word gap, pitch and amplitude: one espeak-ng version, the same bytes.
# Slow with gaps between words because Whisper tiny.en mishears fast synthetic speech: on
# 45 of these sentences it heard 76% of the words at 150 wpm and 85% at 110 wpm, gap 4
# (en-gb, RP and other en-us variants: 70-78%). The set should test words, not hearing.
ESPEAK_ARGS: tuple[str, ...] = ("-v", "en-us", "-s", "110", "-g", "4", "-p", "50", "-a", "100")
RATE = 16000
VOICE = "voice.json"


def _check_sentences(sentences: Sequence[str]) -> None:
    if len(sentences) < 120 or len(set(sentences)) != len(sentences):
        raise AssertionError("need at least 120 distinct sentences")
    for s in sentences:
        if not 4 <= len(s.split()) <= 10:
            raise AssertionError(f"not 4-10 words: {s!r}")


def _wav_ok(path: Path, expected_bytes: int | None) -> bool:
    """A complete 16 kHz mono 16-bit WAV of the size recorded when it was made."""
    try:
        with wave.open(str(path), "rb") as w:
            params = w.getparams()
        size = path.stat().st_size
    except (OSError, EOFError, wave.Error):
        return False
    return (
        params.nchannels == 1
        and params.sampwidth == 2
        and params.framerate == RATE
        and params.nframes > 0
        # the header's frame count must fit the file: a truncated copy fails here
        and size >= 44 + params.nframes * 2
        and (expected_bytes is None or size == expected_bytes)
    )


def _speak(sentence: str, target: Path, espeak: str) -> None:
    """``sentence`` spoken to ``target`` as 16 kHz mono 16-bit PCM."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        subprocess.run(
            [espeak, *ESPEAK_ARGS, "-w", str(raw), "--", sentence],
            check=True,
            capture_output=True,
        )
        part = target.with_name(f".{target.name}.part")
        _resample_to_16k(raw, part)
        os.replace(part, target)


def _resample_to_16k(src: Path, dest: Path) -> None:
    # espeak-ng writes 22.05 kHz. soxr (a librosa dependency, so already in the venv) is
    # deterministic and needs no extra system package; imported here to keep the top light.
    import numpy as np
    import soxr

    with wave.open(str(src), "rb") as w:
        rate, channels = w.getframerate(), w.getnchannels()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    mono = pcm.reshape(-1, channels).mean(axis=1).astype(np.float32) / 32768.0
    if rate != RATE:
        mono = soxr.resample(mono, rate, RATE, quality="HQ")
    out = np.clip(np.round(mono * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(str(dest), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(out.tobytes())


def _espeak_version(espeak: str) -> str:
    done = subprocess.run([espeak, "--version"], capture_output=True, text=True, check=True)
    # "eSpeak NG text-to-speech: 1.51  Data at: /usr/lib/...": the data path is per machine.
    return done.stdout.strip().splitlines()[0].split("  Data at:")[0]


def spoken_set(dest: Path, sentences: Sequence[str] = SENTENCES) -> Path:
    """Speak each sentence with espeak-ng (fixed voice and speed) to ``dest/s###.wav``
    (16 kHz mono 16-bit) and write ``dest/queries.jsonl``: one text query per sentence whose
    only relevant file (grade 2) is its own recording; ``dest/sentences.tsv`` lists file,
    size in bytes, and sentence; ``dest/voice.json`` the espeak-ng version and settings.
    Existing recordings of the same sentence, voice and size are kept. Raises RuntimeError
    if espeak-ng is not installed. Returns the queries file."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise RuntimeError("espeak-ng not found: install it with `apt-get install -y espeak-ng`")
    _check_sentences(sentences)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)

    # A recording is reused only if it was made from the same sentence by the same voice.
    # JSON, not .txt: mms would index a .txt beside the recordings as a document.
    voice = json.dumps({"espeak": _espeak_version(espeak), "args": ESPEAK_ARGS, "rate": RATE})
    voice_file = dest / VOICE
    same_voice = voice_file.is_file() and voice_file.read_text().strip() == voice
    known: dict[str, tuple[int, str]] = {}
    table = dest / "sentences.tsv"
    if same_voice and table.is_file():
        for line in table.read_text(encoding="utf-8").splitlines()[1:]:
            name, nbytes, text = [*line.split("\t", 2), "", ""][:3]
            if nbytes.isdigit():
                known[name] = (int(nbytes), text)
    voice_file.unlink(missing_ok=True)  # written last, once every recording is made

    rows, queries = ["file\tbytes\tsentence\n"], []
    wanted: set[str] = set()
    for n, sentence in enumerate(sentences, start=1):
        wav = dest / f"s{n:03d}.wav"
        wanted.add(wav.name)
        recorded = known.get(wav.name)
        if recorded is None or recorded[1] != sentence or not _wav_ok(wav, recorded[0]):
            _speak(sentence, wav, espeak)
            if not _wav_ok(wav, None):
                raise RuntimeError(f"espeak-ng wrote no usable audio for {sentence!r}")
        rows.append(f"{wav.name}\t{wav.stat().st_size}\t{sentence}\n")
        queries.append({"id": f"s{n:03d}", "text": sentence, "relevant": {wav.name: 2}})
    # Recordings beyond a shortened list would still be indexed as distractors.
    for stale in dest.glob("s[0-9][0-9][0-9].wav"):
        if stale.name not in wanted:
            stale.unlink()

    _write_if_changed(table, "".join(rows))
    target = dest / "queries.jsonl"
    _write_if_changed(target, "".join(json.dumps(q) + "\n" for q in queries))
    _write_if_changed(voice_file, voice + "\n")
    return target


# --------------------------------------------------------------------------------------
# 3. Path words
# --------------------------------------------------------------------------------------

# Library path -> sample_data picture. The pictures deliberately do NOT show what the path
# says (Iceland is filed with tools, the wedding with fish): only the path words answer.
# Neighbouring folders share words (Anna, 2019, invoice, birthday) so a query must match
# the right ones, not any one.
PATH_PHOTOS: dict[str, str] = {
    "2019-07 Iceland/DSC_0042.jpg": "images/tools/hammer5.jpg",
    "2019-07 Iceland/DSC_0043.jpg": "images/tools/scissors1.jpg",
    "2019-07 Iceland/DSC_0057.jpg": "images/household_objects/bucket.webp",
    "2019-07 Iceland/DSC_0061.jpg": "images/household_objects/chair.webp",
    "2019-12 Christmas at Mum's/IMG_0911.jpg": "images/renewable_energy/dam1.jpg",
    "2019-12 Christmas at Mum's/IMG_0915.jpg": "images/renewable_energy/dam3.webp",
    "2018-08 Norway fjords/DSC_1870.jpg": "images/household_objects/spoons.webp",
    "2018-08 Norway fjords/DSC_1874.jpg": "images/household_objects/erasers.webp",
    "Wedding Anna & Tom 2021/IMG_2231.jpg": "images/fishes/fish9.jpg",
    "Wedding Anna & Tom 2021/IMG_2232.jpg": "images/fishes/fish25.jpg",
    "Wedding Anna & Tom 2021/IMG_2240.jpg": "images/fishes/fish28.jpg",
    "Anna graduation 2019/PXL_20190614_101530.jpg": "images/tools/wrench.jpg",
    "Anna graduation 2019/PXL_20190614_103312.jpg": "images/tools/multimeter2.webp",
    "Invoices/2023/acme-invoice-0193.png": "images/farm_animals/duck.png",
    "Invoices/2023/acme-invoice-0194.png": "images/tools/plier1.png",
    "Invoices/2023/globex-invoice-0201.png": "images/household_objects/pencil.png",
    "Invoices/2022/acme-invoice-0077.png": "images/fishes/fish8.png",
    "Receipts/2024/ikea-receipt-bookshelf.jpg": "images/farm_animals/cow.jpg",
    "Receipts/2024/garage-receipt-brake-pads.jpg": "images/farm_animals/sheep.jpg",
    "Kids/Emma first day of school 2020.jpg": "images/monuments/tajMahal.jpg",
    "Kids/Leo 5th birthday party/P1010044.jpg": "images/monuments/eiffelTower.jpg",
    "Kids/Leo 5th birthday party/P1010047.jpg": "images/monuments/parthenon.webp",
    "Kids/Emma 7th birthday cake.jpg": "images/world_animals/koala.jpg",
    "House/kitchen renovation before.jpg": "images/world_animals/panda.jpg",
    "House/kitchen renovation after.jpg": "images/world_animals/moose.webp",
    "House/damp patch bathroom ceiling.jpg": "images/world_animals/bison.webp",
    "Car/insurance claim 2024 dent rear door.jpg": "images/renewable_energy/solar6.jpg",
    "Car/MOT certificate 2023.jpg": "images/renewable_energy/windmill13.jpg",
    "Screenshots/Screenshot 2024-03-02 at 10.14.55.png": "images/monuments/leMusee.png",
    "Recipes/grandma lemon drizzle cake.jpg": "images/world_animals/giraffe.webp",
    "Recipes/Raj dal makhani.jpg": "images/world_animals/lemur.webp",
    "Scans/passport Tom 2022.jpg": "images/household_objects/pillow.webp",
}

# Notes: plausible contents that avoid the words their queries use, so the file name is
# what finds them. Written for this project.
PATH_NOTES: dict[str, str] = {
    "Notes/boiler service Hartley & Sons.txt": (
        "Booked for Tuesday morning. Last check found the pressure low; ask about the "
        "expansion vessel and keep the certificate with the house papers.\n"
    ),
    "Notes/passport renewal checklist.txt": (
        "- two photos, signed on the back by someone who has known us for two years\n"
        "- the old booklet goes in the envelope too\n- fee paid online by card\n"
    ),
    "Notes/Iceland packing list.txt": (
        "Waterproof trousers, thermal layers, swimming things for the hot springs, "
        "sleeping mask for the bright nights, adapters, headlamp.\n"
    ),
    "Notes/wifi and alarm codes.txt": (
        "Network: Maple House. Router admin on the sticker underneath. "
        "Burglar panel: unset with the fob, the spare fob is in the hall drawer.\n"
    ),
}

# (query, relevant library paths): each answered by path words only.
PATH_QUERIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "Iceland 2019",
        (
            "2019-07 Iceland/DSC_0042.jpg",
            "2019-07 Iceland/DSC_0043.jpg",
            "2019-07 Iceland/DSC_0057.jpg",
            "2019-07 Iceland/DSC_0061.jpg",
        ),
    ),
    (
        "Anna and Tom's wedding",
        (
            "Wedding Anna & Tom 2021/IMG_2231.jpg",
            "Wedding Anna & Tom 2021/IMG_2232.jpg",
            "Wedding Anna & Tom 2021/IMG_2240.jpg",
        ),
    ),
    (
        "Anna's graduation",
        (
            "Anna graduation 2019/PXL_20190614_101530.jpg",
            "Anna graduation 2019/PXL_20190614_103312.jpg",
        ),
    ),
    (
        "Christmas at Mum's",
        ("2019-12 Christmas at Mum's/IMG_0911.jpg", "2019-12 Christmas at Mum's/IMG_0915.jpg"),
    ),
    (
        "Norway fjords trip",
        ("2018-08 Norway fjords/DSC_1870.jpg", "2018-08 Norway fjords/DSC_1874.jpg"),
    ),
    (
        "acme invoices from 2023",
        ("Invoices/2023/acme-invoice-0193.png", "Invoices/2023/acme-invoice-0194.png"),
    ),
    ("acme invoice 0077", ("Invoices/2022/acme-invoice-0077.png",)),
    ("globex invoice", ("Invoices/2023/globex-invoice-0201.png",)),
    ("ikea bookshelf receipt", ("Receipts/2024/ikea-receipt-bookshelf.jpg",)),
    ("Emma's first day of school", ("Kids/Emma first day of school 2020.jpg",)),
    (
        "Leo's 5th birthday party",
        ("Kids/Leo 5th birthday party/P1010044.jpg", "Kids/Leo 5th birthday party/P1010047.jpg"),
    ),
    (
        "kitchen renovation",
        ("House/kitchen renovation before.jpg", "House/kitchen renovation after.jpg"),
    ),
    ("car insurance claim", ("Car/insurance claim 2024 dent rear door.jpg",)),
    ("screenshot from March 2024", ("Screenshots/Screenshot 2024-03-02 at 10.14.55.png",)),
    ("grandma's lemon drizzle cake", ("Recipes/grandma lemon drizzle cake.jpg",)),
    ("Tom's passport scan", ("Scans/passport Tom 2022.jpg",)),
    ("boiler service Hartley", ("Notes/boiler service Hartley & Sons.txt",)),
    ("passport renewal", ("Notes/passport renewal checklist.txt",)),
)


def _save_as(src: Path, target: Path) -> None:
    """Re-encode ``src`` in the format ``target``'s extension names: real libraries have
    JPEG bytes in ``.jpg`` files, and a decoder may trust the extension."""
    from PIL import Image  # lazy: Pillow is heavy and only this set needs it

    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}[target.suffix.lower()]
    part = target.with_name(f".{target.name}.part")
    with Image.open(src) as image:
        rgb = image.convert("RGB")
    # No EXIF/ICC or timestamps: the same input gives the same bytes.
    rgb.save(part, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    os.replace(part, target)


def path_set(dest: Path, sample: Path = SAMPLE) -> Path:
    """A small library (36 files) named as a person names theirs, for the path signal.

    The shared corpus is measured on opaque names so that path words cannot help it; this
    set is the opposite: pictures from ``sample_data/images`` filed under folders and names
    such as ``2019-07 Iceland/DSC_0042.jpg`` or ``Invoices/2023/acme-invoice-0193.png``, and
    a few notes whose text avoids their queries' words. The picture content is unrelated
    on purpose, so queries like "Iceland 2019" or "acme invoice 0077" can only be answered
    by words in the path: a search without a lexical space over paths should score poorly.
    Writes ``dest/queries.jsonl`` (grade 2 for every file the query names) and returns it.
    Files already present are kept."""
    dest = Path(dest)
    missing = [old for old in PATH_PHOTOS.values() if not (sample / old).is_file()]
    if missing:
        raise ValueError(f"pictures missing from {sample}: {', '.join(missing)}")
    for new, old in PATH_PHOTOS.items():
        target = dest / new
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            _save_as(sample / old, target)
    for new, text in PATH_NOTES.items():
        target = dest / new
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_if_changed(target, text)
    files = PATH_PHOTOS.keys() | PATH_NOTES.keys()
    lines = []
    for n, (text, relevant) in enumerate(PATH_QUERIES, start=1):
        unknown = [p for p in relevant if p not in files]
        if unknown:
            raise AssertionError(f"query {text!r} names unknown files: {unknown}")
        lines.append(
            json.dumps({"id": f"p{n:02d}", "text": text, "relevant": dict.fromkeys(relevant, 2)})
        )
    target = dest / "queries.jsonl"
    _write_if_changed(target, "\n".join(lines) + "\n")
    return target


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------


# Written beside the data; mms does not index them (no indexed extension, or not wanted).
BOOKKEEPING = frozenset({"queries.jsonl", MAPPING, "sentences.tsv", VOICE})


def _files(folder: Path) -> Iterator[Path]:
    """The data files of a set: what ``mms index`` sees, without this module's bookkeeping."""
    return (
        p
        for p in folder.rglob("*")
        if p.is_file() and not p.name.startswith(".") and p.name not in BOOKKEEPING
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    sub = ap.add_subparsers(dest="kind", required=True)
    opaque = sub.add_parser("opaque", help="a corpus copied under opaque names")
    opaque.add_argument("--corpus", type=Path, default=CORPUS, help=f"default: {CORPUS}")
    opaque.add_argument("--queries", type=Path, help="default: CORPUS/queries.jsonl")
    opaque.add_argument("--out", type=Path, default=DATASETS / "corpus-opaque")
    spoken = sub.add_parser("spoken", help="sentences spoken by espeak-ng")
    spoken.add_argument("--out", type=Path, default=DATASETS / "spoken-phrases")
    paths = sub.add_parser("paths", help="a library whose queries only path words answer")
    paths.add_argument("--sample", type=Path, default=SAMPLE, help=f"default: {SAMPLE}")
    paths.add_argument("--out", type=Path, default=DATASETS / "path-library")
    args = ap.parse_args(argv)

    start = time.perf_counter()
    try:
        if args.kind == "opaque":
            queries = args.queries or args.corpus / "queries.jsonl"
            written = opaque_copy(args.corpus, queries, args.out)
        elif args.kind == "spoken":
            written = spoken_set(args.out)
        else:
            written = path_set(args.out, args.sample)
    except (ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    n_queries = sum(1 for line in written.read_text(encoding="utf-8").splitlines() if line)
    n_files = sum(1 for _ in _files(written.parent))
    print(
        f"{args.kind}: {n_files} files and {n_queries} queries in {written.parent} "
        f"({time.perf_counter() - start:.1f} s)\nqueries: {written}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

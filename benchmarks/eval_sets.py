"""Datasets that keep quality measurement honest once the lexical space reads paths.

The shared corpus and ``sample_data/`` name files and folders by their labels
(``images/tools/hammer8.webp``): a search over path words would find the answers in the
names. So quality is measured on copies with opaque names; the path signal is shown apart,
on a set named as a person's library is; and the lexical space's other signal, exact
words, on a set of spoken sentences made with Debian's ``espeak-ng``.

    python benchmarks/eval_sets.py opaque --corpus ../shared/corpus --out .cache/datasets/corpus
    python benchmarks/eval_sets.py spoken --out .cache/datasets/spoken
    python benchmarks/eval_sets.py paths --out .cache/datasets/paths

Each writes its files and a ``queries.jsonl`` in the eval format (README, "Evaluation
query format") into ``--out``; each is deterministic and skips work already done.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data"
CORPUS = ROOT.parent / "shared" / "corpus"


def _indexed(path: Path) -> bool:
    sys.path.insert(0, str(ROOT))
    from mmsearch_cli.items import EXTENSIONS

    return path.suffix.lower() in EXTENSIONS


def opaque_copy(src: Path, queries: Path, dest: Path) -> Path:
    """Copy every indexable file of ``src`` (damaged ones included) into one flat folder
    with names that say nothing (``m0042.webp``, ordered by a hash of the old path, so
    neither names nor order carry labels), and rewrite the queries to match. Extensions
    stay: mms picks the decoder by them. A text's own words may still name its subject:
    that is content, not path. Returns the new queries file."""
    files = sorted(p for p in src.rglob("*") if p.is_file() and _indexed(p))
    order = sorted(
        files, key=lambda p: hashlib.sha256(os.fsencode(p.relative_to(src).as_posix())).hexdigest()
    )
    names = {
        p.relative_to(src).as_posix(): f"m{n:04d}{p.suffix.lower()}" for n, p in enumerate(order)
    }
    dest.mkdir(parents=True, exist_ok=True)
    mapping = dest / "MAPPING.tsv"
    wanted = "".join(f"{new}\t{old}\n" for old, new in sorted(names.items(), key=lambda kv: kv[1]))
    # Names that are not valid UTF-8 (the corpus has one) keep their bytes.
    known = mapping.read_text(errors="surrogateescape") if mapping.exists() else ""
    if known != wanted:
        for old, new in names.items():
            shutil.copy2(src / old, dest / new)
        mapping.write_text(wanted, errors="surrogateescape")
    base = queries.parent
    out = []
    for n, line in enumerate(queries.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        query = json.loads(line)
        for field in ("image", "audio", "video"):
            if field in query:
                query[field] = _renamed(names, (base / query[field]).resolve(), src, f"line {n}")
        query["relevant"] = {
            _renamed(names, (base / p).resolve(), src, f"line {n}"): g
            for p, g in query["relevant"].items()
        }
        out.append(json.dumps(query))
    target = dest / "queries.jsonl"
    target.write_text("\n".join(out) + "\n")
    return target


def _renamed(names: dict[str, str], path: Path, src: Path, where: str) -> str:
    try:
        rel = path.relative_to(src.resolve()).as_posix()
        return names[rel]
    except (ValueError, KeyError):
        raise ValueError(f"{where}: {path} is not an indexable file of {src}") from None


# Short sentences that share words on purpose, so embeddings blur them and exact words
# (names, numbers, codes) decide. Written for this project.
SENTENCES = [
    "turn the kitchen light off",
    "turn the kitchen light on",
    "turn the garden light off",
    "turn the garden light on",
    "the kitchen tap is dripping again",
    "the garden tap is frozen",
    "error code 404 on the router",
    "error code 503 on the server",
    "the router lost its signal",
    "the server needs a restart tonight",
    "call Anna at nine",
    "call Tom at ten",
    "call the plumber at noon",
    "email Anna the invoice",
    "email Tom the contract",
    "the invoice number is 4711",
    "the contract ends in March",
    "pay the invoice by Friday",
    "book a table for two at eight",
    "book a table for four at seven",
    "the table by the window",
    "the train to Leeds leaves at six",
    "the train to York is late",
    "the bus to the airport is full",
    "the flight to Oslo is delayed",
    "the flight to Rome leaves from gate twelve",
    "gate twelve has moved to gate nine",
    "pick up the kids at school",
    "pick up the parcel at the post office",
    "the parcel has tracking number 88213",
    "the dog needs a walk",
    "the cat needs feeding",
    "feed the fish before you leave",
    "water the tomatoes in the greenhouse",
    "the greenhouse door is stuck",
    "the back door is unlocked",
    "lock the front door",
    "the front door bell is broken",
    "buy milk eggs and bread",
    "buy bread and butter",
    "we are out of coffee",
    "we are out of rice and pasta",
    "the pasta needs ten minutes",
    "the oven is set to two hundred degrees",
    "the fridge is making a noise",
    "the washing machine shows error E21",
    "the dishwasher shows error E15",
    "the boiler pressure is too low",
    "the boiler needs a service in May",
    "the car needs new tyres",
    "the car is due for its MOT",
    "the bike has a flat tyre",
    "the meeting moved to Thursday",
    "the meeting with Priya is at three",
    "the meeting room is booked",
    "send the slides to Priya",
    "send the report to the board",
    "the report is due on Monday",
    "the budget for Q3 is approved",
    "the budget for Q4 is on hold",
    "the quarterly numbers look good",
    "the server room is too warm",
    "the backup finished at midnight",
    "the backup failed last night",
    "restore the backup from Sunday",
    "the password expires in five days",
    "reset my password please",
    "the wifi password is on the fridge",
    "the printer is out of toner",
    "the printer jams on page two",
    "the scanner only scans in grey",
    "the laptop battery drains fast",
    "the laptop fan is loud",
    "charge the phone overnight",
    "the phone screen is cracked",
    "the tablet needs an update",
    "the update needs a restart",
    "the doctor appointment is on Tuesday",
    "the dentist appointment is at nine",
    "take two tablets after dinner",
    "take one tablet before breakfast",
    "the pharmacy closes at six",
    "the library closes at eight",
    "return the library books on Saturday",
    "the books are overdue",
    "the school trip is to the museum",
    "the museum is closed on Mondays",
    "the zoo opens at ten",
    "the concert starts at half past seven",
    "the concert tickets are in the drawer",
    "the spare key is under the blue pot",
    "the blue pot is by the shed",
    "the shed roof leaks",
    "the roof needs new tiles",
    "the gutter is full of leaves",
    "rake the leaves on Sunday",
    "mow the lawn on Saturday",
    "the lawn mower will not start",
    "the hedge needs trimming",
    "the neighbours are away until June",
    "feed the neighbours cat on Wednesday",
    "Anna's birthday is on the fourth",
    "Tom's birthday party is at the park",
    "order a cake for the party",
    "the cake is chocolate with cherries",
    "bring candles and matches",
    "the matches are in the kitchen drawer",
    "the torch needs new batteries",
    "buy batteries for the torch",
    "the smoke alarm beeps at night",
    "change the smoke alarm battery",
    "the heating comes on at six",
]


def spoken_set(dest: Path) -> Path:
    """Each sentence spoken to ``s###.wav`` (espeak-ng, fixed voice and speed, 16 kHz
    mono) and queried by its own text: exactly one relevant recording each."""
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng is not installed: apt-get install espeak-ng")
    dest.mkdir(parents=True, exist_ok=True)
    lines = []
    for n, sentence in enumerate(SENTENCES, start=1):
        wav = dest / f"s{n:03d}.wav"
        if not wav.exists():
            tmp = dest / f".s{n:03d}.raw.wav"
            subprocess.run(["espeak-ng", "-v", "en-gb", "-s", "150", "-w", str(tmp), sentence],
                           check=True, capture_output=True)  # fmt: skip
            _to_16k_mono(tmp, wav)
            tmp.unlink()
        lines.append(json.dumps({"id": f"s{n:03d}", "text": sentence, "relevant": {wav.name: 2}}))
    (dest / "queries.jsonl").write_text("\n".join(lines) + "\n")
    (dest / "sentences.tsv").write_text(
        "".join(f"s{n:03d}.wav\t{s}\n" for n, s in enumerate(SENTENCES, 1))
    )
    return dest / "queries.jsonl"


def _to_16k_mono(src: Path, dest: Path) -> None:
    import numpy as np
    import soundfile as sf

    data, rate = sf.read(src, dtype="float32", always_2d=True)
    mono = data.mean(axis=1)
    if rate != 16000:
        import soxr

        mono = soxr.resample(mono, rate, 16000)
    sf.write(dest, np.asarray(mono, dtype=np.float32), 16000, subtype="PCM_16")


# Photos from sample_data/ filed as a person's library files them: the folder and file
# names are what a query names, not the picture (which need not match).
PATH_FILES = {
    "2019-07 Iceland/DSC_0042.jpg": "images/renewable_energy/geothermal.webp",
    "2019-07 Iceland/DSC_0043.jpg": "images/fishes/fish3.webp",
    "2019-07 Iceland/DSC_0051.jpg": "images/world_animals/polar_bear.webp",
    "Wedding Anna & Tom 2021/IMG_2231.jpg": "images/household_objects/cup.webp",
    "Wedding Anna & Tom 2021/IMG_2232.jpg": "images/monuments/eiffelTower.jpg",
    "Invoices/2023/acme-invoice-0193.png": "images/tools/multimeter1.jpg",
    "Invoices/2023/acme-invoice-0194.png": "images/tools/hammer8.webp",
    "Invoices/2022/globex-receipt-0077.png": "images/tools/plier1.png",
    "Kids/Emma first day of school 2020.jpg": "images/farm_animals/dog.webp",
    "Kids/Leo birthday party/P1010044.jpg": "images/household_objects/volleyball.webp",
    "Garden/greenhouse tomatoes Aug 2022.jpg": "images/renewable_energy/solar1.webp",
    "Car/insurance claim 2024 dent.jpg": "images/monuments/colosseum.webp",
    "Screenshots/Screenshot 2024-03-02 at 10.14.55.png": "images/tools/wrench1.webp",
    "Recipes/grandma lemon drizzle cake.jpg": "images/fishes/fish7.webp",
    "Notes/boiler service Hartley & Sons.txt": "text/hand_tools.md",
    "Notes/passport renewal checklist.txt": "text/owls.txt",
}
PATH_QUERIES = [
    (
        "Iceland 2019",
        [
            "2019-07 Iceland/DSC_0042.jpg",
            "2019-07 Iceland/DSC_0043.jpg",
            "2019-07 Iceland/DSC_0051.jpg",
        ],
    ),
    (
        "Anna and Tom's wedding",
        ["Wedding Anna & Tom 2021/IMG_2231.jpg", "Wedding Anna & Tom 2021/IMG_2232.jpg"],
    ),
    (
        "acme invoice",
        ["Invoices/2023/acme-invoice-0193.png", "Invoices/2023/acme-invoice-0194.png"],
    ),
    ("acme invoice 0193", ["Invoices/2023/acme-invoice-0193.png"]),
    ("globex receipt", ["Invoices/2022/globex-receipt-0077.png"]),
    ("Emma's first day of school", ["Kids/Emma first day of school 2020.jpg"]),
    ("Leo's birthday party", ["Kids/Leo birthday party/P1010044.jpg"]),
    ("greenhouse tomatoes", ["Garden/greenhouse tomatoes Aug 2022.jpg"]),
    ("car insurance claim", ["Car/insurance claim 2024 dent.jpg"]),
    ("screenshot from March 2024", ["Screenshots/Screenshot 2024-03-02 at 10.14.55.png"]),
    ("grandma's lemon drizzle cake", ["Recipes/grandma lemon drizzle cake.jpg"]),
    ("boiler service Hartley", ["Notes/boiler service Hartley & Sons.txt"]),
    ("passport renewal", ["Notes/passport renewal checklist.txt"]),
    ("DSC_0051", ["2019-07 Iceland/DSC_0051.jpg"]),
    ("IMG_2232", ["Wedding Anna & Tom 2021/IMG_2232.jpg"]),
]


def path_set(dest: Path) -> Path:
    """A small library whose answers only the path words give (the picture content is
    unrelated on purpose): the path signal of the lexical space, shown apart."""
    for new, old in PATH_FILES.items():
        target = dest / new
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(SAMPLE / old, target)
    lines = [
        json.dumps({"id": f"p{n:02d}", "text": text, "relevant": {p: 2 for p in relevant}})
        for n, (text, relevant) in enumerate(PATH_QUERIES, start=1)
    ]
    (dest / "queries.jsonl").write_text("\n".join(lines) + "\n")
    return dest / "queries.jsonl"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kind", choices=("opaque", "spoken", "paths"))
    ap.add_argument("--corpus", type=Path, default=CORPUS, help="for opaque: the corpus")
    ap.add_argument("--queries", type=Path, help="for opaque: its queries [CORPUS/queries.jsonl]")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    if args.kind == "opaque":
        written = opaque_copy(args.corpus, args.queries or args.corpus / "queries.jsonl", args.out)
    elif args.kind == "spoken":
        written = spoken_set(args.out)
    else:
        written = path_set(args.out)
    print(written)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Fetch and prepare the adapter's training data, reproducibly, into a cache outside the repo.

Sources (both public domain / CC0, from package registries only):

* Debian ``openclipart-png`` (pictures) and ``openclipart-svg`` (the same pictures as SVG,
  read only for their RDF metadata: title, description, keywords, creator), version
  ``1:0.18+dfsg-19``, fetched with ``apt-get download`` and unpacked with ``dpkg-deb -x``.
* Kenney's CC0 game sprites inside the PyPI ``arcade==3.3.3`` wheel
  (``pip download --no-deps``), captioned from their descriptive file names. Only the
  folders covered by Kenney's CC0 ``License.txt`` are used.

Output: ``CACHE/items.jsonl``, one picture a line::

    {"id", "path", "source", "query", "captions": [...], "group", "licence"}

``query`` is the short caption (the cleaned title, what a person would type); ``captions``
are the training texts (short and long forms); ``group`` keys near-duplicates (same
caption without digits) so that the held-out split never separates them.

    python training/fetch_data.py [--cache-dir DIR]     # default ~/.cache/mms-training
"""

from __future__ import annotations

import argparse
import collections
import glob
import html
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

DEBIAN_PACKAGES = ("openclipart-png", "openclipart-svg")
DEBIAN_VERSION = "1:0.18+dfsg-19"
ARCADE = "arcade==3.3.3"
# Kenney folders (CC0 per arcade/resources/assets/images/License.txt); the parallax and
# cyberpunk backgrounds carry other licences and are left out.
KENNEY_DIRS = (
    "tiles", "items", "enemies", "topdown_tanks", "animated_characters", "cards",
    "space_shooter", "alien",
)  # fmt: skip
GENERIC_TITLE_MIN = 15  # a title shared by this many pictures names a collection, not one
# Keywords that say nothing about what is drawn.
STOP_KEYWORDS = {
    "hash", "unsorted", "icon", "icons", "theme", "lemon theme icon", "mimeicon", "magick",
    "special", "signs and symbols", "clip art", "clipart", "openclipart", "svg", "image",
    "png", "media", "other", "misc", "new", "remix", "etiquette", "lemon", "color", "colour",
    "mapsym", "united nations member",
}  # fmt: skip
GENERIC_PATTERNS = (
    r"^part of the flat icon collection.*",
    r"^svg gradient collection.*",
    r"^lemon svg theme$",
    r"^etiquette icons$",
    r"^untitled.*",
)


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mms-training"


def run(cmd: list[str], cwd: Path) -> None:
    print("+", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, cwd=cwd, check=True)


def fetch(cache: Path) -> None:
    """Download the .deb files and the arcade wheel once, then unpack the .debs."""
    debs, wheels, root = cache / "debs", cache / "wheels", cache / "openclipart"
    debs.mkdir(parents=True, exist_ok=True)
    wheels.mkdir(parents=True, exist_ok=True)
    for package in DEBIAN_PACKAGES:
        if not list(debs.glob(f"{package}_*.deb")):
            run(["apt-get", "download", f"{package}={DEBIAN_VERSION}"], cwd=debs)
    if not (root / "usr/share/openclipart/png").is_dir():
        for deb in sorted(debs.glob("*.deb")):
            run(["dpkg-deb", "-x", str(deb), str(root)], cwd=cache)
    if not list(wheels.glob("arcade-*.whl")):
        run([sys.executable, "-m", "pip", "download", "--no-deps", ARCADE, "-d", str(wheels)],
            cwd=cache)  # fmt: skip


def words(text: str) -> str:
    """File-name or keyword text as lower-case words: camelCase, _ and - split."""
    text = re.sub(r"([a-z])([A-Z])", r"\1 \2", text)
    text = re.sub(r"[_\-+.]+", " ", text)
    return re.sub(r"\s+", " ", text).strip().lower()


def svg_metadata(path: Path) -> dict[str, Any]:
    """Title, description, keywords and creator from an SVG's RDF block (regex: the
    files are old and not all are well-formed XML)."""
    head = path.read_bytes()[:200_000].decode("utf-8", "replace")
    block = re.search(r"<metadata.*?</metadata>", head, re.S)
    meta = block.group(0) if block else ""

    def first(pattern: str) -> str:
        m = re.search(pattern, meta, re.S)
        return html.unescape(m.group(1)).strip() if m else ""

    return {
        "title": first(r"<cc:Work.*?<dc:title>(.*?)</dc:title>"),
        "description": first(r"<dc:description>(.*?)</dc:description>"),
        "creator": first(r"<dc:creator>.*?<dc:title>(.*?)</dc:title>"),
        "keywords": [html.unescape(k).strip() for k in re.findall(r"<rdf:li>(.*?)</rdf:li>", meta)],
    }


def clean_title(title: str) -> str:
    """Readable title, or "" for collection names and Nicu Buculei's bulk uploads, whose
    "Clipart by ... - NAME" titles were often copied from another picture."""
    if re.match(r"^clip ?art by ", title.strip(), re.I):
        return ""
    title = re.sub(r"_+", " ", title)
    title = re.sub(r"(?<=[a-zA-Z])\d+\b", "", title)  # "mouse2" -> "mouse"
    title = re.sub(r"\s+", " ", title).strip(" -_")
    if any(re.match(p, title, re.I) for p in GENERIC_PATTERNS):
        return ""
    return title


def stem_words(stem: str, creator: str) -> str:
    """File-name words without the author part that openclipart appends
    ("barattolo_di_pillole_arc_01" by Architetto ... -> "barattolo di pillole")."""
    names = [n for n in words(creator).split() if len(n) >= 2]
    out = []
    for token in words(stem).split():
        token = re.sub(r"(?<=[a-z])\d+$", "", token)  # "restaurant1" -> "restaurant"
        if not token or re.fullmatch(r"\d+[a-z]?", token):
            continue
        if any(n.startswith(token) for n in names) and len(token) >= 2:
            continue
        out.append(token)
    return " ".join(out)


def clean_keywords(keywords: list[str], exclude: str) -> list[str]:
    out: list[str] = []
    for raw in keywords:
        k = words(raw)
        if not k or k in STOP_KEYWORDS or re.fullmatch(r"(0x)?[0-9a-f]*\d[0-9a-f]*", k):
            continue
        if k not in out and k not in exclude.lower():
            out.append(k)
    return out


def openclipart_items(cache: Path) -> list[dict[str, Any]]:
    share = cache / "openclipart/usr/share/openclipart"
    pngs = sorted(glob.glob(str(share / "png/**/*.png"), recursive=True))
    raw = []
    for png in pngs:
        rel = Path(png).relative_to(share / "png").with_suffix("")
        svg = share / "svg" / rel.with_suffix(".svg")
        meta: dict[str, Any] = {"title": "", "description": "", "creator": "", "keywords": []}
        if svg.is_file():
            meta = svg_metadata(svg)
        raw.append((png, rel, meta))
    title_counts = collections.Counter(clean_title(m["title"]).lower() for _, _, m in raw)
    items = []
    for png, rel, meta in raw:
        title = clean_title(meta["title"])
        stem = stem_words(rel.name, meta["creator"])
        if not title or title_counts[title.lower()] >= GENERIC_TITLE_MIN:
            # A collection name ("card", "gramastar"): the file name tells the pictures apart.
            title = stem or title or words(rel.parent.name)
        folder = words(rel.parent.name)
        description = meta["description"]
        if re.search(r"HASH\(0x|^eps converted|http", description, re.I) or len(description) > 200:
            description = ""
        keywords = clean_keywords(meta["keywords"] + [folder], title)
        long = title
        if description and description.lower() != title.lower():
            long += f". {description}"
        if keywords:
            long += f". {', '.join(keywords)}"
        captions = [title] if long == title else [title, long]
        items.append(
            {
                "id": f"openclipart/{rel}",
                "path": png,
                "source": f"Debian openclipart-png {DEBIAN_VERSION}",
                "query": title,
                "captions": captions,
                "group": "openclipart:" + re.sub(r"[\d\s]+", " ", title.lower()).strip(),
                "licence": "public domain",
            }
        )
    return items


def kenney_items(cache: Path) -> list[dict[str, Any]]:
    wheel = sorted((cache / "wheels").glob("arcade-*.whl"))[-1]
    out_dir = cache / "kenney"
    prefix = "arcade/resources/assets/images/"
    items = []
    with zipfile.ZipFile(wheel) as zf:
        for name in sorted(zf.namelist()):
            parts = name[len(prefix) :].split("/") if name.startswith(prefix) else []
            if len(parts) < 2 or parts[0] not in KENNEY_DIRS or not name.endswith(".png"):
                continue
            target = out_dir / name[len(prefix) :]
            if not target.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(zf.read(name))
            stem = words(Path(name).stem)
            query = re.sub(r"\s+", " ", re.sub(r"\b\d+\b", " ", stem)).strip() or stem
            folder = words(parts[-2]) if len(parts) > 2 else words(parts[0])
            items.append(
                {
                    "id": f"kenney/{'/'.join(parts)}",
                    "path": str(target),
                    "source": f"Kenney sprites in PyPI {ARCADE}",
                    "query": stem,
                    "captions": [stem, f"{stem}. {folder}, game sprite"],
                    "group": "kenney:" + query,
                    "licence": "CC0-1.0",
                }
            )
    return items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument("--no-kenney", action="store_true", help="openclipart only")
    args = parser.parse_args()
    cache: Path = args.cache_dir.expanduser().resolve()
    repo = Path(__file__).resolve().parent.parent
    if cache.is_relative_to(repo):
        sys.exit("the cache must be outside the repository: training data is never committed")
    fetch(cache)
    items = openclipart_items(cache)
    if not args.no_kenney:
        items += kenney_items(cache)
    with (cache / "items.jsonl").open("w") as fh:
        for item in items:
            fh.write(json.dumps(item, ensure_ascii=False) + "\n")
    by_source = collections.Counter(i["source"] for i in items)
    print(f"{len(items)} pictures, {len({i['group'] for i in items})} groups -> "
          f"{cache / 'items.jsonl'}: {dict(by_source)}")  # fmt: skip


if __name__ == "__main__":
    main()

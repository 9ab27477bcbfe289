"""Fetch and prepare the adapter's training data, reproducibly, into a cache outside the repo.

Sources (both public domain / CC0, from package registries only):

* Debian ``openclipart-png`` (pictures) and ``openclipart-svg`` (the same pictures as SVG,
  read only for their RDF metadata: title, description, keywords, creator), version
  ``1:0.18+dfsg-19``, fetched with ``apt-get download`` and unpacked with ``dpkg-deb -x``.
* Kenney's CC0 game sprites inside the PyPI ``arcade==3.3.3`` wheel
  (``pip download --no-deps``), captioned from their descriptive file names. Only the
  folders covered by Kenney's CC0 ``License.txt`` are used.

* Emoji, each drawn three ways: Google's Noto (Apache-2.0) and Twitter's Twemoji
  (CC-BY-4.0) 64 px PNGs from the npm ``emoji-datasource-google``/``-twitter@16.0.0``, and
  Microsoft's Fluent 3D renders (MIT) from ``@lobehub/fluent-emoji-3d@1.1.0``, captioned by
  their CLDR names and keywords from ``emojibase-data@17.0.0`` (MIT), fetched with
  ``npm pack``. Skin-tone variants and the component/regional-indicator codes are left out.

* Iconify's packaging (npm ``@iconify-json/*``, pinned below; licence per set from its
  ``info.json``) of seven more emoji designs, grouped with the emoji above by code point
  (so one emoji's every design lands on one side of the split), and of four icon sets
  (flat colour icons, game icons, Tabler, Material Design), captioned by their icon names.
  The SVGs are rendered at 128 px with resvg (PyPI ``resvg-py``).

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
import tarfile
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
# Emoji renderings: npm package -> (folder inside it, source name, licence).
EMOJI_IMAGES = {
    "emoji-datasource-google@16.0.0": ("package/img/google/64", "Noto", "Apache-2.0"),
    "emoji-datasource-twitter@16.0.0": ("package/img/twitter/64", "Twemoji", "CC-BY-4.0"),
    "@lobehub/fluent-emoji-3d@1.1.0": ("package/assets", "Fluent 3D", "MIT"),
}
EMOJI_NAMES = "emojibase-data@17.0.0"
# Iconify sets: name -> (version, family). "emoji" sets map to code points (chars.json).
ICONIFY = {
    "fluent-emoji-flat": ("1.2.6", "emoji"), "fluent-emoji": ("1.2.7", "emoji"),
    "fluent-emoji-high-contrast": ("1.2.6", "emoji"), "noto-v1": ("1.2.5", "emoji"),
    "emojione": ("1.2.3", "emoji"), "fxemoji": ("1.2.2", "emoji"),
    "streamline-emojis": ("1.2.4", "emoji"), "flat-color-icons": ("1.2.3", "icon"),
    "game-icons": ("1.2.4", "icon"), "tabler": ("1.2.41", "icon"), "mdi": ("1.2.3", "icon"),
}  # fmt: skip
SKIN_TONES = {"1f3fb", "1f3fc", "1f3fd", "1f3fe", "1f3ff"}
SKIN_SUFFIX = re.compile(r"-(light|medium-light|medium|medium-dark|dark)(-skin-tone)?$")
# Icon-name words that name a drawing style, not what is drawn.
STYLE_WORDS = {"outline", "outlined", "filled", "fill", "solid", "variant", "sharp", "line"}
RENDER_PX = 128
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


def npm_package(cache: Path, spec: str) -> Path:
    """``npm pack`` a pinned package once and unpack it; its folder."""
    npm = cache / "npm"
    out = npm / re.sub(r"[^\w.-]+", "_", spec)
    if not out.is_dir():
        npm.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(["npm", "pack", spec, "--pack-destination", str(npm)],
                                cwd=npm, check=True, capture_output=True, text=True)  # fmt: skip
        tgz = npm / result.stdout.strip().splitlines()[-1]
        with tarfile.open(tgz) as tf:
            tf.extractall(out, filter="data")
        tgz.unlink()
    return out


def emoji_key(hexcode: str) -> str:
    """Code points without the variation selector, so every vendor's name matches."""
    return "-".join(c for c in hexcode.lower().split("-") if c != "fe0f")


def slug(label: str) -> str:
    """A CLDR name as Iconify spells it: "a button (blood type)" -> "a-button-blood-type"."""
    return re.sub(r"[^a-z0-9]+", "-", label.lower().replace("’", "")).strip("-")


def emoji_caption(label: str) -> str:
    label = re.sub(r"^flag: ", "flag of ", label)
    return re.sub(r":\s*", " ", label).strip()


def emoji_names(cache: Path) -> list[dict[str, Any]]:
    """CLDR names and keywords of the emoji, without skin-tone components and regional
    indicators."""
    names = json.loads((npm_package(cache, EMOJI_NAMES) / "package/en/data.json").read_text())
    return [e for e in names if e.get("group") not in (None, 2)]


def emoji_captions(entry: dict[str, Any]) -> tuple[str, list[str]]:
    query = emoji_caption(entry["label"])
    tags = [t for t in entry.get("tags", []) if t.lower() not in query.lower()]
    return query, [query, f"{query}. {', '.join(tags)}"] if tags else [query]


def emoji_items(cache: Path) -> list[dict[str, Any]]:
    names = emoji_names(cache)
    files: dict[str, list[tuple[Path, str, str]]] = collections.defaultdict(list)
    for spec, (folder, vendor, licence) in EMOJI_IMAGES.items():
        for path in sorted((npm_package(cache, spec) / folder).iterdir()):
            files[emoji_key(path.stem)].append((path, vendor, licence))
    items = []
    for entry in names:
        query, captions = emoji_captions(entry)
        for path, vendor, licence in files.get(emoji_key(entry["hexcode"]), []):
            items.append(
                {
                    "id": f"emoji/{vendor}/{path.name}",
                    "path": str(path),
                    "source": f"emoji {vendor} (npm)",
                    "query": query,
                    "captions": captions,
                    "group": "emoji:" + emoji_key(entry["hexcode"]),
                    "licence": licence,
                }
            )
    return items


def render_svg(svg: str, target: Path) -> bool:
    """An SVG rendered to a PNG file once; False if resvg cannot draw it."""
    if target.is_file():
        return True
    try:
        import resvg_py
    except ImportError:
        sys.exit("resvg-py renders the icon sets: pip install -e '.[train]'")
    try:
        png = resvg_py.svg_to_bytes(svg_string=svg, width=RENDER_PX, height=RENDER_PX)
    except ValueError:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(bytes(png))
    return True


def iconify_items(cache: Path) -> list[dict[str, Any]]:
    """Emoji designs (grouped with the emoji by code point) and named icons."""
    names = emoji_names(cache)
    by_key = {emoji_key(e["hexcode"]): e for e in names}
    by_slug = {slug(e["label"]).replace("-", ""): e for e in names}
    emoji, icons = [], []
    for name, (version, fam) in ICONIFY.items():
        root = npm_package(cache, f"@iconify-json/{name}@{version}") / "package"
        data = json.loads((root / "icons.json").read_text())
        licence = json.loads((root / "info.json").read_text())["license"]["spdx"]
        chars = json.loads((root / "chars.json").read_text()) if fam == "emoji" else {}
        code_of = {icon: hexcode for hexcode, icon in chars.items()}
        for icon, body in sorted(data["icons"].items()):
            width = body.get("width", data.get("width", 16))
            height = body.get("height", data.get("height", 16))
            svg = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
                   f'color="#000">{body["body"]}</svg>')  # fmt: skip
            item = {"id": f"iconify/{name}/{icon}", "source": f"Iconify {name} {version} (npm)",
                    "licence": licence}  # fmt: skip
            if fam == "emoji":
                code = code_of.get(icon, "")
                if SKIN_TONES & set(code.split("-")):
                    continue
                # Most sets have no code points: their names are the CLDR names, slugged
                # (with or without hyphens, "flag-for-x" for "flag-x").
                compact = re.sub(r"^flag-for-", "flag-", icon).replace("-", "")
                entry = by_key.get(emoji_key(code)) if code else by_slug.get(compact)
                stem = SKIN_SUFFIX.sub("", icon)
                if (
                    entry is None
                    and stem != icon
                    and (stem in data["icons"] or stem.replace("-", "") in by_slug)
                ):
                    continue  # a skin-tone variant of a base design
                if entry is not None:
                    query, captions = emoji_captions(entry)
                    group = "emoji:" + emoji_key(entry["hexcode"])
                else:  # a design's own extra picture, named but with no code point
                    query = words(icon)
                    captions = [query]
                    group = "emoji-name:" + re.sub(r"[\d\s]+", " ", query).strip()
            else:
                query = " ".join(w for w in words(icon).split() if w not in STYLE_WORDS)
                query = query or words(icon)
                captions, group = [query, f"{query}. {words(name)} icon"], "icon:" + query
            target = cache / "iconify" / name / f"{icon}.png"
            if not render_svg(svg, target):
                continue
            item.update(path=str(target), query=query, captions=captions, group=group)
            (emoji if fam == "emoji" else icons).append(item)
    return emoji + icons


def write_vocabulary(cache: Path, repo: Path) -> Path:
    """The words the adapter explains drawings with (``mms query --explain``): every emoji's
    CLDR name, English, from ``emojibase-data`` (MIT). Package data, a few tens of kB."""
    words_ = sorted({emoji_caption(e["label"]) for e in emoji_names(cache)})
    out = repo / "mmsearch_cli" / "data" / "drawing_words.json"
    payload = {"source": f"CLDR emoji names from npm {EMOJI_NAMES} (MIT)", "words": words_}
    out.write_text(json.dumps(payload, ensure_ascii=False, indent=0) + "\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument("--no-kenney", action="store_true", help="leave out Kenney sprites")
    parser.add_argument("--no-emoji", action="store_true", help="leave out the emoji")
    args = parser.parse_args()
    cache: Path = args.cache_dir.expanduser().resolve()
    repo = Path(__file__).resolve().parent.parent
    if cache.is_relative_to(repo):
        sys.exit("the cache must be outside the repository: training data is never committed")
    fetch(cache)
    items = openclipart_items(cache)
    if not args.no_kenney:
        items += kenney_items(cache)
    if not args.no_emoji:
        items += emoji_items(cache)
        items += iconify_items(cache)
        print(f"vocabulary -> {write_vocabulary(cache, repo)}", file=sys.stderr)
    with (cache / "items.jsonl").open("w") as fh:
        for item in items:
            fh.write(json.dumps(item, ensure_ascii=False) + "\n")
    by_source = collections.Counter(i["source"] for i in items)
    print(f"{len(items)} pictures, {len({i['group'] for i in items})} groups -> "
          f"{cache / 'items.jsonl'}: {dict(by_source)}")  # fmt: skip


if __name__ == "__main__":
    main()

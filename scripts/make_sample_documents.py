"""Write sample_data/documents/: short documents in the formats mms reads (PDF, scanned
PDF, DOCX, ODT, EPUB, HTML, RTF), made by real tools, and their labelled queries.

Usage: python scripts/make_sample_documents.py   (needs `pandoc` and `pip install reportlab`)

The texts are written for this project and dedicated to the public domain (CC0 1.0). The
outputs are committed, so neither tool is needed to test or run mms. DOCX, ODT, EPUB, HTML
and RTF come from pandoc (Markdown in), the born-digital PDF from reportlab, and the
scanned PDF is a page of text drawn with Pillow and saved as an image-only PDF.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

OUT = Path(__file__).resolve().parent.parent / "sample_data" / "documents"
CC0 = "Written for the mms sample data and dedicated to the public domain (CC0 1.0)."

LEASE = (
    """% Residential Lease Agreement
% Maple Street Housing Co-operative

# Parties and premises

This lease agreement is made between the Maple Street Housing Co-operative, the landlord,
and the tenant named below. The landlord rents to the tenant the two-bedroom flat at
14 Maple Street, third floor, together with one bicycle space in the basement.

# Rent and deposit

The monthly rent is 940 euros, due on the first working day of each month by bank
transfer. The tenant pays a security deposit of two months' rent before moving in. The
deposit is returned within thirty days after the keys are handed back, less the cost of
repairing damage beyond ordinary wear and tear.

# Notice and ending the lease

Either party may end the lease with three months' written notice. The tenant may not
sublet the flat without the landlord's written consent. Pets are allowed if they do not
disturb the neighbours.

"""
    + CC0
)

CARDAMOM = (
    """% Swedish Cardamom Buns

# Ingredients

For twelve buns: 500 g of flour, 75 g of sugar, 2 teaspoons of freshly ground cardamom
seeds, 25 g of fresh yeast, 250 ml of lukewarm milk, 100 g of soft butter and a pinch of
salt. For the filling, butter, brown sugar and more cardamom.

# Method

Dissolve the yeast in the milk, stir in the sugar, the cardamom and the flour, and knead
in the butter until the dough is smooth and elastic. Let it rise for an hour under a
cloth. Roll it out, spread the filling, fold it in three and cut strips that you twist
into knots. Let the knots rise again, brush them with beaten egg and bake at 220 degrees
for about ten minutes, until golden.

"""
    + CC0
)

CONTRASTIVE = (
    """% Learning Shared Embeddings of Pictures and Captions with a Contrastive Loss

# Abstract

We study contrastive learning of a joint embedding space for images and text. An image
encoder and a text encoder are trained together so that a picture and its own caption
have similar vectors while mismatched pairs in the same batch are pushed apart, the
InfoNCE objective. Larger batches give more negatives and better retrieval.

# Experiments

On a collection of captioned photographs, recall at ten for text-to-image retrieval rises
from 41 percent with a batch of 256 to 58 percent with a batch of 4096. A learned
temperature helps, and hard negative mining gives a further two points.

"""
    + CC0
)

PRINTING = (
    """% A Short History of the Printing Press

# Chapter 1: Before the press

Before printing, books were copied by hand in monasteries and workshops, and a single
Bible could take a scribe more than a year. Woodblock printing was used in China and
Korea centuries earlier to print whole pages carved into wood.

# Chapter 2: Gutenberg's movable type

Around 1440 in Mainz, Johannes Gutenberg combined movable metal type cast in a hand
mould, an oil-based ink and a screw press adapted from wine making. His Bible of about
1455 was printed in some 180 copies.

# Chapter 3: The spread of print

By 1500 presses worked in more than two hundred European towns. Cheap pamphlets carried
news and argument, and printed books helped standardise spelling and grammar.

"""
    + CC0
)

HOUSEPLANTS = (
    """% Caring for Houseplants

# Light

Most houseplants want bright light but no direct midday sun. A fiddle-leaf fig drops its
leaves if it is moved into a dark corner; a snake plant tolerates shade.

# Watering

Water when the top two centimetres of soil are dry, and always let the pot drain:
standing water rots the roots. Water less in winter, when growth slows.

# Repotting

Repot in spring into a pot one size larger, with fresh potting compost, when roots
circle the pot or grow out of the drainage holes.

"""
    + CC0
)

ASTRONOMY = (
    """% Observing the Moons of Jupiter

# With binoculars

Through steady binoculars Jupiter shows up to four small points of light in a line: the
Galilean moons Io, Europa, Ganymede and Callisto, first seen by Galileo in January 1610.
Their positions change from night to night as they orbit the planet.

# With a small telescope

A small telescope also shows the planet's cloud belts and, at times, the shadow of a moon
crossing the disc. Note the time and draw the moons' positions to follow their orbits.

"""
    + CC0
)

BICYCLE_PAGES = [
    (
        "Bicycle Maintenance Manual",
        [
            "Chapter 1. Cleaning and lubricating the chain.",
            "A clean chain shifts smoothly and lasts longer. Wipe the chain with a rag, scrub it "
            "with a brush and a degreaser, rinse and let it dry. Apply one drop of chain oil to "
            "each roller while turning the pedals backwards, then wipe off the excess so that "
            "dirt does not stick to it. Replace the chain when a chain checker shows 0.5 percent "
            "wear, before it wears out the cassette.",
        ],
    ),
    (
        "Bicycle Maintenance Manual",
        [
            "Chapter 2. Adjusting the rear derailleur.",
            "If the chain hesitates when shifting to a larger sprocket, turn the barrel adjuster "
            "anticlockwise by a quarter turn to add cable tension. Set the limit screws so that "
            "the chain cannot fall off into the spokes or the frame. Check the derailleur hanger "
            "is straight: a bent hanger makes precise indexing impossible.",
        ],
    ),
    (
        "Bicycle Maintenance Manual",
        [
            "Chapter 3. Fixing a flat tyre.",
            "Remove the wheel, lever one side of the tyre off the rim and pull out the inner "
            "tube. Find the puncture by pumping some air in and listening, then feel inside the "
            "tyre for the thorn or glass that caused it. Patch the tube or fit a new one, seat "
            "the tyre and inflate it to the pressure written on the sidewall.",
        ],
    ),
]

SCANNED = [
    "NOTICE TO RESIDENTS",
    "",
    "The water supply to Birch Lane will be",
    "shut off on Tuesday from 9 am to 3 pm",
    "while the water main is replaced.",
    "",
    "Please store drinking water in advance.",
    "We apologise for the inconvenience.",
    "",
    "Town Water Department",
]

QUERIES = [
    ("d01", "the lease agreement", {"lease_agreement.docx": 2}),
    ("d02", "how much is the security deposit for the flat", {"lease_agreement.docx": 2}),
    ("d03", "the recipe with cardamom", {"cardamom_buns.odt": 2}),
    ("d04", "the paper about contrastive learning", {"contrastive_embeddings.html": 2}),
    ("d05", "InfoNCE batch size and recall", {"contrastive_embeddings.html": 2}),
    ("d06", "Gutenberg movable type", {"printing_press.epub": 2}),
    ("d07", "how often to water a fiddle-leaf fig", {"houseplants.rtf": 2}),
    ("d08", "how to adjust the rear derailleur", {"bicycle_manual.pdf": 2}),
    ("d09", "fixing a puncture in an inner tube", {"bicycle_manual.pdf": 2}),
    ("d10", "when will the water be shut off", {"water_notice_scan.pdf": 2}),
    ("d11", "the moons of Jupiter through binoculars", {"jupiter_moons.html": 2}),
]


def pandoc(markdown: str, dest: Path, *extra: str) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".md", delete=False) as fh:
        fh.write(markdown)
    subprocess.run(["pandoc", fh.name, "-s", "-o", str(dest), *extra], check=True)
    Path(fh.name).unlink()


def html_with_navigation(markdown: str, dest: Path) -> None:
    """A web page as sites write them: navigation, a cookie banner and a footer around
    the article, which a main-text extractor should leave out."""
    pandoc(markdown, dest)
    page = dest.read_text()
    nav = (
        '<nav><a href="/">Home</a> | <a href="/shop">Shop</a> | <a href="/login">Log in'
        "</a> | Subscribe to our newsletter for weekly deals</nav>\n"
        '<div class="cookie">We use cookies to improve your experience. Accept all.</div>\n'
    )
    footer = "<footer>Copyright notice. Privacy policy. Terms of service. Sitemap.</footer>\n"
    page = page.replace("<body>\n", "<body>\n" + nav, 1).replace("</body>", footer + "</body>")
    dest.write_text(page)


def bicycle_pdf(dest: Path) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(dest), pagesize=A4)
    pdf.setTitle("Bicycle Maintenance Manual")
    pdf.setAuthor("mms sample data")
    for number, (title, (heading, body)) in enumerate(BICYCLE_PAGES, start=1):
        text = pdf.beginText(60, 780)
        text.setFont("Helvetica-Bold", 14)
        text.textLine(f"{title} - page {number}")
        text.setFont("Helvetica-Bold", 12)
        text.textLine("")
        text.textLine(heading)
        text.setFont("Helvetica", 11)
        line = ""
        for word in [*body.split(), "", CC0]:
            if len(line) + len(word) > 85:
                text.textLine(line)
                line = ""
            line = f"{line} {word}".strip()
        text.textLine(line)
        pdf.drawText(text)
        pdf.showPage()
    pdf.save()


def scanned_pdf(dest: Path) -> None:
    """A letter as a scanner gives it: one grey page image, no text layer."""
    page = Image.new("L", (1240, 1754), 250)  # A4 at 150 dpi
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=44)
    y = 200
    for line in SCANNED:
        draw.text((150, y), line, fill=25, font=font)
        y += 70
    page.save(dest, "PDF", resolution=150.0)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    pandoc(LEASE, OUT / "lease_agreement.docx")
    pandoc(CARDAMOM, OUT / "cardamom_buns.odt")
    html_with_navigation(CONTRASTIVE, OUT / "contrastive_embeddings.html")
    pandoc(PRINTING, OUT / "printing_press.epub", "--epub-chapter-level=1")
    pandoc(HOUSEPLANTS, OUT / "houseplants.rtf")
    pandoc(ASTRONOMY, OUT / "jupiter_moons.html")
    bicycle_pdf(OUT / "bicycle_manual.pdf")
    scanned_pdf(OUT / "water_notice_scan.pdf")
    with (OUT / "queries.jsonl").open("w") as fh:
        for qid, text, relevant in QUERIES:
            fh.write(json.dumps({"id": qid, "text": text, "relevant": relevant}) + "\n")
    (OUT / "README.md").write_text(
        "Documents in the formats mms reads, made by `scripts/make_sample_documents.py` "
        "(pandoc, reportlab, Pillow) from texts written for this project. " + CC0 + "\n"
        "`queries.jsonl` labels which document answers each query (paths relative to "
        "this folder).\n"
    )


if __name__ == "__main__":
    main()

"""Face counting (MTCNN on onnxruntime) on real photos from the shared corpus.

The weights come from the pinned facenet-pytorch wheel (fetched into MMS_MODEL_DIR; the
tests are skipped without PyPI access) and are exported to ONNX on first use. Faces are
real: the mariachi photo's players, alone, side by side, or shrunk on a blank canvas.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image

from mmsearch_cli.decoders.faces import MIN_HEIGHT, FaceDetector, shared_detector
from mmsearch_cli.errors import ModelUnavailableError
from mmsearch_cli.models import mtcnn, wheels
from mmsearch_cli.models.export import MIN_COSINE
from tests.conftest import CORPUS

IMAGES = CORPUS / "images"
MARIACHI = IMAGES / "world_music" / "mexico.webp"  # five players' faces, 1024 x 680
OPERA = IMAGES / "world_music" / "italy.webp"  # two bare faces among masked singers
# Regions of MARIACHI with exactly one face: the laughing guitarist, the violinist.
GUITARIST = (740, 150, 1024, 680)
VIOLINIST = (0, 0, 340, 460)
GUITARIST_FACE = (796, 262, 967, 456)  # his face box, to paste elsewhere
# No people: landscapes, animals, objects. The scale's keypad and the drums' lacing are
# the corpus's two face-like patches that O-Net scores 0.95+.
NO_PEOPLE = [
    "monuments/france/montStMichel.webp",
    "renewable_energy/windmill.webp",
    "farm_animals/cow.jpg",
    "farm_animals/cat.webp",
    "farm_animals/owl.webp",
    "world_animals/koala.jpg",
    "world_animals/jaguar.webp",
    "tools/hammer1.webp",
    "household_objects/weighingMachine.webp",
    "world_music/africa.webp",
]

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="needs ../shared/corpus")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MMS_MODEL_DIR (conftest sets one) with the MTCNN weights fetched into it."""
    env = os.environ.get("MMS_MODEL_DIR")
    path = Path(env) if env else tmp_path_factory.mktemp("models")
    try:
        wheels.fetch(path, mtcnn.ASSET)
    except ModelUnavailableError as exc:
        if "could not download" in exc.message:
            pytest.skip(f"facenet-pytorch wheel not downloadable (no PyPI access?): {exc}")
        raise
    return path


@pytest.fixture(scope="module")
def detector(model_dir: Path) -> FaceDetector:
    return shared_detector(model_dir)


def photo(rel: str | Path) -> Image.Image:
    with Image.open(IMAGES / rel) as img:
        return img.convert("RGB")


def test_the_export_matches_torch_and_needs_the_fetched_weights(
    model_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(ModelUnavailableError, match="mtcnn-facenet"):
        mtcnn.export_mtcnn(tmp_path)  # nothing fetched there
    (tmp_path / mtcnn.ASSET).symlink_to(wheels.asset_dir(model_dir, mtcnn.ASSET))
    out = mtcnn.export_mtcnn(tmp_path)  # refuses to publish below MIN_COSINE
    assert mtcnn.is_exported(out)
    meta = json.loads((out / "meta.json").read_text())
    assert set(meta["min_cosine"]) == set(mtcnn.NETS)
    assert min(meta["min_cosine"].values()) >= MIN_COSINE


def test_a_photo_of_one_player_counts_one_face(detector: FaceDetector) -> None:
    for region in (GUITARIST, VIOLINIST):
        img = photo(MARIACHI).crop(region)
        assert detector.count(img) == 1, region
    faces = detector.detect(photo(MARIACHI).crop(GUITARIST))
    x0, y0, x1, y1 = faces[0].box  # his face, in the crop's pixels
    assert 40 < x0 < 90 and 80 < y0 < 140 and 200 < x1 < 250 and 270 < y1 < 330
    assert faces[0].probability > 0.99


def test_a_band_and_a_stage_count_several_faces(detector: FaceDetector) -> None:
    assert detector.count(photo(MARIACHI)) == 5
    assert detector.count(photo(OPERA)) >= 2  # the gold masks may or may not count


def test_two_players_pasted_side_by_side_count_two(detector: FaceDetector) -> None:
    band = photo(MARIACHI)
    left, right = band.crop(VIOLINIST), band.crop(GUITARIST)
    canvas = Image.new("RGB", (left.width + right.width, 530), (128, 128, 128))
    canvas.paste(left, (0, 0))
    canvas.paste(right, (left.width, 0))
    assert detector.count(canvas) == 2


@pytest.mark.parametrize("rel", NO_PEOPLE)
def test_photos_without_people_count_no_face(detector: FaceDetector, rel: str) -> None:
    assert detector.count(photo(rel)) == 0


@pytest.mark.parametrize(("share", "expected"), [(0.02, 0), (0.15, 1)])
def test_a_face_counts_only_if_big_enough_to_matter(
    detector: FaceDetector, share: float, expected: int
) -> None:
    """The same real face on a big blank canvas: 2 % of its height is a face in a far
    crowd (not counted); 15 % is a subject."""
    face = photo(MARIACHI).crop(GUITARIST_FACE)
    canvas = Image.new("RGB", (2000, 1500), (235, 235, 235))
    height = round(share * canvas.height)
    face = face.resize((round(face.width * height / face.height), height), Image.Resampling.LANCZOS)
    canvas.paste(face, (900, 600))
    assert share < MIN_HEIGHT or share > 2 * MIN_HEIGHT
    assert detector.count(canvas) == expected


def test_pictures_too_small_or_empty_have_no_faces(detector: FaceDetector) -> None:
    assert detector.detect(Image.new("RGB", (8, 300), (200, 150, 120))) == []
    assert detector.count(Image.new("L", (640, 480), 90)) == 0

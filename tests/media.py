"""Real test media (photos and clips of real people), fetched once from Debian's `opencv-doc`.

No picture of a person in the tests is synthesised: they come from OpenCV's own sample
data, which Debian packages as `opencv-doc`. The first call downloads the package with
`apt-get download` (a package registry, which CI reaches) and unpacks only the files
below into `<repo>/.cache/media` (gitignored). Later calls, and other test processes
running at the same time, find them there; a lock file serialises the first download.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "opencv-doc"
DATA_DIR = "usr/share/doc/opencv-doc/examples/data"
FILES = ("messi5.jpg", "vtest.avi", "basketball1.png")
REPO = Path(__file__).resolve().parents[1]
# The original TFLite models that models/pose/*.onnx were converted from (ONNX-vs-TFLite test).
MEDIAPIPE_PIN = "mediapipe==0.10.14"
MEDIAPIPE_TFLITE = {
    "pose_detection.tflite": "mediapipe/modules/pose_detection/pose_detection.tflite",
    "pose_landmark_full.tflite": "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
}


class MediaUnavailable(RuntimeError):
    """The test media cannot be had here (no apt, no registry); the message says what to do."""


def cache_dir() -> Path:
    return Path(os.environ.get("ENGINE_TEST_MEDIA") or REPO / ".cache" / "media")


def media_dir() -> Path:
    """The folder holding every name in FILES, fetching them on first use."""
    cache = cache_dir()
    if _complete(cache):
        return cache
    installed = Path("/") / DATA_DIR  # opencv-doc installed system-wide: copy, no download
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache.parent / f".{cache.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second process waits here, then finds the files
        if _complete(cache):
            return cache
        with tempfile.TemporaryDirectory(dir=cache.parent) as tmp_name:
            tmp = Path(tmp_name)
            source = installed if _complete(installed) else _unpack(_download(tmp), tmp / "root") / DATA_DIR
            for name in FILES:
                shutil.copyfile(source / name, tmp / name)
                os.replace(tmp / name, cache / name)  # atomic: readers never see half a file
    return cache


def media_path(name: str) -> Path:
    if name not in FILES:
        raise KeyError(f"{name!r} is not one of the test media {FILES}")
    return media_dir() / name


def mediapipe_tflite(name: str) -> Path:
    """One of MEDIAPIPE_TFLITE, taken from the pinned wheel (`pip download --no-deps`, ~36 MB, once)."""
    if name not in MEDIAPIPE_TFLITE:
        raise KeyError(f"{name!r} is not one of {tuple(MEDIAPIPE_TFLITE)}")
    folder = cache_dir() / "mediapipe-0.10.14"
    path = folder / name
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / ".mediapipe.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.is_file():
            return path
        with tempfile.TemporaryDirectory(dir=folder.parent) as tmp_name:
            tmp = Path(tmp_name)
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version",
                   "3.11", "--platform", "manylinux_2_17_x86_64", "-d", str(tmp), MEDIAPIPE_PIN]
            result = subprocess.run(cmd, capture_output=True, text=True)
            wheels = sorted(tmp.glob("mediapipe-*.whl"))
            if result.returncode != 0 or not wheels:
                raise MediaUnavailable(f"`pip download {MEDIAPIPE_PIN}` failed (needs pip and PyPI): "
                                       f"{result.stderr.strip().splitlines()[-1:]}")
            with zipfile.ZipFile(wheels[0]) as z:
                for member_name, member in MEDIAPIPE_TFLITE.items():
                    (tmp / member_name).write_bytes(z.read(member))
                    os.replace(tmp / member_name, folder / member_name)
    return path


def _complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in FILES)


def _download(tmp: Path) -> Path:
    if shutil.which("apt-get") is None:
        raise MediaUnavailable(
            f"apt-get not found: install Debian's {PACKAGE} package elsewhere and point "
            f"ENGINE_TEST_MEDIA at a folder holding {', '.join(FILES)}")
    for attempt in ("download", "update-then-download"):
        if attempt == "update-then-download":
            subprocess.run(["apt-get", "update"], cwd=tmp, capture_output=True)
        result = subprocess.run(["apt-get", "download", PACKAGE], cwd=tmp, capture_output=True, text=True)
        debs = sorted(tmp.glob(f"{PACKAGE}_*.deb"))
        if result.returncode == 0 and debs:
            return debs[0]
    raise MediaUnavailable(
        f"`apt-get download {PACKAGE}` failed (needs root or apt access and Debian's package "
        f"registry): {result.stderr.strip().splitlines()[-1:] or result.returncode}")


def _unpack(deb: Path, root: Path) -> Path:
    """Only the few files needed: the package holds ~95 MB of documentation besides."""
    root.mkdir()
    members = [f"./{DATA_DIR}/{name}" for name in FILES]
    tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    extract = subprocess.run(["tar", "-x", "-C", str(root), *members], stdin=tar.stdout, capture_output=True, text=True)
    tar.stdout.close()
    if tar.wait() != 0 or extract.returncode != 0:
        raise MediaUnavailable(f"cannot unpack {deb.name}: {extract.stderr.strip()}")
    return root

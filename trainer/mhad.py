"""Berkeley MHAD to a dataset file: the engine's own pose backend over every Kinect sequence.

Layout: <root>/Kinect/Kin01/SXX/AYY/RZZ/kin_k01_sXX_aYY_rZZ_color_NNNNN.ppm (640x480, 30 fps).
Sequences run in parallel worker processes (spawn); each worker writes one cache `.npz` per
sequence (keypoints float32[T, 18, 3]), so a rerun skips what is cached and nothing large
crosses a process boundary. A sequence that is absent (S04/A08/R05 does not exist) or has no
frames is reported and skipped. Per frame the person kept is the tracked one kept before,
else the largest, most confident one.
"""
from __future__ import annotations

import multiprocessing
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np

from engine.errors import DatasetError
from engine.synthetic import ACTIONS
from pose.coco import N_JOINTS
from trainer.dataset import from_sequences, save
from trainer.progress import Progress

FPS = 30.0
SUBJECTS = range(1, 13)
REPETITIONS = range(1, 6)
CACHE_VERSION = 1


@dataclass(frozen=True)
class Job:
    subject: int
    action: int  # 1-based, as in the folder names
    repetition: int
    folder: str
    cache: str

    @property
    def id(self) -> str:
        return f"S{self.subject:02d}/A{self.action:02d}/R{self.repetition:02d}"


@dataclass(frozen=True)
class PrepareResult:
    path: Path
    n_sequences: int
    n_cached: int
    missing: list[str] = field(default_factory=list)


def frame_paths(job: Job, kinect: int = 1) -> list[Path]:
    pattern = f"kin_k{kinect:02d}_s{job.subject:02d}_a{job.action:02d}_r{job.repetition:02d}_color_*.ppm"
    return sorted(Path(job.folder).glob(pattern))


def list_jobs(root: str | Path, cache_dir: str | Path, kinect: int = 1) -> tuple[list[Job], list[str]]:
    """Every (subject, action, repetition) of the layout with frames, and the ids of those without."""
    base = Path(root) / "Kinect" / f"Kin{kinect:02d}"
    if not base.is_dir():
        raise DatasetError(f"MHAD root {root}: no folder {base}; pass the folder that holds Kinect/Kin0{kinect}/S01/...")
    jobs, missing = [], []
    for s in SUBJECTS:
        for a in range(1, len(ACTIONS) + 1):
            for r in REPETITIONS:
                folder = base / f"S{s:02d}" / f"A{a:02d}" / f"R{r:02d}"
                job = Job(s, a, r, str(folder), str(Path(cache_dir) / f"S{s:02d}_A{a:02d}_R{r:02d}.npz"))
                if not folder.is_dir() or not frame_paths(job, kinect):
                    missing.append(f"{job.id}: no frames in {folder}")
                else:
                    jobs.append(job)
    return jobs, missing


def _cached(job: Job, backend: str) -> np.ndarray | None:
    try:
        with np.load(job.cache, allow_pickle=False) as data:
            if int(data["version"]) != CACHE_VERSION or str(data["backend"]) != backend:
                return None
            return np.asarray(data["keypoints"], np.float32)
    except (OSError, KeyError, ValueError):
        return None


def pick_person(keypoints: np.ndarray, boxes: np.ndarray, tracks: np.ndarray, previous: int) -> tuple[np.ndarray, int]:
    """One person's float32[18, 3] (zeros if nobody) and their track id (-1 if none)."""
    if not len(keypoints):
        return np.zeros((N_JOINTS, 3), np.float32), previous
    same = np.flatnonzero(tracks == previous) if previous >= 0 else np.zeros(0, np.int64)
    if len(same):
        i = int(same[0])
    else:
        area = np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)
        conf = keypoints[:, :, 2].mean(axis=1)
        i = int(np.argmax(area * conf))
    return keypoints[i].astype(np.float32), int(tracks[i])


# ------------------------------------------------------------------ worker process state
_STATE: dict = {}


def _init_worker(options: dict, kinect: int) -> None:
    import cv2

    from pose import PoseOptions, create_backend

    cv2.setNumThreads(1)
    _STATE["backend"] = create_backend(PoseOptions(**options))
    _STATE["name"] = options.get("backend", "")
    _STATE["kinect"] = kinect


def _run_job(job: Job) -> tuple[str, int, str | None]:
    """Pose over one sequence, written to its cache; returns (id, frames, error or None)."""
    import cv2

    try:
        from pose.tracking import Tracker
    except ImportError:  # the tracker is optional: without it, the largest person per frame
        Tracker = None  # type: ignore[assignment]

    try:
        backend = _STATE["backend"]
        tracker = Tracker() if Tracker is not None else None
        stream = f"mhad:{job.id}"
        paths = frame_paths(job, _STATE["kinect"])
        out = np.zeros((len(paths), N_JOINTS, 3), np.float32)
        previous = -1
        for seq, path in enumerate(paths):
            frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if frame is None:
                return job.id, 0, f"cannot read frame {path}"
            people = backend.estimate(frame, stream=stream, seq=seq)
            if tracker is not None:
                people = tracker.update(people, (frame.shape[1], frame.shape[0]))
            out[seq], previous = pick_person(people.keypoints, people.boxes, people.tracks, previous)
        fd, tmp = tempfile.mkstemp(prefix=Path(job.cache).stem, suffix=".npz", dir=Path(job.cache).parent)
        os.close(fd)
        try:
            np.savez(tmp, keypoints=out, version=np.int64(CACHE_VERSION), backend=np.array(_STATE["name"]))
            os.replace(tmp, job.cache)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return job.id, len(paths), None
    except Exception as exc:  # one bad sequence is reported, the rest goes on
        return job.id, 0, f"{type(exc).__name__}: {exc}"


def prepare_mhad(
    root: str | Path,
    out: str | Path,
    backend: str = "blazepose",
    workers: int = 2,
    cache_dir: str | Path | None = None,
    weights_dir: str | None = None,
    kinect: int = 1,
    progress: TextIO | None = None,
) -> PrepareResult:
    """Run pose over the MHAD layout under `root` and write the dataset file `out`."""
    from pose import PoseOptions, create_backend

    cache = Path(cache_dir) if cache_dir else Path(str(out) + ".cache")
    cache.mkdir(parents=True, exist_ok=True)
    jobs, missing = list_jobs(root, cache, kinect)
    if not jobs:
        raise DatasetError(f"MHAD root {root}: no sequence with frames under Kinect/Kin{kinect:02d}/")
    options = asdict(PoseOptions(backend=backend, weights_dir=weights_dir, max_people=2, threads=1))
    # Fail here, once, with the backend's own message (missing weights...), not in every worker.
    create_backend(PoseOptions(**options)).close()

    todo = [job for job in jobs if _cached(job, backend) is None]
    n_cached = len(jobs) - len(todo)
    bar = Progress(len(jobs), f"pose ({backend}, {workers} workers)", progress)
    bar.advance(n_cached, "cached")
    failed = []
    if todo:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(max(1, min(workers, len(todo))), initializer=_init_worker, initargs=(options, kinect)) as pool:
            for job_id, _, error in pool.imap_unordered(_run_job, todo):
                if error:
                    failed.append(f"{job_id}: {error}")
                bar.advance(1, job_id)
    sequences, labels, subjects, ids = [], [], [], []
    for job in jobs:
        kp = _cached(job, backend)
        if kp is None or not len(kp):
            continue
        sequences.append(kp)
        labels.append(job.action - 1)
        subjects.append(job.subject)
        ids.append(job.id)
    if not sequences:
        raise DatasetError(f"MHAD root {root}: every sequence failed; first error: {failed[0] if failed else 'none'}")
    path = save(from_sequences(sequences, labels, ACTIONS, subjects, FPS, ids=ids), out)
    return PrepareResult(path, len(sequences), n_cached, missing + failed)

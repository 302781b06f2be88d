"""Berkeley MHAD to a dataset file: the engine's own pose backend over every Kinect sequence.

The layout and ids come from `engine.sources.mhad`, as for the `mhad:` source.
Sequences run in parallel worker processes (subprocesses fed JSON); each worker writes one cache `.npz` per
sequence (keypoints float32[T, 18, 3]), so a rerun skips what is cached and nothing large
crosses a process boundary. A sequence that is absent (S04/A08/R05 does not exist) or has no
frames is reported and skipped. Per frame the person kept is the tracked one kept before,
else the largest, most confident one.
"""
from __future__ import annotations

import json
import selectors
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

import numpy as np

from engine.paths import write_atomically
from engine.errors import DatasetError
from engine.sources import mhad
from engine.sources.mhad import ACTIONS, FPS
from pose.coco import N_JOINTS
from trainer.dataset import from_sequences, save
from trainer.progress import Progress

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
        return mhad.sequence_id(self.subject, self.action, self.repetition)


@dataclass(frozen=True)
class PrepareResult:
    path: Path
    n_sequences: int
    n_cached: int
    missing: list[str] = field(default_factory=list)


def frame_paths(job: Job, kinect: int = 1) -> list[Path]:
    return mhad.frame_paths(Path(job.folder).parents[2], kinect, job.subject, job.action, job.repetition)


def list_jobs(root: str | Path, cache_dir: str | Path, kinect: int = 1) -> tuple[list[Job], list[str]]:
    """Every (subject, action, repetition) of the layout with frames, and the ids of those without."""
    base = mhad.kinect_dir(str(root), kinect)
    jobs, missing = [], []
    for s, a, r in mhad.all_sequences():
        folder = mhad.sequence_dir(base, s, a, r)
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


# ------------------------------------------------------------------ worker processes
# Workers are plain subprocesses (`python -m trainer.mhad --worker`) that get their jobs as JSON
# lines on stdin and answer one JSON line per sequence: no pickle crosses a process boundary.


def _run_job(backend, job: Job, kinect: int, backend_name: str) -> tuple[str, int, str | None]:
    """Pose over one sequence, written to its cache; returns (id, frames, error or None)."""
    import cv2

    from pose.tracking import Tracker

    try:
        tracker = Tracker()
        stream = f"mhad:{job.id}"
        paths = frame_paths(job, kinect)
        out = np.zeros((len(paths), N_JOINTS, 3), np.float32)
        previous = -1
        for seq, path in enumerate(paths):
            frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if frame is None:
                return job.id, 0, f"cannot read frame {path}"
            people = tracker.update(backend.estimate(frame, stream=stream, seq=seq), (frame.shape[1], frame.shape[0]))
            out[seq], previous = pick_person(people.keypoints, people.boxes, people.tracks, previous)
        write_atomically(job.cache, lambda tmp: np.savez(tmp, keypoints=out, version=np.int64(CACHE_VERSION),
                                                         backend=np.array(backend_name)), suffix=".npz")
        return job.id, len(paths), None
    except Exception as exc:  # one bad sequence is reported, the rest goes on
        return job.id, 0, f"{type(exc).__name__}: {exc}"


def _worker_main() -> int:
    """Worker process: first stdin line the options, then one job per line; one result line per job."""
    import cv2

    from pose import PoseOptions, create_backend

    cv2.setNumThreads(1)
    setup = json.loads(sys.stdin.readline())
    backend = create_backend(PoseOptions(**setup["options"]))
    for line in sys.stdin:
        job = Job(**json.loads(line))
        job_id, frames, error = _run_job(backend, job, setup["kinect"], setup["options"]["backend"])
        print(json.dumps({"id": job_id, "frames": frames, "error": error}), flush=True)
    backend.close()
    return 0


def _run_workers(todo: list[Job], workers: int, options: dict, kinect: int) -> Iterator[dict]:
    """Jobs dealt round-robin to `workers` subprocesses; yields each result as it comes."""
    count = max(1, min(workers, len(todo)))
    procs = []
    for i in range(count):
        proc = subprocess.Popen([sys.executable, "-m", "trainer.mhad", "--worker"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        lines = [json.dumps({"options": options, "kinect": kinect})] + [json.dumps(asdict(j)) for j in todo[i::count]]
        proc.stdin.write("\n".join(lines) + "\n")
        proc.stdin.close()
        procs.append(proc)
    try:
        with selectors.DefaultSelector() as selector:
            for proc in procs:
                selector.register(proc.stdout, selectors.EVENT_READ)
            open_pipes = len(procs)
            while open_pipes:
                for key, _ in selector.select():
                    line = key.fileobj.readline()
                    if not line:
                        selector.unregister(key.fileobj)
                        open_pipes -= 1
                        continue
                    yield json.loads(line)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


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
    done = set()
    for result in _run_workers(todo, workers, options, kinect) if todo else ():
        done.add(result["id"])
        if result["error"]:
            failed.append(f"{result['id']}: {result['error']}")
        bar.advance(1, result["id"])
    failed += [f"{job.id}: its worker process died" for job in todo if job.id not in done]
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


if __name__ == "__main__":
    if sys.argv[1:] == ["--worker"]:
        sys.exit(_worker_main())
    sys.exit("usage: python -m trainer.mhad --worker (started by `engine prepare mhad`)")

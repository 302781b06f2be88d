"""Keypoints files: what `--keypoints-out` writes and the replay backend reads.

A keypoints file holds, per frame of one or more streams, the people found in it. Two formats,
chosen by the file name's extension; both hold the same information:

`.jsonl` (text, one line per frame, written as frames arrive, readable while being written)::

    {"stream": "video.mp4", "seq": 0, "people": [
        {"track": 3, "keypoints": [[x, y, c], ... 18 rows ...], "box": [x0, y0, x1, y1]}, ...]}

`.npz` (numpy, `np.load(..., allow_pickle=False)`; written once, atomically, on close)::

    version       int64 scalar, 1
    streams       str[S]       stream ids
    frame_stream  int32[F]     index into `streams`, per frame
    frame_seq     int64[F]     frame number within its stream
    frame_start   int64[F]     index of the frame's first person in the person arrays
    frame_count   int32[F]     people in the frame (0 is a frame where nobody was found)
    keypoints     float32[N, 18, 3]   x, y in pixels of the frame, confidence (0 = missing),
                                      COCO-18 in OpenPose order (pose.coco)
    boxes         float32[N, 4]       x0, y0, x1, y1 in pixels
    tracks        int32[N]            track id, -1 where none was given

A frame recorded with nobody in it is stored (count 0), so a reader tells "nobody there" from
"frame not recorded".
"""
from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import numpy as np

from pose.base import People, PoseError
from pose.coco import N_JOINTS

FORMAT_VERSION = 1
SUFFIXES = (".npz", ".jsonl")  # the formats, by file name extension
_NPZ_KEYS = ("streams", "frame_stream", "frame_seq", "frame_start", "frame_count", "keypoints", "boxes", "tracks")


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise PoseError(f"keypoints file {path}: unknown format {suffix or '(none)'!r}, name it *.npz or *.jsonl")
    return suffix


class KeypointsWriter:
    """Appends frames to a keypoints file; `.jsonl` is written line by line, `.npz` on close.

    Use as a context manager, or call `close()`; an `.npz` appears (atomically) only then.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._format = _format_of(self.path)
        self._closed = False
        self._frames: list[tuple[str, int, People]] = []
        self._text = None
        if self._format == ".jsonl":
            self._text = open(self.path, "w", encoding="utf-8")

    def write(self, stream: str, seq: int, people: People) -> None:
        """Records the people of frame `seq` of `stream` (an empty People records nobody)."""
        if self._closed:
            raise ValueError(f"keypoints file {self.path} is closed")
        if self._text is not None:
            record = {
                "stream": str(stream),
                "seq": int(seq),
                "people": [
                    {"track": int(t), "keypoints": k.tolist(), "box": b.tolist()}
                    for k, b, t in zip(people.keypoints, people.boxes, people.tracks)
                ],
            }
            self._text.write(json.dumps(record, separators=(",", ":")) + "\n")
            self._text.flush()
        else:
            copy = People(people.keypoints.copy(), people.boxes.copy(), people.tracks.copy())
            self._frames.append((str(stream), int(seq), copy))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._text is not None:
            self._text.close()
            return
        arrays = _pack(self._frames)
        # Write next to the target and rename: a reader never sees half a file.
        fd, tmp = _create_temporary(self.path)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def __enter__(self) -> "KeypointsWriter":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _create_temporary(target: Path) -> tuple[int, str]:
    """A new file next to `target`, with the mode any other output gets (0666 less the umask, 0644 usually).

    mkstemp would make it 0600, and the rename would carry that over: a keypoints file would then
    be private while the labels and video of the same run are not. Keypoints hold no secrets.
    """
    folder = target.parent if str(target.parent) else Path(".")
    for _ in range(100):
        tmp = folder / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), str(tmp)
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name next to {target}")


def _pack(frames: list[tuple[str, int, People]]) -> dict[str, np.ndarray]:
    streams = sorted({s for s, _, _ in frames})
    index = {s: i for i, s in enumerate(streams)}
    counts = np.array([len(p) for _, _, p in frames], np.int32)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64) if len(frames) else np.zeros(0, np.int64)
    people = [p for _, _, p in frames]
    return {
        "version": np.int64(FORMAT_VERSION),
        "streams": np.array(streams, dtype=np.str_).reshape(-1),
        "frame_stream": np.array([index[s] for s, _, _ in frames], np.int32),
        "frame_seq": np.array([q for _, q, _ in frames], np.int64),
        "frame_start": starts,
        "frame_count": counts,
        "keypoints": np.concatenate([p.keypoints for p in people]) if people else np.zeros((0, N_JOINTS, 3), np.float32),
        "boxes": np.concatenate([p.boxes for p in people]) if people else np.zeros((0, 4), np.float32),
        "tracks": np.concatenate([p.tracks for p in people]) if people else np.zeros((0,), np.int32),
    }


class KeypointsFile:
    """A keypoints file read into memory: `get(stream, seq) -> People | None`."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        fmt = _format_of(self.path)
        if not self.path.is_file():
            raise PoseError(f"keypoints file {self.path} not found: give the path of a file written with --keypoints-out")
        self._frames: dict[tuple[str, int], People] = {}
        if fmt == ".npz":
            self._read_npz()
        else:
            self._read_jsonl()
        self.streams: tuple[str, ...] = tuple(sorted({s for s, _ in self._frames}))

    def _read_npz(self) -> None:
        try:
            with np.load(self.path, allow_pickle=False) as data:
                missing = [k for k in _NPZ_KEYS if k not in data.files]
                if missing:
                    raise PoseError(f"keypoints file {self.path} lacks the key {missing[0]!r}: write it with --keypoints-out")
                a = {k: data[k] for k in _NPZ_KEYS}
        except (OSError, ValueError) as exc:
            raise PoseError(f"keypoints file {self.path} is not a readable .npz ({exc})") from exc
        kp = a["keypoints"].astype(np.float32).reshape(-1, N_JOINTS, 3)
        boxes = a["boxes"].astype(np.float32).reshape(-1, 4)
        tracks = a["tracks"].astype(np.int32).reshape(-1)
        streams = [str(s) for s in a["streams"]]
        for si, seq, start, count in zip(a["frame_stream"], a["frame_seq"], a["frame_start"], a["frame_count"]):
            sl = slice(int(start), int(start) + int(count))
            self._frames[(streams[int(si)], int(seq))] = People(kp[sl], boxes[sl], tracks[sl])

    def _read_jsonl(self) -> None:
        with open(self.path, encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    people = record["people"]
                    kp = np.array([p["keypoints"] for p in people], np.float32).reshape(-1, N_JOINTS, 3)
                    boxes = np.array([p["box"] for p in people], np.float32).reshape(-1, 4)
                    tracks = np.array([p.get("track", -1) for p in people], np.int32)
                    key = (str(record["stream"]), int(record["seq"]))
                except (ValueError, KeyError, TypeError) as exc:
                    raise PoseError(f"keypoints file {self.path}, line {line_no}: not a keypoints record ({exc})") from exc
                self._frames[key] = People(kp, boxes, tracks)

    def __len__(self) -> int:
        return len(self._frames)

    def get(self, stream: str, seq: int) -> People | None:
        """The people of frame `seq` of `stream`, or None when that frame was not recorded."""
        return self._frames.get((stream, int(seq)))

    def frames(self) -> Iterator[tuple[str, int, People]]:
        """Every recorded frame, by stream then seq."""
        for stream, seq in sorted(self._frames):
            yield stream, seq, self._frames[(stream, seq)]

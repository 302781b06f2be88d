"""The "replay" backend: keypoints that already exist, instead of a network.

Two sources, first match wins: keypoints the source carried with the frame (`synthetic:`
gives ground truth), or a keypoints file (pose.keypoints_file) written earlier with
`--keypoints-out`. It makes the whole engine runnable, and testable, without pose weights,
and lets a pose pass be computed once and reused.

The file comes from `options.replay_file` (`--replay-file`), else from the environment
variable ENGINE_REPLAY_FILE.
"""
from __future__ import annotations

import os

import numpy as np

from pose.base import People, PoseError, PoseOptions
from pose.keypoints_file import KeypointsFile

ENV_FILE = "ENGINE_REPLAY_FILE"


class ReplayBackend:
    """Returns given keypoints, or the recorded ones of (stream, seq) from a keypoints file."""

    name = "replay"

    def __init__(self, options: PoseOptions) -> None:
        self.options = options
        path = options.replay_file or os.environ.get(ENV_FILE) or None
        self.file: KeypointsFile | None = KeypointsFile(path) if path else None

    def estimate(
        self, frame_bgr: np.ndarray, stream: str = "", seq: int = -1, given: np.ndarray | None = None
    ) -> People:
        if given is not None:
            return People(np.asarray(given, np.float32))
        if self.file is None:
            raise PoseError(
                "the replay backend needs a source that carries keypoints (synthetic:) or a keypoints file "
                f"written with --keypoints-out (--replay-file PATH or {ENV_FILE}=PATH)"
            )
        people = self.file.get(stream, seq)
        if people is None and len(self.file.streams) == 1:
            # A file of one stream replays onto any stream id (the same video opened by another path).
            people = self.file.get(self.file.streams[0], seq)
        elif people is None and stream not in self.file.streams:
            raise PoseError(
                f"keypoints file {self.file.path} has no stream {stream!r}; it holds {', '.join(self.file.streams) or 'no frames'}"
            )
        # A frame the file does not hold (dropped while recording) has nobody in it.
        return People.empty() if people is None else People(people.keypoints, people.boxes, people.tracks)

    def reset(self, stream: str | None = None) -> None:
        """Nothing to forget: every frame is looked up on its own."""

    def close(self) -> None:
        self.file = None

"""A new track id starts a new classifier window: a person who leaves and comes back is labelled
afresh, only after a minimum window of their own frames, never on frames of who they were before.

The path is the live one: drawn frames -> Tracker (as render runs it) -> frame_items -> the
classify runtime with a tiny real ONNX model.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.classify.runtime import ClassifierRuntime, ClassifyOptions, frame_items
from pose.base import People
from pose.tracking import Tracker
from test_track_crossing import DARK, H, RED, W, Walker, scene

FPS = 30.0
MIN_WINDOW = 4  # model frames before a track's first label (window_model: window 8, stride 4)


def through_the_pipeline(model: Path, frames: list, tracker: Tracker) -> tuple[list[list[int]], list]:
    runtime = ClassifierRuntime(model, ClassifyOptions(min_window_s=MIN_WINDOW / FPS))
    assert runtime.contract.min_window == MIN_WINDOW
    tracks, labels = [], []
    for seq, (image, _, kp) in enumerate(frames):
        people = tracker.update(People(kp), (W, H), image)
        tracks.append([int(t) for t in people.tracks])
        items = frame_items(runtime.contract, people.keypoints)
        labels += runtime.update("cam", seq, FPS, people.tracks, items, t_capture_ns=seq)
    return tracks, labels


def test_a_person_who_left_and_came_back_gets_a_new_id_and_a_fresh_window(window_model: Path) -> None:
    # Walks out through the right border at frame 12, is back 5 frames later near where it left.
    walker = Walker(RED, DARK, 1.0, lambda t: (480 + 14 * t, 250) if t < 12 else ((600, 250) if t >= 17 else None))
    frames = scene([walker], 30, seed=11)
    tracks, labels = through_the_pipeline(window_model, frames, Tracker())
    first, back = tracks[0][0], tracks[-1][0]
    assert back != first
    back_from = next(seq for seq, ids in enumerate(tracks) if ids == [back])
    assert back_from >= 12
    mine = [label for label in labels if label.track == back]
    assert mine, "the new track was never labelled"
    # Its first label covers its own first MIN_WINDOW frames (a padded partial window), nothing earlier.
    assert (mine[0].seq_from, mine[0].seq_to) == (back_from, back_from + MIN_WINDOW - 1)
    assert all(label.seq_from >= back_from for label in mine)
    assert [label for label in labels if label.track == first][0].seq_to == MIN_WINDOW - 1


def test_with_the_id_kept_the_window_would_have_gone_on(window_model: Path) -> None:
    """The same frames with a tracker that keeps ids across the gap: a label comes at once, on old frames.

    This is what a reused id would do, and why a new id must start a new window.
    """
    walker = Walker(RED, DARK, 1.0, lambda t: (480 + 14 * t, 250) if t < 12 else ((600, 250) if t >= 17 else None))
    frames = scene([walker], 30, seed=11)
    tracks, labels = through_the_pipeline(window_model, frames, Tracker(max_distance=5.0, edge_missing=99))
    assert {t for ids in tracks for t in ids} == {0}
    back_from = next(seq for seq, (_, found, _) in enumerate(frames) if seq > 12 and found)
    after = [label for label in labels if label.seq_to >= back_from]
    assert after[0].seq_to < back_from + MIN_WINDOW - 1 and after[0].seq_from < back_from

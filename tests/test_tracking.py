"""The tracker keeps ids through motion and crossings, and gives newcomers new ids."""
from __future__ import annotations

import numpy as np
import pytest

from pose.base import People
from pose.tracking import Tracker, pose_distance

STANDING = np.array([
    [0, -140], [0, -100], [-30, -100], [-45, -50], [-55, -5], [30, -100], [45, -50], [55, -5],
    [-20, 0], [-22, 70], [-24, 140], [20, 0], [22, 70], [24, 140],
    [-8, -148], [8, -148], [-16, -144], [16, -144],
], np.float32)
FRAME = (640, 480)


def person(cx: float, cy: float, scale: float = 1.0, rng: np.random.Generator | None = None) -> np.ndarray:
    kp = np.ones((18, 3), np.float32)
    kp[:, :2] = STANDING * scale + np.float32([cx, cy])
    if rng is not None:
        kp[:, :2] += rng.normal(0, 2, (18, 2))
        kp[rng.random(18) < 0.1, 2] = 0  # a few joints missed per frame
    return kp


def run(tracker: Tracker, frames: list[list[np.ndarray]], rng: np.random.Generator) -> list[dict[int, int]]:
    """Feeds frames (each a list of people in a known order) shuffled; returns {index: id} per frame."""
    out = []
    for people in frames:
        order = rng.permutation(len(people))
        kp = np.stack([people[i] for i in order]) if people else np.zeros((0, 18, 3), np.float32)
        tracked = tracker.update(People(kp), FRAME)
        assert tracked.tracks.dtype == np.int32 and len(tracked.tracks) == len(people)
        np.testing.assert_array_equal(tracked.keypoints, kp)
        out.append({int(order[j]): int(tracked.tracks[j]) for j in range(len(people))})
    return out


def assert_stable(ids_per_frame: list[dict[int, int]], n: int) -> None:
    first = ids_per_frame[0]
    assert len(set(first.values())) == n
    for ids in ids_per_frame:
        assert ids == first


def test_two_people_crossing_keep_their_ids():
    rng = np.random.default_rng(0)
    frames = [[person(100 + 10 * t, 240, 1.0, rng), person(540 - 10 * t, 250, 0.85, rng)] for t in range(45)]
    assert_stable(run(Tracker(), frames, rng), 2)


def test_three_people_crossing_keep_their_ids():
    rng = np.random.default_rng(1)
    frames = [[
        person(80 + 12 * t, 240, 1.0, rng),
        person(560 - 12 * t, 235, 0.9, rng),
        person(320, 60 + 9 * t, 0.8, rng),
    ] for t in range(40)]
    assert_stable(run(Tracker(), frames, rng), 3)


def test_leaving_person_retired_and_newcomer_gets_new_id():
    rng = np.random.default_rng(2)
    tracker = Tracker(max_missing=5)
    first = run(tracker, [[person(200 + 5 * t, 240, 1.0, rng)] for t in range(10)], rng)
    old_id = first[-1][0]
    # Gone for longer than max_missing, then someone appears where they were heading.
    run(tracker, [[] for _ in range(8)], rng)
    assert tracker.active_ids == []
    later = run(tracker, [[person(290 + 5 * t, 240, 1.0, rng)] for t in range(5)], rng)
    assert len({ids[0] for ids in later}) == 1
    assert later[0][0] != old_id


def test_short_occlusion_keeps_the_id_and_a_second_person_gets_another():
    rng = np.random.default_rng(3)
    tracker = Tracker(max_missing=5)
    before = run(tracker, [[person(200 + 5 * t, 240, 1.0, rng)] for t in range(10)], rng)
    run(tracker, [[] for _ in range(3)], rng)
    # Reappears where constant motion predicts, and a stranger enters at the far side.
    after = run(tracker, [[person(265 + 5 * t, 240, 1.0, rng), person(560, 240, 0.9, rng)] for t in range(5)], rng)
    assert all(ids[0] == before[0][0] for ids in after)
    assert all(ids[1] == after[0][1] != before[0][0] for ids in after)


def test_distance_is_size_normalised_and_options_are_checked():
    near = person(300, 240)
    far = person(300, 240, 0.25)
    # The same relative move costs the same at both sizes.
    d_near = pose_distance(near[None], person(330, 240)[None])[0, 0]
    d_far = pose_distance(far[None], person(307.5, 240, 0.25)[None])[0, 0]
    assert d_near == pytest.approx(d_far, rel=1e-3)
    with pytest.raises(ValueError):
        Tracker(max_distance=0)
    assert len(Tracker().update(People.empty(), FRAME)) == 0


def test_a_stream_that_starts_over_goes_on_with_its_ids():
    rng = np.random.default_rng(4)
    first = Tracker()
    run(first, [[person(200, 240, 1.0, rng), person(400, 240, 1.0, rng)]], rng)
    again = Tracker(first_id=first.next_id)  # what render does when a stream's seq starts over
    ids = run(again, [[person(200, 240, 1.0, rng)]], rng)
    assert ids[0][0] == 2 and again.next_id == 3


def test_leaving_through_the_border_ends_sooner_than_vanishing_inside():
    rng = np.random.default_rng(5)
    tracker = Tracker(max_missing=10, edge_missing=2)
    # One walks out through the left border, the other stops being seen in the middle.
    run(tracker, [[person(80 - 12 * t, 240, 1.0, rng), person(320, 240, 1.0, rng)] for t in range(4)], rng)
    ended = []
    for _ in range(12):
        tracker.update(People.empty(), FRAME)
        ended.append(list(tracker.ended_ids))
    assert [i for i, e in enumerate(ended) if e] == [2, 10]

"""The shipped default classifier, run the live way (ClassifierRuntime.update frame by frame) on
held-out synthetic subjects (8-12, never trained on): it knows when it does not know, and a short
action between idle stretches still wins."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from engine.classify.runtime import UNKNOWN, ClassifierRuntime
from engine.paths import REPO_ROOT
from engine.sources import synthetic

MODEL = REPO_ROOT / "models" / "default.onnx"
NOT_AN_ACTION = {"standing", "walking", UNKNOWN}


def live_labels(runtime: ClassifierRuntime, keypoints: np.ndarray, fps: float, stream: str) -> list:
    results = []
    for seq, frame in enumerate(keypoints):
        results += runtime.update(stream, seq, fps, np.array([0], np.int32), {"keypoints": frame[None]}, seq)
    runtime.end_stream(stream)
    return results


def test_the_default_model_can_say_it_does_not_know() -> None:
    runtime = ClassifierRuntime(MODEL)
    assert {"standing", "walking"} <= set(runtime.contract.labels)
    assert runtime.contract.unknown_labels or runtime.unknown_below > 0


@pytest.mark.parametrize("activity", ["standing", "walking", "other"])
def test_people_doing_none_of_its_actions_get_no_action_label(activity: str) -> None:
    runtime = ClassifierRuntime(MODEL)
    labels: Counter[str] = Counter()
    for subject in (8, 9, 10, 11, 12):
        kp = synthetic.motion(synthetic.activity_index(activity), synthetic.make_subject(subject), 1)
        labels.update(r.label for r in live_labels(runtime, kp, 30.0, f"s{subject}"))
    n = sum(labels.values())
    share = sum(labels[k] for k in NOT_AN_ACTION) / n
    assert n > 0 and share >= 0.9, f"{activity}: {labels.most_common(5)}"


def test_a_one_second_action_between_idle_stretches_wins() -> None:
    """Standing 4 s, one MHAD action for 1 s, standing 4 s: the action is labelled while it lasts."""
    runtime = ClassifierRuntime(MODEL)
    fps = 30.0
    found = []
    for n, (subject, action) in enumerate([(8, "A02"), (9, "A05"), (10, "A07"), (11, "A04")]):
        kp, truth = synthetic.scripted_motion([("standing", 4), (action, 1), ("standing", 4)], synthetic.make_subject(subject), fps)
        name = synthetic.ACTIVITIES[synthetic.activity_index(action)]
        start, end = np.flatnonzero(truth == synthetic.activity_index(action))[[0, -1]]
        during = [r.label for r in live_labels(runtime, kp, fps, f"scene{n}") if start <= r.seq_to <= end + fps * 0.5]
        found.append(name in during)
    assert sum(found) >= 3, found

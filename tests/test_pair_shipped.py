"""The shipped pair model (models/pair_sbu.onnx) as the classify stage runs it: its contract, and two
made-up people walking towards and away from each other labelled so, live, frame by frame, and two
who just stand there getting no pair label (its `none` class)."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from engine.classify.contract import load_contract
from engine.classify.pairing import PairRuntime
from engine.classify.runtime import ClassifyOptions
from engine.paths import REPO_ROOT
from test_pair_input import person
from trainer.sbu import CLASSES

MODEL = REPO_ROOT / "models" / "pair_sbu.onnx"


def test_the_pair_model_says_what_it_is() -> None:
    contract = load_contract(MODEL)
    assert contract.input_kind == "pair" and contract.labels == CLASSES + ("none",) and contract.fps == 15.0
    assert contract.unknown_labels == ("none",)
    assert "sbu_fold1" in contract.trained_on and contract.metrics["top1_sequence"] >= 0.9
    assert MODEL.stat().st_size < 2**20 and MODEL.with_suffix(".md").is_file()


@pytest.mark.parametrize("step_px, expected", [(4.0, "approaching"), (-4.0, "departing")])
def test_two_people_walking_towards_or_away_from_each_other(step_px: float, expected: str) -> None:
    runtime = PairRuntime(MODEL, ClassifyOptions(ema=0.0))
    labels = []
    for seq in range(30):  # 2 s at 15 fps; people about 300 px tall in a 640 x 480 image
        gap = (240.0 - 2 * step_px * seq) if step_px > 0 else (90.0 - 2 * step_px * seq)
        a, b = person(320.0 - gap / 2, torso=90.0, facing=1), person(320.0 + gap / 2, torso=90.0, facing=-1)
        far = person(20.0, torso=30.0, facing=1)  # someone small and far at the edge: in no pair
        for label in runtime.update("street", seq, 15.0, np.array([8, 3, 5]), np.stack([b, far, a]), seq):
            assert label.tracks == [5, 8]
            labels.append(label.label)
    assert labels and Counter(labels).most_common(1)[0][0] == expected, labels


def test_two_people_standing_face_to_face_doing_nothing_get_no_pair_label() -> None:
    runtime = PairRuntime(MODEL, ClassifyOptions(ema=0.0))
    labels = []
    for seq in range(30):
        a, b = person(245.0, torso=90.0, facing=1), person(395.0, torso=90.0, facing=-1)
        labels += runtime.update("street", seq, 15.0, np.array([3, 5]), np.stack([a, b]), seq)
    assert runtime.pair_count() == 1  # they are a pair, followed all along
    assert labels == [], [lab.label for lab in labels]

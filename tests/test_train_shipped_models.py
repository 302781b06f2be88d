"""Every shipped classifier, run the live way (ClassifierRuntime.update frame by frame), labels
held-out synthetic subjects' sequences right: at least 4 of 5."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from engine.classify.runtime import ClassifierRuntime
from engine.classify.contract import load_contract
from engine.paths import REPO_ROOT
from trainer import synthetic_data

SHIPPED = sorted((REPO_ROOT / "models").glob("*.onnx"))
# One-person classifiers; a two-person `pair` model (tests/test_pair_shipped.py) needs two people.
ONE_PERSON = [p for p in SHIPPED if load_contract(p).input_kind != "pair"]
# (subject, action index, repetition): subjects 8-12 are never trained on; five different actions.
CASES = [(8, 1, 2), (9, 4, 4), (10, 6, 1), (11, 3, 3), (12, 9, 5)]


@pytest.fixture(scope="module")
def held_out() -> list[tuple[int, np.ndarray]]:
    cases = []
    for s, a, r in CASES:
        d = synthetic_data.build(seed=0, subjects=[s], actions=[a], repetitions=[r])
        cases.append((a, d.sequence(0)))
    return cases


def test_models_are_shipped_with_cards() -> None:
    assert (REPO_ROOT / "models" / "default.onnx") in SHIPPED
    for path in SHIPPED:
        assert path.stat().st_size < 10 * 2**20, path
        assert path.with_suffix(".md").is_file(), f"{path.name} has no card"


@pytest.mark.parametrize("path", ONE_PERSON, ids=[p.stem for p in ONE_PERSON])
def test_shipped_model_labels_held_out_subjects_live(path: Path, held_out: list[tuple[int, np.ndarray]]) -> None:
    contract = load_contract(path)
    assert contract.trained_on and "top1_sequence" in contract.metrics
    runtime = ClassifierRuntime(path)
    right = 0
    for n, (action, keypoints) in enumerate(held_out):
        stream = f"synthetic:{n}"
        labels = []
        for seq, frame in enumerate(keypoints):
            results = runtime.update(stream, seq, 30.0, np.array([0], np.int32), {"keypoints": frame[None]}, seq)
            labels += [r.label for r in results]
        runtime.end_stream(stream)
        assert labels, "no window was classified"
        voted = Counter(labels).most_common(1)[0][0]
        right += voted == contract.labels[action]
    assert right >= 4, f"{path.name}: {right}/5 held-out sequences right"

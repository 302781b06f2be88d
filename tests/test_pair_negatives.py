"""The pair model's `none` class: negative pair windows built in the trainer (trainer/pair_negatives.py)."""
from __future__ import annotations

import numpy as np
import pytest

from engine.classify.contract import expected_input_shapes
from engine.errors import DatasetError
from test_pair_input import person
from trainer.dataset import from_sequences, split_protocol
from trainer.pair_negatives import NONE, NegativeOptions, concat, negative_windows, place_pair
from trainer.sbu import CLASSES
from trainer.windows import build_windows, training_contract

TEST_Y = 4000.0  # test-set people stand here, far from any training person or negative


def sbu_like() -> object:
    """Two sets per split, every class once per set: A at x=200, B at x=330; test sets' people at y=TEST_Y."""
    sequences, labels, subjects, split, pair = [], [], [], [], []
    for s in (1, 2, 3, 4):
        y = TEST_Y if s >= 3 else 300.0
        for c in range(len(CLASSES)):
            t = 14 + 2 * c
            a = np.repeat(person(200.0, y)[None], t, axis=0)
            a[:, :, 0] += np.where(a[:, :, 2] > 0, np.linspace(0, 3 * c, t)[:, None], 0.0)
            b = np.repeat(person(330.0, y, facing=-1)[None], t, axis=0)
            first = len(sequences)
            sequences += [a, b]
            labels += [c, c]
            subjects += [s, s]
            split += ["test" if s >= 3 else "train"] * 2
            pair += [first + 1, first]
    return from_sequences(sequences, labels, CLASSES, subjects, 15.0, split=split, pair=pair)


def contract():
    return training_contract("pair", CLASSES + (NONE,), 30, 2, 15.0, 0, 10)


def test_negatives_have_the_pair_input_shape_the_none_label_and_never_a_test_set_person() -> None:
    dataset = sbu_like()
    train, test = split_protocol(dataset)
    c = contract()
    ws = negative_windows(dataset, train, c, NegativeOptions(synthetic=4, sbu_mixed=12, per_pair=3), none_label=8)
    assert len(ws) > 12
    assert ws.features.shape[1:] == tuple(expected_input_shapes(c)[0][1:]) and ws.features.dtype == np.float32
    assert np.isfinite(ws.features).all()
    assert set(ws.labels.tolist()) == {8} and c.labels[8] == NONE
    assert (ws.sequence >= len(dataset.labels)).all()  # never the id of a real sequence
    ys = ws.keypoints[..., 1][ws.keypoints[..., 2] > 0]
    assert ys.max() < TEST_Y - 500  # no person of a test set in any negative
    # the mixed SBU pairs are there: training people at their own place (hips at y=300, A at x 200..)
    assert (np.abs(ws.keypoints[..., 0, 8, 1] - 300.0) < 1e-3).any()
    # with the training windows: one set, labels 0..8
    both = concat(build_windows(dataset, train, c), ws)
    assert len(both) == len(ws) + len(build_windows(dataset, train, c)) and both.labels.max() == 8


def test_a_placed_pair_stands_half_to_one_and_a_half_body_heights_apart_facing_each_other() -> None:
    rng = np.random.default_rng(0)
    a = np.repeat(person(100.0, 200.0, torso=40.0, facing=-1)[None], 20, axis=0)
    b = np.repeat(person(500.0, 350.0, torso=70.0, facing=1)[None], 25, axis=0)
    for _ in range(20):
        pair = place_pair(a, b, rng, facing=1.0)
        assert pair.shape == (20, 2, 18, 3)
        hips = pair[0, :, [8, 11], :2].mean(axis=0)  # [2 people, (x, y)]
        height = 3.0 * 40.0  # person(): nose 1.4 torso above the hips, ankles 1.6 below
        gap = abs(hips[1, 0] - hips[0, 0]) / height
        assert 0.5 - 1e-3 <= gap <= 1.5 + 1e-3
        left, right = (0, 1) if hips[0, 0] < hips[1, 0] else (1, 0)
        assert pair[0, left, 0, 0] > pair[0, left, 1, 0] and pair[0, right, 0, 0] < pair[0, right, 1, 0]  # noses inwards


def test_penn_negatives_without_the_prepared_file_say_how_to_make_it(tmp_path) -> None:
    dataset = sbu_like()
    train, _ = split_protocol(dataset)
    with pytest.raises(DatasetError, match="engine prepare penn"):
        negative_windows(dataset, train, contract(), NegativeOptions(penn=2, penn_path=str(tmp_path / "none.npz")), 8)


def test_negatives_config_table_is_checked() -> None:
    assert NegativeOptions.from_params({}) is None
    assert NegativeOptions.from_params({"negatives": {"synthetic": 5}}) == NegativeOptions(synthetic=5)
    with pytest.raises(DatasetError, match="unknown key"):
        NegativeOptions.from_params({"negatives": {"walkers": 5}})

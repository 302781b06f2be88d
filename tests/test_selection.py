"""Choices made on the training subjects only: folds, the data-derived window, the unknown threshold, the baseline."""
from __future__ import annotations

from importlib.util import find_spec

import numpy as np
import pytest

from engine.errors import ConfigError, DatasetError
from trainer import dataset as ds
from trainer import synthetic_data
from trainer.config import config_from_dict
from trainer.selection import KEEP_RIGHT, WINDOW_RANGE_S, choose_threshold, stride_for, subject_folds, window_from_data


def dataset(subjects: list[int], lengths: list[int], labels: list[int] | None = None, fps: float = 15.0, split=None) -> ds.Dataset:
    n, t = len(subjects), max(lengths)
    kp = np.zeros((n, t, 18, 3), np.float32)
    for i, length in enumerate(lengths):
        kp[i, :length, :, 2] = 1.0
    labels = labels if labels is not None else [i % 2 for i in range(n)]
    return ds.Dataset(kp, np.array(lengths, np.int32), np.array(labels, np.int32), ("a", "b"), np.array(subjects, np.int32),
                      np.full(n, fps, np.float32), None if split is None else np.array(split))


def test_folds_cover_every_training_subject_once_and_never_a_test_one():
    d = dataset([1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3], [20] * 12)
    train, _ = ds.split_protocol(d)
    folds = subject_folds(d, train, 3)
    assert [f.validation_subjects for f in folds] == [(1, 4, 7), (2, 5), (3, 6)]
    validated = np.zeros(len(d), int)
    for f in folds:
        assert not (f.fit & f.validation).any() and not ((f.fit | f.validation) & ~train).any()
        validated += f.validation
    np.testing.assert_array_equal(validated, train.astype(int))


def test_few_subjects_validate_one_at_a_time():
    d = dataset([1, 2, 1, 2, 8], [20] * 5)
    folds = subject_folds(d, ds.split_protocol(d)[0], 3)
    assert [f.validation_subjects for f in folds] == [(1,), (2,)]


def test_one_subject_splits_by_sequence_with_every_class_in_each_fold():
    d = dataset([0] * 12, [20] * 12, split=["train"] * 9 + ["test"] * 3)
    folds = subject_folds(d, d.split == "train", 3)
    assert len(folds) == 3
    for f in folds:
        assert set(d.labels[f.validation].tolist()) == {0, 1} and not f.validation[9:].any()


def test_window_follows_the_clip_lengths_within_bounds():
    short = dataset([1] * 8, [15, 20, 20, 20, 25, 30, 40, 60])  # 1-4 s at 15 fps
    assert window_from_data(short, np.ones(8, bool), 15.0) == 20  # 25th percentile: 1.33 s
    tiny = dataset([1] * 4, [5, 6, 7, 8])
    assert window_from_data(tiny, np.ones(4, bool), 15.0) == int(WINDOW_RANGE_S[0] * 15)
    long = dataset([1] * 4, [300] * 4)
    assert window_from_data(long, np.ones(4, bool), 15.0) == int(WINDOW_RANGE_S[1] * 15)
    assert stride_for(20) == 2 and stride_for(4) == 1


def test_threshold_without_negatives_keeps_the_chosen_share_of_right_answers():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), size=400).astype(np.float32)
    labels = probs.argmax(1)
    labels[:50] = (labels[:50] + 1) % 3  # some wrong ones
    t = choose_threshold(probs, labels)
    right = probs.argmax(1) == labels
    kept = (probs.max(1)[right] >= t).mean()
    assert KEEP_RIGHT <= kept < KEEP_RIGHT + 0.02


def test_threshold_with_negatives_rejects_the_unsure_ones():
    # class 2 is "none of my actions": its windows score low on every class but lean to class 0
    known = np.array([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05]] * 50, np.float32)
    negatives = np.array([[0.5, 0.3, 0.2]] * 100, np.float32)
    probs = np.concatenate([known, negatives])
    labels = np.array([0, 1] * 50 + [2] * 100)
    t = choose_threshold(probs, labels, unknown_ids=(2,))
    assert 0.5 < t <= 0.9


def test_renamed_config_key_says_what_replaced_it():
    with pytest.raises(ConfigError, match="folds"):
        config_from_dict({"validation_subjects": 2}, "keypoint_tcn")
    with pytest.raises(ConfigError, match="folds >= 2"):
        config_from_dict({"folds": 1}, "keypoint_tcn")
    with pytest.raises(DatasetError, match="folds"):
        subject_folds(dataset([1, 2], [20, 20]), np.ones(2, bool), 1)


@pytest.mark.skipif(find_spec("sklearn") is None, reason="needs the [train] extra (scikit-learn)")
def test_baseline_learns_the_synthetic_actions():
    from trainer.baseline import extra_trees

    data = synthetic_data.build(seed=5, subjects=[1, 2, 3, 8], repetitions=[1], extra_activities=False, variants=0)
    train, test = ds.split_protocol(data)
    result = extra_trees(data, train, test)
    assert result.n_test == int(test.sum()) and result.sequence_top1 > 0.5  # 11 classes: chance is 0.09

"""The dataset file, the synthetic dataset, MHAD preparation and training windows (TensorFlow-free)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.sources import synthetic
from engine.classify.runtime import sequence_windows
from engine.framework.cli import main
from engine.errors import DatasetError
from pose.keypoints_file import KeypointsWriter
from pose.base import People
from trainer import dataset as ds
from trainer import mhad, synthetic_data
from trainer.windows import build_windows, training_contract, window_index


def _tiny(n_per_subject: int = 2, subjects=(1, 2, 8, 9)) -> ds.Dataset:
    seqs, labels, subs = [], [], []
    rng = np.random.default_rng(0)
    for s in subjects:
        for k in range(n_per_subject):
            t = int(rng.integers(20, 40))
            seqs.append(rng.uniform(0, 400, size=(t, 18, 3)).astype(np.float32))
            labels.append(k % 2)
            subs.append(s)
    return ds.from_sequences(seqs, labels, ["a", "b"], subs, 30.0)


def test_save_load_round_trip_keeps_every_key_and_pads_with_zeros(tmp_path: Path) -> None:
    d = _tiny()
    path = ds.save(d, tmp_path / "d.npz")
    back = ds.load(path)
    np.testing.assert_array_equal(back.keypoints, d.keypoints)
    np.testing.assert_array_equal(back.lengths, d.lengths)
    assert back.label_names == ("a", "b") and back.fps.shape == (len(d),)
    i = int(np.argmin(d.lengths))
    assert not back.keypoints[i, d.lengths[i]:].any()
    np.testing.assert_array_equal(back.sequence(i), d.keypoints[i, : d.lengths[i]])


@pytest.mark.parametrize("key", ds.REQUIRED_KEYS)
def test_a_missing_key_is_refused_by_name(tmp_path: Path, key: str) -> None:
    d = _tiny()
    arrays = {
        "keypoints": d.keypoints, "lengths": d.lengths, "labels": d.labels,
        "label_names": np.array(d.label_names), "subjects": d.subjects, "fps": np.float32(30),
    }
    del arrays[key]
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DatasetError, match=f"'{key}' is missing"):
        ds.load(tmp_path / "bad.npz")


def test_pickled_objects_wrong_shapes_and_bad_labels_are_refused(tmp_path: Path) -> None:
    d = _tiny()
    base = {
        "keypoints": d.keypoints, "lengths": d.lengths, "labels": d.labels,
        "label_names": np.array(d.label_names), "subjects": d.subjects, "fps": np.float32(30),
    }
    np.savez(tmp_path / "obj.npz", **{**base, "label_names": np.array(["a", None], dtype=object)})
    with pytest.raises(DatasetError, match="pickle"):
        ds.load(tmp_path / "obj.npz")
    np.savez(tmp_path / "shape.npz", **{**base, "keypoints": d.keypoints[..., :2]})
    with pytest.raises(DatasetError, match="keypoints"):
        ds.load(tmp_path / "shape.npz")
    np.savez(tmp_path / "labels.npz", **{**base, "labels": d.labels + 5})
    with pytest.raises(DatasetError, match="labels"):
        ds.load(tmp_path / "labels.npz")
    np.savez(tmp_path / "split.npz", **{**base, "split": np.array(["train"] * (len(d) - 1) + ["val"])})
    with pytest.raises(DatasetError, match="split"):
        ds.load(tmp_path / "split.npz")
    with pytest.raises(DatasetError, match="not found"):
        ds.load(tmp_path / "nothing.npz")


def test_split_protocol_uses_subjects_unless_the_file_has_a_split() -> None:
    d = _tiny()
    train, test = ds.split_protocol(d)
    assert set(d.subjects[train]) == {1, 2} and set(d.subjects[test]) == {8, 9}
    split = np.where(np.arange(len(d)) % 2 == 0, "train", "test")
    explicit = ds.from_sequences([d.sequence(i) for i in range(len(d))], d.labels, d.label_names, d.subjects, 30.0, split=list(split))
    train, _ = ds.split_protocol(explicit)
    np.testing.assert_array_equal(train, split == "train")


def test_resample_picks_nearest_frames() -> None:
    seq = np.arange(31)
    np.testing.assert_array_equal(ds.resample(seq, 30, 10), np.arange(0, 31, 3))
    np.testing.assert_array_equal(ds.resample(seq, 30, 30), seq)
    up = ds.resample(np.arange(4), 15, 30)
    np.testing.assert_array_equal(up, [0, 0, 1, 1, 2, 2, 3])


def test_training_windows_are_the_runtime_windows_at_any_source_rate() -> None:
    kp = synthetic.motion(6, synthetic.make_subject(3), 1)
    contract = training_contract("keypoint_sequence", synthetic.ACTIONS, 30, 3, 15.0, 0)
    for fps, seq in ((30.0, kp), (15.0, kp[::2]), (25.0, kp)):
        ref = [items["keypoints"] for _, _, items in sequence_windows(contract, seq, fps)]
        index = window_index(contract, len(seq), fps)
        assert len(ref) == len(index) > 0
        for window, rows in zip(ref, index):
            np.testing.assert_array_equal(window, seq[rows])
    # image kinds: the table rows a window points at are the runtime's skeleton images
    image_contract = training_contract("skeleton_sequence", synthetic.ACTIONS, 10, 2, 10.0, 64)
    d = ds.from_sequences([kp], [6], synthetic.ACTIONS, [1], 30.0)
    ws = build_windows(d, np.array([True]), image_contract)
    ref = [items["image"] for _, _, items in sequence_windows(image_contract, kp, 30.0)]
    assert len(ws) == len(ref)
    # pose.skeleton draws a batch of people in one canvas; sub-pixel rounding may move a
    # couple of pixels with the batch's make-up, so equality is asked of all but a few pixels.
    for k in (0, 3, len(ref) - 1):
        assert (ws.frames["image"][ws.index[k]] != ref[k]).mean() < 1e-3


def test_synthetic_dataset_is_deterministic_noisy_and_mhad_shaped() -> None:
    a = synthetic_data.build(seed=1, subjects=[2, 9], repetitions=[1, 2], extra_activities=False, variants=0)
    b = synthetic_data.build(seed=1, subjects=[2, 9], repetitions=[1, 2], extra_activities=False, variants=0)
    np.testing.assert_array_equal(a.keypoints, b.keypoints)
    assert len(a) == 2 * 11 * 2 and a.ids[0] == "S02/A01/R01"
    assert sorted(set(a.labels.tolist())) == list(range(11)) and a.label_names == synthetic.ACTIONS
    seq = a.sequence(0)
    truth = synthetic.motion(0, synthetic.make_subject(2, seed=1), 1, seed=1)
    assert seq.shape == truth.shape
    seen = (seq[..., 2] > 0) & (truth[..., 2] > 0)
    err = np.abs(seq[..., :2] - truth[..., :2])[seen]
    assert 0.3 < err.mean() < 10  # noisy but close
    assert (seq[..., 2] == 0).mean() > 0.005  # some joints dropped
    c = synthetic_data.build(seed=2, subjects=[2], repetitions=[1], extra_activities=False, variants=0)
    assert not np.array_equal(c.sequence(0)[:10], a.sequence(0)[:10])


def test_prepare_synthetic_command_writes_a_loadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "syn.npz"
    assert main(["prepare", "synthetic", "--out", str(out), "--seed", "3", "--mhad-only", "--variants", "0"]) == 0
    d = ds.load(out)
    assert len(d) == 660 and set(d.subjects.tolist()) == set(range(1, 13))
    assert "660 sequences" in capsys.readouterr().out


# ---------------------------------------------------------------- MHAD layout fixture

_FIXTURE = [(1, 1, 1), (1, 6, 1), (2, 10, 1), (8, 1, 1), (8, 6, 2)]  # (subject, action, repetition)
_FRAMES = 8


def _mhad_fixture(root: Path) -> Path:
    """Kinect/Kin01/SXX/AYY/RZZ/*.ppm drawn from the synthetic model, plus the keypoints a
    replay backend returns for them (the data path is what is tested, not pose quality)."""
    replay = root / "replay.npz"
    with KeypointsWriter(replay) as writer:
        for s, a, r in _FIXTURE:
            subject = synthetic.make_subject(s)
            kp = synthetic.motion(a - 1, subject, r, size=(320, 240))[:: 6][:_FRAMES]
            folder = root / "Kinect" / "Kin01" / f"S{s:02d}" / f"A{a:02d}" / f"R{r:02d}"
            folder.mkdir(parents=True)
            bg = synthetic.background((320, 240), seed=s)
            for i, frame_kp in enumerate(kp):
                frame = bg.copy()
                synthetic.draw_person(frame, frame_kp, subject)
                cv2.imwrite(str(folder / f"kin_k01_s{s:02d}_a{a:02d}_r{r:02d}_color_{i:05d}.ppm"), frame)
                writer.write(f"mhad:S{s:02d}/A{a:02d}/R{r:02d}", i, People(frame_kp[None]))
    (root / "Kinect" / "Kin01" / "S02" / "A03" / "R01").mkdir(parents=True)  # a folder without frames
    return replay


def test_prepare_mhad_in_parallel_resumes_and_reports_missing_sequences(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "mhad"
    replay = _mhad_fixture(root)
    monkeypatch.setenv("ENGINE_REPLAY_FILE", str(replay))
    out = tmp_path / "mhad.npz"
    result = mhad.prepare_mhad(root, out, backend="replay", workers=2)
    assert result.n_sequences == len(_FIXTURE) and result.n_cached == 0
    assert any(m.startswith("S02/A03/R01") for m in result.missing)
    assert any(m.startswith("S04/A08/R05") for m in result.missing)
    d = ds.load(out)
    assert sorted(d.ids.tolist()) == sorted(f"S{s:02d}/A{a:02d}/R{r:02d}" for s, a, r in _FIXTURE)
    i = d.ids.tolist().index("S08/A06/R02")
    assert d.labels[i] == 5 and d.subjects[i] == 8 and d.lengths[i] == _FRAMES and d.fps[i] == 30
    truth = synthetic.motion(5, synthetic.make_subject(8), 2, size=(320, 240))[:: 6][:_FRAMES]
    np.testing.assert_allclose(d.sequence(i), truth, atol=1e-4)
    train, test = ds.split_protocol(d)
    assert set(d.subjects[test].tolist()) == {8}

    # Resumable: a second run reads every sequence from the cache; a lost cache file is redone.
    cache = Path(str(out) + ".cache")
    (cache / "S01_A06_R01.npz").unlink()
    again = mhad.prepare_mhad(root, out, backend="replay", workers=1)
    assert again.n_cached == len(_FIXTURE) - 1 and again.n_sequences == len(_FIXTURE)
    np.testing.assert_array_equal(ds.load(out).keypoints, d.keypoints)


def test_prepare_mhad_command_names_a_bad_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["prepare", "mhad", "--mhad-root", str(tmp_path), "--out", str(tmp_path / "x.npz"), "--pose", "replay"])
    assert code != 0
    assert "Kinect" in capsys.readouterr().err


def test_pick_person_prefers_the_followed_track_then_the_largest() -> None:
    small = np.zeros((18, 3), np.float32)
    small[:, :2], small[:, 2] = np.linspace(0, 10, 18)[:, None], 1
    large = small.copy()
    large[:, :2] *= 20
    kp = np.stack([small, large])
    boxes = People(kp).boxes
    picked, track = mhad.pick_person(kp, boxes, np.array([4, 7]), previous=-1)
    assert track == 7 and np.array_equal(picked, large)
    picked, track = mhad.pick_person(kp, boxes, np.array([4, 7]), previous=4)
    assert track == 4
    nobody, _ = mhad.pick_person(np.zeros((0, 18, 3), np.float32), np.zeros((0, 4)), np.zeros(0, np.int32), 4)
    assert not nobody.any()

"""`engine prepare penn-action` and `engine prepare sbu` on small fixtures in the real formats.

The fixtures are written here (Penn Action .mat files with scipy.io.savemat and its field names;
SBU set/class/sequence folders with skeleton_pos.txt CSV), never read from a real copy.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.errors import DatasetError, SourceError
from engine.framework.cli import main
from pose import coco
from trainer import dataset as ds
from trainer import penn_action, sbu

sio = pytest.importorskip("scipy.io")

REPO = Path(__file__).resolve().parents[1]


def _engine(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "engine.framework.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


# ------------------------------------------------------------------ Penn Action

def _penn_clip(t: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(10, 470, size=(t, 13))
    y = rng.uniform(10, 350, size=(t, 13))
    visibility = np.ones((t, 13), np.uint8)
    visibility[1, 6] = 0  # 7th joint (the person's left wrist) hidden in frame 1
    visibility[2, 1] = 0  # 2nd joint (the person's right shoulder) hidden in frame 2: no neck there either
    return x, y, visibility


def _write_penn(root: Path) -> dict[str, tuple]:
    """Three clips as the dataset ships them: (x, y, visibility, action, split) per file stem."""
    labels = root / "labels"
    labels.mkdir(parents=True)
    clips = {
        "0001": (*_penn_clip(5, 1), "baseball_pitch", -1),
        "0002": (*_penn_clip(8, 2), "tennis_serve", 1),
        "0010": (*_penn_clip(3, 3), "jumping_jacks", 1),
    }
    for stem, (x, y, vis, action, train) in clips.items():
        t = len(x)
        sio.savemat(labels / f"{stem}.mat", {
            "action": action, "pose": "front", "x": x, "y": y, "visibility": vis,
            "train": np.array([[train]], np.int32), "bbox": np.zeros((t, 4)),
            "dimensions": np.array([[360, 480, t]], np.uint16), "nframes": np.array([[t]], np.uint16),
        })
    return clips


def test_penn_action_through_the_cli_maps_joints_visibility_and_the_official_split(tmp_path: Path) -> None:
    clips = _write_penn(tmp_path / "penn")
    out = tmp_path / "out" / "penn.npz"
    done = _engine("prepare", "penn-action", "--root", str(tmp_path / "penn"), "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "3 sequences (2 train, 1 test" in done.stdout

    d = ds.load(out)
    assert d.label_names == tuple(sorted(d.label_names)) and len(d.label_names) == 15
    assert [d.label_names[i] for i in d.labels] == ["baseball_pitch", "tennis_serve", "jumping_jacks"]
    assert d.split.tolist() == ["test", "train", "train"]
    assert d.lengths.tolist() == [5, 8, 3] and d.keypoints.shape[1] == 8
    assert d.subjects.tolist() == [1, 2, 10] and d.ids.tolist() == ["0001", "0002", "0010"]
    assert np.all(d.fps == 30.0)
    train, test = ds.split_protocol(d)
    assert train.tolist() == [False, True, True] and test.tolist() == [True, False, False]

    x, y, _, _, _ = clips["0002"]
    kp = d.sequence(1)
    # Penn order as the data holds it (person's right first in each pair; its README says left):
    # head, r sh, l sh, r el, l el, r wr, l wr, r hip, l hip, r kn, l kn, r an, l an
    for coco_joint, penn_joint in ((coco.NOSE, 0), (coco.R_SHOULDER, 1), (coco.L_WRIST, 6), (coco.R_ANKLE, 11)):
        np.testing.assert_allclose(kp[0, coco_joint, :2], [x[0, penn_joint], y[0, penn_joint]], rtol=1e-6)
    np.testing.assert_allclose(kp[0, coco.NECK, :2], [(x[0, 1] + x[0, 2]) / 2, (y[0, 1] + y[0, 2]) / 2], rtol=1e-6)
    assert kp[1, coco.L_WRIST].tolist() == [0.0, 0.0, 0.0]  # invisible -> missing
    assert kp[2, coco.NECK, 2] == 0.0 and kp[2, coco.R_SHOULDER, 2] == 0.0 and kp[2, coco.L_SHOULDER, 2] == 1.0
    assert kp[0, coco.L_WRIST, 2] == 1.0 and kp[1, coco.R_WRIST, 2] == 1.0
    assert not kp[:, [coco.R_EYE, coco.L_EYE, coco.R_EAR, coco.L_EAR]].any()
    assert not d.keypoints[2, 3:].any()  # padding after the 3-frame clip


def test_penn_action_function_matches_the_cli_and_accepts_the_labels_folder(tmp_path: Path) -> None:
    _write_penn(tmp_path / "penn")
    path, written = penn_action.prepare_penn_action(tmp_path / "penn", tmp_path / "a.npz")
    again = penn_action.read_penn_action(tmp_path / "penn" / "labels")
    np.testing.assert_array_equal(ds.load(path).keypoints, again.keypoints)
    np.testing.assert_array_equal(written.labels, again.labels)


def test_penn_action_refuses_an_unknown_class_naming_the_file(tmp_path: Path) -> None:
    _write_penn(tmp_path / "penn")
    sio.savemat(tmp_path / "penn" / "labels" / "0011.mat", {
        "action": "cartwheel", "x": np.zeros((2, 13)), "y": np.zeros((2, 13)),
        "visibility": np.ones((2, 13), np.uint8), "train": np.array([[1]], np.int32),
    })
    with pytest.raises(DatasetError, match=r"0011\.mat: unknown Penn Action class 'cartwheel'"):
        penn_action.read_penn_action(tmp_path / "penn")


# ------------------------------------------------------------------ SBU Kinect Interaction

# Sets by sorted index: s01s02 = 1 (fold 1), s01s03 = 2 (fold 3), s02s03 = 5 (fold 2), s07s03 = 21 (fold 3).
_SBU_SETS = {"s01s02": (1, 1), "s01s03": (2, 3), "s02s03": (5, 2), "s07s03": (21, 3)}


def _sbu_rows(t: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    people = rng.uniform(0.05, 1.2, size=(t, 2, 15, 3))
    people[0, 1, 8] = 0.0  # person B's right hand untracked in frame 0
    frames = np.arange(100, 100 + t, dtype=np.float64)[:, None]
    return np.concatenate([frames, people.reshape(t, 90)], axis=1)


def _write_sbu(root: Path) -> dict[str, np.ndarray]:
    """Two sequences per set (classes 01 and 07), the way the dataset lays them out."""
    rows = {}
    for k, set_name in enumerate(_SBU_SETS):
        for cls, seq in (("01", "001"), ("07", "002")):
            folder = root / set_name / cls / seq
            folder.mkdir(parents=True)
            r = _sbu_rows(4 + k + int(cls) % 3, seed=len(rows))
            np.savetxt(folder / "skeleton_pos.txt", r, delimiter=",", fmt="%.5g")
            rows[f"{set_name}/{cls}/{seq}"] = np.loadtxt(folder / "skeleton_pos.txt", delimiter=",")
    return rows


def test_sbu_through_the_cli_writes_each_person_with_pairs_folds_and_the_chosen_test_fold(tmp_path: Path) -> None:
    rows = _write_sbu(tmp_path / "sbu")
    out = tmp_path / "sbu3.npz"
    done = _engine("prepare", "sbu", "--root", str(tmp_path / "sbu"), "--fold", "3", "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr

    d = ds.load(out)
    assert len(d) == 16 and d.label_names == sbu.CLASSES
    assert d.label_names[:3] == ("approaching", "departing", "kicking") and d.label_names[6] == "shaking_hands"
    assert np.all(d.fps == 15.0)
    # pairs: symmetric, never self, the partner is the other person of the same file
    assert np.array_equal(d.pair[d.pair], np.arange(16)) and not np.any(d.pair == np.arange(16))
    for i in range(16):
        j = int(d.pair[i])
        assert d.ids[i][:-1] == d.ids[j][:-1] and {d.ids[i][-1], d.ids[j][-1]} == {"A", "B"}
        assert d.labels[i] == d.labels[j] and d.subjects[i] == d.subjects[j]
    # subjects are set indices, folds the published table, split the chosen fold
    by_set = {str(name).split("/")[0]: (int(s), int(f)) for name, s, f in zip(d.ids, d.subjects, d.fold)}
    assert by_set == _SBU_SETS
    assert sorted({str(n).split("/")[0] for n in d.ids[d.split == "test"]}) == ["s01s03", "s07s03"]
    assert [d.label_names[i] for i in d.labels[:4]] == ["approaching"] * 2 + ["shaking_hands"] * 2

    # coordinates: x * 640, y * 480, OpenNI joints in their COCO-18 slots
    i = int(np.flatnonzero(d.ids == "s02s03/07/002/B")[0])
    r = rows["s02s03/07/002"]
    b = r[:, 46:].reshape(len(r), 15, 3)
    kp = d.sequence(i)
    assert d.lengths[i] == len(r)
    # OpenNI: head 0, neck 1, torso 2, l sh 3, l el 4, l hand 5, r sh 6, r el 7, r hand 8, ... r foot 14
    for coco_joint, openni_joint in ((coco.NOSE, 0), (coco.NECK, 1), (coco.L_WRIST, 5), (coco.R_ELBOW, 7), (coco.R_ANKLE, 14)):
        np.testing.assert_allclose(kp[1, coco_joint, :2], b[1, openni_joint, :2] * [640, 480], rtol=1e-5)
        assert kp[1, coco_joint, 2] == 1.0
    assert kp[0, coco.R_WRIST].tolist() == [0.0, 0.0, 0.0]  # (0, 0, 0) in the file: untracked
    assert kp[1, coco.R_WRIST, 2] == 1.0
    assert not kp[:, [coco.R_EYE, coco.L_EYE, coco.R_EAR, coco.L_EAR]].any()


def test_sbu_default_fold_is_1_and_writes_data_sbu_fold1(tmp_path: Path) -> None:
    _write_sbu(tmp_path / "sbu")
    done = _engine("prepare", "sbu", "--root", "sbu", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    d = ds.load(tmp_path / "data" / "sbu_fold1.npz")
    assert set(d.subjects[d.split == "test"].tolist()) == {1}
    for fold in (2, 3):
        other = sbu.read_sbu(tmp_path / "sbu", fold=fold)
        np.testing.assert_array_equal(other.keypoints, d.keypoints)
        assert set(other.subjects[other.split == "test"].tolist()) == {s for s, f in _SBU_SETS.values() if f == fold}


def test_sbu_refuses_a_short_row_naming_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "sbu" / "s01s02" / "01" / "001"
    folder.mkdir(parents=True)
    (folder / "skeleton_pos.txt").write_text("1,0.5,0.5,1.0\n")
    with pytest.raises(DatasetError, match="skeleton_pos.txt: SBU skeleton rows need 91 columns"):
        sbu.read_sbu(tmp_path / "sbu")


# ------------------------------------------------------------------ wrong roots

@pytest.mark.parametrize("dataset", ["penn-action", "sbu"])
def test_a_wrong_root_is_one_line_naming_the_folder_and_exit_code_2(tmp_path: Path, dataset: str) -> None:
    missing = tmp_path / "nowhere"
    done = _engine("prepare", dataset, "--root", str(missing), "--out", str(tmp_path / "x.npz"), cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(missing) in lines[0] and "--root" in lines[0], done.stderr
    assert not (tmp_path / "x.npz").exists()


@pytest.mark.parametrize("dataset", ["penn-action", "sbu"])
def test_an_empty_root_says_what_it_expected(tmp_path: Path, dataset: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prepare", dataset, "--root", str(tmp_path), "--out", str(tmp_path / "x.npz")]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path) in err and ("labels/" in err if dataset == "penn-action" else "s01s02" in err)
    with pytest.raises(SourceError):
        (penn_action.read_penn_action if dataset == "penn-action" else sbu.read_sbu)(tmp_path)


# ------------------------------------------------------------------ dataset keys pair and fold

def _paired(n: int = 4) -> ds.Dataset:
    seqs = [np.full((3 + i, 18, 3), i + 1, np.float32) for i in range(n)]
    return ds.from_sequences(seqs, [0] * n, ["a"], [1] * n, 15.0, pair=[1, 0, 3, 2][:n], fold=[1, 1, 2, 2][:n])


def test_pair_and_fold_survive_save_and_load_and_are_optional(tmp_path: Path) -> None:
    back = ds.load(ds.save(_paired(), tmp_path / "p.npz"))
    assert back.pair.tolist() == [1, 0, 3, 2] and back.fold.tolist() == [1, 1, 2, 2]
    plain = ds.load(ds.save(ds.from_sequences([np.ones((2, 18, 3), np.float32)], [0], ["a"], [1], 30.0), tmp_path / "q.npz"))
    assert plain.pair is None and plain.fold is None
    with np.load(tmp_path / "q.npz") as data:
        assert "pair" not in data.files and "fold" not in data.files


def test_a_subset_reindexes_pairs_and_drops_partners_left_out() -> None:
    sub = _paired().subset(np.array([2, 3, 0]))
    assert sub.pair.tolist() == [1, 0, -1] and sub.fold.tolist() == [2, 2, 1]
    twice = _paired().subset(np.array([0, 1, 0]))
    assert twice.pair.tolist() == [1, 0, -1]


@pytest.mark.parametrize(("key", "value", "message"), [
    ("pair", [1, 2, 3, 0], "'pair' must be symmetric"),
    ("pair", [0, 1, -1, -1], "paired with itself"),
    ("pair", [4, -1, -1, -1], "'pair' must index sequences"),
    ("pair", [1, 0, 3], "'pair' must have one value per sequence"),
    ("fold", [0, 1, 1, 1], "'fold' must hold fold numbers from 1"),
])
def test_broken_pair_or_fold_keys_are_refused_by_name(tmp_path: Path, key: str, value: list[int], message: str) -> None:
    d = _paired()
    arrays = {
        "keypoints": d.keypoints, "lengths": d.lengths, "labels": d.labels, "label_names": np.array(d.label_names),
        "subjects": d.subjects, "fps": np.float32(15), "pair": d.pair, "fold": d.fold,
    }
    arrays[key] = np.array(value, np.int32)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DatasetError, match=message):
        ds.load(tmp_path / "bad.npz")
    arrays[key] = np.array(value, np.float32)
    np.savez(tmp_path / "float.npz", **arrays)
    with pytest.raises(DatasetError, match=f"'{key}' must hold integers"):
        ds.load(tmp_path / "float.npz")


def test_sbu_pairs_become_one_two_person_window_per_file_with_both_people_from_the_csv(tmp_path: Path) -> None:
    """What the pair model trains on: the importer's `pair` index rebuilds each file's two people."""
    from trainer.windows import build_windows, pair_keypoints, pair_sequences, training_contract

    rows = _write_sbu(tmp_path / "sbu")
    d = sbu.read_sbu(tmp_path / "sbu", fold=3)
    found = pair_sequences(d, np.arange(len(d)))
    assert len(found) == 8 and all(str(d.ids[i]).endswith("/A") and str(d.ids[j]).endswith("/B") for i, j in found)
    i, j = next((i, j) for i, j in found if str(d.ids[i]).startswith("s02s03/07/002"))
    both = pair_keypoints(d, i, j)
    r = rows["s02s03/07/002"]
    people = r[:, 1:].reshape(len(r), 2, 15, 3)
    assert both.shape == (len(r), 2, coco.N_JOINTS, 3)
    for person in (0, 1):  # OpenNI neck (1) -> COCO neck, in pixels of 640 x 480
        np.testing.assert_allclose(both[:, person, coco.NECK, :2], people[:, person, 1, :2] * [640, 480], rtol=1e-5)
    contract = training_contract("pair", sbu.CLASSES, window=4, stride=2, fps=15.0, image_size=0, min_window=3)
    ws = build_windows(d, d.split == "test", contract)
    test_pairs = pair_sequences(d, np.flatnonzero(d.split == "test"))
    assert len(test_pairs) == 4 and set(ws.sequence.tolist()) == {i for i, _ in test_pairs}
    assert ws.keypoints.shape[1:] == (4, 2, coco.N_JOINTS, 3) and ws.features.shape[1:2] == (4,)
    assert ws.labels.tolist() == [int(d.labels[s]) for s in ws.sequence]

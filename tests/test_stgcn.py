"""The ST-GCN keypoint model: its graph, its streams, and training -> ONNX -> runtime end to end."""
from __future__ import annotations

import dataclasses
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(
    find_spec("tensorflow") is None or find_spec("tf2onnx") is None, reason="needs the [train] extra (TensorFlow, tf2onnx)"
)

from engine.classify.features import FEATURE_VERSION, feature_layout  # noqa: E402
from pose.coco import L_HIP, NECK, NOSE, R_ELBOW, R_HIP, R_SHOULDER, R_WRIST  # noqa: E402
from trainer import dataset as ds  # noqa: E402
from trainer import synthetic_data  # noqa: E402
from trainer.config import TrainConfig, config_from_dict  # noqa: E402

LAYOUT = feature_layout()


@pytest.fixture(scope="module", autouse=True)
def tensorflow_as_trained() -> None:
    """TensorFlow set up as the trainer sets it (threads, determinism) before any test here builds a model."""
    from trainer.training import configure_tensorflow

    configure_tensorflow(2)


ROW = {joint: i for i, joint in enumerate(LAYOUT.joints)}


def _tiny(**changes: object) -> dict:
    """A config that trains in seconds; keys this checkout's TrainConfig lacks are left out."""
    raw = {"fps": 10.0, "window": 12, "stride": 4, "train_stride": 4, "epochs": 2, "batch_size": 32,
           "folds": 2, "refit": False, "baseline": False, "validation_subjects": 1,
           "params": {"channels": [8, 16], "strides": [2, 1], "kernel": 3, "input_noise": 0.0}}
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    if "folds" in fields:
        raw.pop("validation_subjects")
    return {k: v for k, v in {**raw, **changes}.items() if k in fields}


def test_tree_is_openposes_rooted_at_the_neck() -> None:
    from trainer.models.stgcn import body_tree

    parent = body_tree(LAYOUT.joints)
    assert parent[ROW[NECK]] == ROW[NECK]  # the root, and the only joint that is its own parent
    assert sum(p == i for i, p in enumerate(parent)) == 1
    assert parent[ROW[R_WRIST]] == ROW[R_ELBOW] and parent[ROW[R_ELBOW]] == ROW[R_SHOULDER]
    for joint in (NOSE, R_SHOULDER, R_HIP, L_HIP):
        assert parent[ROW[joint]] == ROW[NECK], joint


def test_partitions_split_the_symmetric_normalised_adjacency() -> None:
    from trainer.models.stgcn import body_tree, partitions

    parts = partitions(body_tree(LAYOUT.joints))
    j = LAYOUT.n_joints
    assert parts.shape == (3, j, j)
    total = parts.sum(axis=0).astype(np.float64)
    np.testing.assert_allclose(total, total.T, atol=1e-7)  # symmetric
    np.testing.assert_allclose(parts[1], parts[2].T, atol=1e-7)  # inward is outward reversed
    binary = (total > 0).astype(np.float64)
    d = binary.sum(axis=1)
    np.testing.assert_allclose(total, binary / np.sqrt(np.outer(d, d)), atol=1e-6)  # D^-1/2 (A + I) D^-1/2
    assert binary.sum() == j + 2 * (j - 1)  # a tree: self loops plus 13 edges both ways
    assert np.isclose(np.linalg.eigvalsh(total).max(), 1.0, atol=1e-5)  # keeps the input's scale
    assert np.all(np.diag(parts[0]) > 0) and not np.any(np.diag(parts[1]))


def _features(rng: np.random.Generator, batch: int, window: int) -> np.ndarray:
    x = np.zeros((batch, window, LAYOUT.n_features), np.float32)
    x[..., LAYOUT.position] = rng.normal(size=(batch, window, 2 * LAYOUT.n_joints))
    x[..., LAYOUT.velocity] = rng.normal(scale=0.1, size=(batch, window, 2 * LAYOUT.n_joints))
    x[..., LAYOUT.confidence] = 1.0
    return x


def test_bone_stream_ignores_translation_and_missing_joints() -> None:
    import keras

    from trainer.models.stgcn import STREAM_CHANNELS, build

    config = config_from_dict(_tiny(), "stgcn")
    model = build(config, 3)
    streams = keras.Model(model.input, model.get_layer("streams").output)
    rng = np.random.default_rng(0)
    x = _features(rng, 4, config.window)
    shifted = x.copy()
    xy = shifted[..., LAYOUT.position].reshape(4, config.window, LAYOUT.n_joints, 2)
    xy += np.array([0.7, -1.3], np.float32)
    shifted[..., LAYOUT.position] = xy.reshape(4, config.window, -1)
    a, b = np.asarray(streams(x)), np.asarray(streams(shifted))
    bone = [STREAM_CHANNELS.index("bone_x"), STREAM_CHANNELS.index("bone_y")]
    assert a.shape == (4, config.window, LAYOUT.n_joints, len(STREAM_CHANNELS))
    np.testing.assert_allclose(a[..., bone], b[..., bone], atol=1e-5)
    assert not np.allclose(a[..., :2], b[..., :2])  # the joint stream does move
    pos = x[..., LAYOUT.position].reshape(4, config.window, LAYOUT.n_joints, 2)
    np.testing.assert_allclose(a[:, :, ROW[R_WRIST]][..., bone], pos[:, :, ROW[R_WRIST]] - pos[:, :, ROW[R_ELBOW]], atol=1e-5)
    assert not np.any(a[:, :, ROW[NECK]][..., bone])  # the root has no bone
    # The elbow unseen (features 0, presence 0): its own bone and the wrist's are 0, not "minus the elbow".
    gone = x.copy()
    elbow = ROW[R_ELBOW]
    gone[..., LAYOUT.position.start + 2 * elbow : LAYOUT.position.start + 2 * elbow + 2] = 0.0
    gone[..., LAYOUT.confidence.start + elbow] = 0.0
    c = np.asarray(streams(gone))
    assert not np.any(c[:, :, elbow][..., bone]) and not np.any(c[:, :, ROW[R_WRIST]][..., bone])
    np.testing.assert_allclose(c[:, :, ROW[R_SHOULDER]], a[:, :, ROW[R_SHOULDER]], atol=1e-6)


def test_trains_on_the_batch_sizes_that_crashed_tensorflow() -> None:
    """Last batches of 17 and 19 windows at W=22 (Penn Action) killed training with a strided 1x1 conv."""
    import keras

    from trainer.models.stgcn import build

    keras.utils.set_random_seed(0)
    model = build(config_from_dict(_tiny(window=22, params={}), "stgcn"), 15)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    x = _features(np.random.default_rng(1), 19, 22)
    y = np.arange(19) % 15
    losses = [float(model.train_on_batch(x[:n], y[:n])) for n in (17, 19, 3)]
    assert all(np.isfinite(losses))


@pytest.fixture(scope="module")
def small_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four subjects (1-3 train/validate, 8 test), one repetition: 44 sequences."""
    path = tmp_path_factory.mktemp("data") / "small.npz"
    ds.save(synthetic_data.build(seed=5, subjects=[1, 2, 3, 8], repetitions=[1]), path)
    return path


def test_trains_exports_and_runs_in_the_runtime(small_data: Path, tmp_path: Path) -> None:
    from trainer.training import train

    data = ds.load(small_data)
    run_dir = tmp_path / "run"
    # Train before onnxruntime is loaded: loaded first, it and TensorFlow's kernels have corrupted the heap here.
    train(config_from_dict(_tiny(), "stgcn"), data, run_dir, log=lambda line: None)

    import keras
    import onnxruntime as ort

    from engine.classify.contract import load_contract
    from engine.classify.runtime import ClassifierRuntime, ClassifyOptions, model_inputs, sequence_windows
    from engine.framework.cli import main
    from trainer.export import parity_inputs, read_run

    run = read_run(run_dir)
    assert run["model"] == "stgcn" and run["input_kind"] == "keypoint_sequence" and run["window"] == 12
    assert run["feature_version"] == FEATURE_VERSION and 0 <= run["metrics"]["top1_window"] <= 1

    out = tmp_path / "stgcn.onnx"
    assert main(["export", str(run_dir), "-o", str(out)]) == 0  # the trainer's own parity check passed
    model = keras.models.load_model(run_dir / "model.keras", compile=False)
    inputs = parity_inputs(run, data)[0]
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: inputs})[0]
    want = np.asarray(model(inputs, training=False))
    assert got.shape == (len(inputs), len(data.label_names))
    assert np.max(np.abs(got - want)) <= 1e-4
    assert np.ptp(want, axis=0).max() > 1e-3  # a model that reads its input, not a constant

    contract = load_contract(out)
    assert contract.input_kind == "keypoint_sequence" and contract.window == 12 and contract.feature_version == FEATURE_VERSION
    runtime = ClassifierRuntime(out, ClassifyOptions(threads=1))
    windows = [items for _, _, items in sequence_windows(runtime.contract, data.keypoints[0][: data.lengths[0]], float(data.fps[0]))]
    assert windows
    probs = runtime.classify_windows(windows)
    stacked = {key: np.stack([w[key] for w in windows]) for key in runtime.keys}
    keras_probs = np.asarray(model(model_inputs(runtime.contract, stacked)[0], training=False))
    assert probs.shape == (len(windows), len(data.label_names))
    np.testing.assert_allclose(probs, keras_probs, atol=1e-4)

"""The pair model end to end on a made-up two-person dataset: train a few steps, export, Keras vs
onnxruntime parity, the contract's `pair` shape, and `engine evaluate` through the runtime (needs [train])."""
from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest

from engine.classify.contract import load_contract, open_model
from engine.classify.pairs import N_PAIR_FEATURES, PAIR_FEATURE_VERSION
from engine.errors import ModelError
from test_pair_input import person
from tiny_models import build_tiny_model
from trainer import dataset as ds
from trainer.config import config_from_dict

pytestmark = pytest.mark.skipif(
    find_spec("tensorflow") is None or find_spec("tf2onnx") is None, reason="needs the [train] extra (TensorFlow, tf2onnx)"
)
CLASSES = ("approaching", "departing")


def two_people(label: int, t: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Person A walks towards (label 0) or away from (label 1) a standing person B, 15 fps."""
    start = 150.0 if label == 0 else 300.0
    step = 8.0 if label == 0 else -8.0
    a = np.stack([person(start + step * k + rng.normal(0, 2), facing=1) for k in range(t)])
    b = np.stack([person(420.0 + rng.normal(0, 2), facing=-1) for _ in range(t)])
    return a, b


@pytest.fixture(scope="module")
def pair_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four sets of 6 pairs (two people per pair, `pair` the partner's index); set 4 is the test split."""
    rng = np.random.default_rng(3)
    sequences, labels, subjects, pair, split = [], [], [], [], []
    for subject in (1, 2, 3, 4):
        for k in range(6):
            label = k % 2
            a, b = two_people(label, 14 + k, rng)
            first = len(sequences)
            sequences += [a, b]
            labels += [label, label]
            subjects += [subject, subject]
            pair += [first + 1, first]
            split += ["test" if subject == 4 else "train"] * 2
    path = tmp_path_factory.mktemp("pairs") / "pairs.npz"
    ds.save(ds.from_sequences(sequences, labels, CLASSES, subjects, 15.0, split=split, pair=pair), path)
    return path


@pytest.fixture(scope="module")
def pair_run(pair_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from trainer.training import train

    # as configs/models/pair_tcn.toml trains the shipped model: no inner folds, fixed epochs, cosine decay
    raw = {"fps": 15.0, "window": 10, "stride": 2, "min_window": 6, "train_stride": 2, "epochs": 3, "batch_size": 16,
           "folds": 0, "baseline": False, "params": {"filters": 8, "dilations": [1, 2], "augment": 0.5, "mirror": 0.5,
                                                      "speed": 0.2, "jitter": 0.2, "cosine": True}}
    out = tmp_path_factory.mktemp("run") / "pair"
    train(config_from_dict(raw, "pair_tcn"), ds.load(pair_data), out, log=lambda line: None)
    return out


def test_export_agrees_with_keras_and_says_pair(pair_run: Path, pair_data: Path, tmp_path: Path) -> None:
    import keras

    from trainer.export import export, parity_inputs, read_run

    result = export(pair_run, tmp_path / "pair.onnx")
    assert result.max_abs_diff <= 1e-4 and result.n_checked > 0
    contract, session = open_model(result.path)
    run = read_run(pair_run)
    assert run["folds"] == 0 and run["epochs"] == 3 and "no validation, 3 epochs" in contract.trained_on
    assert (contract.input_kind, contract.window, contract.feature_version) == ("pair", 10, PAIR_FEATURE_VERSION)
    assert contract.input_shapes == ((None, 10, N_PAIR_FEATURES),) and contract.labels == CLASSES
    # parity again, here: the exported graph and the Keras model on real pair windows of the test set
    inputs = parity_inputs(read_run(pair_run), ds.load(pair_data))[0]
    assert inputs.shape[1:] == (10, N_PAIR_FEATURES)
    model = keras.models.load_model(pair_run / "model.keras", compile=False)
    want = np.asarray(model(inputs, training=False))
    got = session.run(None, {session.get_inputs()[0].name: inputs})[0]
    np.testing.assert_allclose(got, want, atol=1e-4)
    with pytest.raises(ModelError, match="differ by"):
        export(pair_run, tmp_path / "strict.onnx", tolerance=-1.0)


def test_grid_without_validation_folds_is_refused(pair_data: Path, tmp_path: Path) -> None:
    from engine.errors import ConfigError
    from trainer.training import train

    config = config_from_dict({"window": 10, "folds": 0, "grid": {"filters": [4, 8]}}, "pair_tcn")
    with pytest.raises(ConfigError, match="--grid needs validation"):
        train(config, ds.load(pair_data), tmp_path / "g", grid=True, log=lambda line: None)


def test_evaluate_runs_the_pair_model_once_per_pair_through_the_runtime(pair_run: Path, pair_data: Path, tmp_path: Path) -> None:
    from trainer.evaluation import evaluate
    from trainer.export import export

    path = export(pair_run, tmp_path / "pair.onnx").path
    result = evaluate(str(path), ds.load(pair_data))
    assert result["n_sequences"] == 6 and result["sequences_without_window"] == 0  # 6 test pairs, not 12 people
    assert result["window"] == 10 and 0.0 <= result["sequence_top1"] <= 1.0


def test_a_pair_graph_of_the_wrong_width_is_refused_in_one_line(tmp_path: Path) -> None:
    path = build_tiny_model(tmp_path / "bad.onnx", "pair", list(CLASSES), window=6, stride=3, fps=15.0,
                            graph_features=N_PAIR_FEATURES - 1)
    with pytest.raises(ModelError) as caught:
        load_contract(path)
    message = str(caught.value)
    assert "\n" not in message and f"[B, 6, {N_PAIR_FEATURES}]" in message and "input_kind pair" in message
    bad_version = build_tiny_model(tmp_path / "v.onnx", "pair", list(CLASSES), window=6, stride=3, fps=15.0, feature_version=7)
    with pytest.raises(ModelError, match="pair features version"):
        load_contract(bad_version)

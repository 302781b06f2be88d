"""Training, export and evaluation end to end on a small synthetic subset (needs the [train] extra)."""
from __future__ import annotations

import json
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest

from engine.framework.cli import main
from engine.errors import ConfigError, ModelError
from engine.classify.contract import load_contract
from engine.classify.features import FEATURE_VERSION
from trainer import dataset as ds
from trainer import synthetic_data
from trainer.config import config_from_dict, load_config


def test_cli_help_and_runtime_never_import_tensorflow() -> None:
    code = (
        "import sys\n"
        "from engine.framework.cli import _command_modules, build_parser\n"
        "build_parser(_command_modules()).format_help()\n"
        "import engine.classify.runtime, trainer.dataset, trainer.evaluation, trainer.mhad, trainer.windows\n"
        "bad = [m for m in ('tensorflow', 'keras', 'tf2onnx', 'matplotlib') if m in sys.modules]\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert done.returncode == 0, done.stdout + done.stderr


def test_configs_load_and_unknown_keys_are_named(tmp_path: Path) -> None:
    for model in ("keypoint_tcn", "skeleton_lstm", "skeleton_cnn", "autoencoder"):
        config = load_config(None, model)
        assert config.model == model and config.grid_points()
    with pytest.raises(ConfigError, match="windw"):
        config_from_dict({"windw": 3}, "keypoint_tcn")
    with pytest.raises(ConfigError, match="skeleton_lstm"):
        config_from_dict({"model": "skeleton_lstm"}, "keypoint_tcn")
    config = config_from_dict({"grid": {"filters": [8, 16], "window": [4, 6]}}, "keypoint_tcn")
    points = config.grid_points()
    assert len(points) == 4
    assert config.with_values(points[-1]).window == 6 and config.with_values(points[-1]).params["filters"] == 16


# The rest needs the [train] extra; a runtime-only install skips it.
pytestmark_train = pytest.mark.skipif(
    find_spec("tensorflow") is None or find_spec("tf2onnx") is None, reason="needs the [train] extra (TensorFlow, tf2onnx)"
)

_TINY = {
    "keypoint_tcn": {"fps": 10.0, "window": 12, "stride": 4, "train_stride": 4, "epochs": 2, "batch_size": 32,
                     "folds": 2, "params": {"filters": 16, "dilations": [1, 2]}},
    "skeleton_lstm": {"fps": 5.0, "window": 6, "stride": 3, "train_stride": 6, "image_size": 16, "epochs": 1,
                      "batch_size": 16, "folds": 2, "refit": False, "baseline": False, "params": {"filters": [8, 8], "embedding": 16, "units": 8}},
    "skeleton_cnn": {"fps": 5.0, "window": 6, "stride": 3, "train_stride": 6, "image_size": 16, "epochs": 1,
                     "batch_size": 32, "folds": 2, "refit": False, "baseline": False, "params": {"width": 8, "dense": 32}},
    "autoencoder": {"fps": 5.0, "window": 6, "stride": 3, "train_stride": 6, "image_size": 16, "epochs": 1,
                    "batch_size": 32, "folds": 2, "refit": False, "baseline": False, "params": {"code": 8, "width": 8, "dense": 16, "pretrain_epochs": 1}},
}


@pytest.fixture(scope="module")
def small_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four subjects (1-3 train/validate, 8 test), one repetition: 44 sequences."""
    path = tmp_path_factory.mktemp("data") / "small.npz"
    ds.save(synthetic_data.build(seed=5, subjects=[1, 2, 3, 8], repetitions=[1], extra_activities=False, variants=0), path)
    return path


def _train(model: str, data: Path, out: Path, **changes) -> Path:
    from trainer.training import train

    raw = {**_TINY[model], **changes}
    config = config_from_dict(raw, model)
    train(config, ds.load(data), out, log=lambda line: None)
    return out


@pytest.fixture(scope="module")
def tcn_run(small_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _train("keypoint_tcn", small_data, tmp_path_factory.mktemp("runs") / "tcn")


@pytestmark_train
def test_training_writes_a_complete_reproducible_run(tcn_run: Path, small_data: Path, tmp_path: Path) -> None:
    from trainer.export import read_run

    for name in ("run.json", "config.json", "history.json", "model.keras", "curves.png", "confusion_test.png"):
        assert (tcn_run / name).is_file(), name
    run = read_run(tcn_run)
    # two folds over training subjects 1-3 (round robin), then a refit on all three
    assert run["subjects"] == {"fit": [1, 2, 3], "validation": [[1, 3], [2]], "test": [8]}
    assert run["folds"] == 2 and len(run["fold_best_epochs"]) == 2 and run["refit"] is True
    assert run["input_kind"] == "keypoint_sequence" and run["window"] == 12 and run["feature_version"] == FEATURE_VERSION
    history = json.loads((tcn_run / "history.json").read_text())
    assert len(history["loss"]) == run["epochs"] == max(1, int(np.median(run["fold_best_epochs"])))
    assert 0 <= run["metrics"]["top1_window"] <= 1 and run["metrics"]["test_sequences"] == 11
    assert run["metrics"]["test_sequences_without_window"] == 0
    assert 0 <= run["baseline"]["top1_sequence"] <= 1 and run["metrics"]["baseline_top1_sequence"] == run["baseline"]["top1_sequence"]
    assert 0 <= run["unknown_below"] < 1
    again = _train("keypoint_tcn", small_data, tmp_path / "again")
    assert json.loads((again / "history.json").read_text()) == history  # fixed seeds


@pytestmark_train
def test_grid_keeps_the_best_validation_point(small_data: Path, tmp_path: Path) -> None:
    raw = {**_TINY["keypoint_tcn"], "epochs": 1, "grid": {"filters": [8, 16]}}
    config = config_from_dict(raw, "keypoint_tcn")
    from trainer.training import train

    train(config, ds.load(small_data), tmp_path / "grid", grid=True, log=lambda line: None)
    grid = json.loads((tmp_path / "grid" / "grid.json").read_text())
    assert [g["point"] for g in grid] == [{"filters": 8}, {"filters": 16}]
    chosen = json.loads((tmp_path / "grid" / "config.json").read_text())
    # the winner: best out-of-fold sequence accuracy, then window accuracy; first on a full tie
    best = max(grid, key=lambda g: (g["val_top1_sequence"], g["val_top1_window"]))
    assert chosen["params"]["filters"] == best["point"]["filters"]
    assert json.loads((tmp_path / "grid" / "run.json").read_text())["metrics"]["val_top1_window"] == best["val_top1_window"]


@pytestmark_train
def test_selection_never_sees_the_test_subjects(small_data: Path, tmp_path: Path) -> None:
    """Scrambling the test subjects' skeletons changes the test figures, never a choice."""
    from trainer.training import train

    data = ds.load(small_data)
    test = data.subjects == 8
    scrambled = data.keypoints.copy()
    scrambled[test] = np.random.default_rng(0).permutation(scrambled[test], axis=1)
    other = ds.Dataset(scrambled, data.lengths, data.labels, data.label_names, data.subjects, data.fps, data.split, data.ids)
    raw = {**_TINY["keypoint_tcn"], "epochs": 1, "grid": {"window": [8, 12]}}
    runs = []
    for name, dataset in (("a", data), ("b", other)):
        train(config_from_dict(raw, "keypoint_tcn"), dataset, tmp_path / name, grid=True, log=lambda line: None)
        runs.append(tmp_path / name)
    for name in ("grid.json", "config.json", "history.json"):
        assert (runs[0] / name).read_text() == (runs[1] / name).read_text(), name
    a, b = (json.loads((r / "run.json").read_text()) for r in runs)
    assert a["unknown_below"] == b["unknown_below"] and a["epochs"] == b["epochs"]
    assert (runs[0] / "test_metrics.json").read_text() != (runs[1] / "test_metrics.json").read_text()  # the test data did change


@pytestmark_train
def test_export_agrees_with_keras_and_carries_the_contract(tcn_run: Path, small_data: Path, tmp_path: Path) -> None:
    import keras
    import onnxruntime as ort

    from trainer.export import export, parity_inputs, read_run

    out = tmp_path / "tcn.onnx"
    assert main(["export", str(tcn_run), "-o", str(out)]) == 0
    contract = load_contract(out)
    assert contract.input_kind == "keypoint_sequence" and contract.window == 12 and contract.stride == 4
    assert contract.labels[0] == "jumping in place" and contract.fps == 10.0
    assert "top1_window" in contract.metrics and contract.feature_version == FEATURE_VERSION
    # partial windows from half a second (5 model frames at 10 fps), as trained
    assert contract.min_window == read_run(tcn_run)["min_window"] == 5 and contract.padding == "first_frame"
    model = keras.models.load_model(tcn_run / "model.keras", compile=False)
    inputs = parity_inputs(read_run(tcn_run), ds.load(small_data))
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: inputs[0]})[0]
    want = np.asarray(model(inputs[0], training=False))
    assert got.shape == (len(inputs[0]), 11)
    assert np.max(np.abs(got - want)) <= 1e-4
    with pytest.raises(ModelError, match="differ"):
        export(tcn_run, tmp_path / "strict.onnx", tolerance=-1.0)  # a check that can fail does fail
    assert not (tmp_path / "strict.onnx").exists()


@pytestmark_train
def test_evaluate_json_runs_the_onnx_model_through_the_runtime(tcn_run: Path, small_data: Path, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from trainer.export import export, read_run

    out = tmp_path / "tcn.onnx"
    export(tcn_run, out)
    capsys.readouterr()
    assert main(["evaluate", "--model", str(out), "--data", str(small_data), "--json", "--out", str(tmp_path / "ev")]) == 0
    result = json.loads(capsys.readouterr().out)
    for key in ("top1", "top5", "per_class", "n_windows", "n_sequences", "sequence_top1", "confusion"):
        assert key in result, key
    assert result["n_sequences"] == 11 and result["n_windows"] == sum(map(sum, result["confusion"]))
    assert result["sequences_without_window"] == 0 and result["n_partial_windows"] > 0
    assert result["top5"] >= result["top1"]
    # The runtime's figures equal the Keras ones the training run recorded on the same windows.
    run = read_run(tcn_run)
    assert abs(result["top1"] - run["metrics"]["top1_window"]) < 1e-6
    assert result["n_partial_windows"] == run["metrics"]["test_partial_windows"]
    assert (tmp_path / "ev" / "confusion.png").is_file()


@pytestmark_train
@pytest.mark.parametrize("model", ["skeleton_lstm", "skeleton_cnn", "autoencoder"])
def test_image_models_train_export_and_evaluate(model: str, small_data: Path, tmp_path: Path) -> None:
    from trainer.evaluation import evaluate
    from trainer.export import export, read_run

    run_dir = _train(model, small_data, tmp_path / model)
    result = export(run_dir, tmp_path / f"{model}.onnx")
    assert result.max_abs_diff <= 1e-4 and result.n_checked > 0
    contract = load_contract(result.path)
    assert contract.input_kind == read_run(run_dir)["input_kind"] and contract.image_size == 16
    figures = evaluate(str(result.path), ds.load(small_data))
    assert figures["n_sequences"] == 11
    # pose.skeleton may move a pixel with the batch's make-up: near, not always equal
    assert abs(figures["top1"] - read_run(run_dir)["metrics"]["top1_window"]) < 0.05

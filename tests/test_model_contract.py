"""The model contract refuses bad classifier files with one line naming the thing, before inference."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from engine.errors import ModelError
from engine.classify.features import FEATURE_VERSION, N_FEATURES
from engine.classify.contract import INPUT_KINDS, REQUIRED_KEYS, load_contract, open_model, write_metadata
from tiny_models import build_tiny_model

LABELS = ["raise", "lower", "wave"]


def refusal(path) -> str:
    with pytest.raises(ModelError) as info:
        load_contract(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    return message


@pytest.mark.parametrize("kind", INPUT_KINDS)
def test_every_input_kind_loads_and_runs(tmp_path, kind):
    path = build_tiny_model(tmp_path / f"{kind}.onnx", kind, LABELS, window=6, stride=3, fps=15.0, trained_on="unit test")
    contract, session = open_model(path)
    assert contract.labels == tuple(LABELS)
    assert (contract.input_kind, contract.window, contract.stride, contract.fps) == (kind, 6, 3, 15.0)
    assert contract.trained_on == "unit test"
    assert contract.name == kind
    assert contract.input_names == tuple(i.name for i in session.get_inputs())
    assert all(shape[0] is None for shape in contract.input_shapes)
    feeds = {i.name: np.random.default_rng(0).random([2] + i.shape[1:], dtype=np.float32) for i in session.get_inputs()}
    probs = session.run(None, feeds)[0]
    assert probs.shape == (2, len(LABELS))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_pyramid_levels_follow_image_size(tmp_path):
    contract = load_contract(build_tiny_model(tmp_path / "p.onnx", "skeleton_pyramid", LABELS, image_size=64))
    assert contract.pyramid_sizes == (64, 32, 16, 8)
    assert [shape[1] for shape in contract.input_shapes] == [64, 32, 16, 8]


def test_missing_file(tmp_path):
    assert "not found" in refusal(tmp_path / "absent.onnx")


def test_not_onnx(tmp_path):
    path = tmp_path / "garbage.onnx"
    path.write_bytes(b"this is not a protobuf \x00\xff" * 100)
    assert "not an ONNX model" in refusal(path)


def test_file_over_one_gib_is_refused_by_size(tmp_path):
    path = tmp_path / "huge.onnx"
    with open(path, "wb") as f:  # sparse: takes no disk space
        f.truncate((1 << 30) + 1)
    message = refusal(path)
    assert "1 GiB" in message and "not an ONNX" not in message


@pytest.mark.parametrize("key", REQUIRED_KEYS)
def test_missing_key_is_named(tmp_path, key):
    path = build_tiny_model(tmp_path / "m.onnx", "keypoint_sequence", LABELS, omit=(key,))
    message = refusal(path)
    assert f"'{key}'" in message and "missing" in message


@pytest.mark.parametrize(
    "key, value",
    [
        ("labels", "not json"),
        ("labels", "[]"),
        ("labels", '["a", "a", "b"]'),
        ("labels", '{"a": 1}'),
        ("labels", '["unknown", "a", "b"]'),
        ("window", "eight"),
        ("window", "0"),
        ("stride", "-1"),
        ("stride", "1.5"),
        ("fps", "fast"),
        ("fps", "0"),
        ("fps", "nan"),
        ("image_size", "-3"),
        ("metrics", "[1, 2]"),
        ("metrics", "{bad"),
        ("feature_version", "v1"),
    ],
)
def test_bad_value_names_the_key(tmp_path, key, value):
    path = build_tiny_model(tmp_path / "m.onnx", "keypoint_sequence", LABELS, metadata={key: value})
    assert f"'{key}'" in refusal(path)


def test_labels_count_must_match_output(tmp_path):
    path = build_tiny_model(tmp_path / "m.onnx", "keypoint_sequence", LABELS, metadata={"labels": LABELS + ["extra"]})
    message = refusal(path)
    assert "'labels'" in message and "4 classes" in message


def test_unknown_input_kind_lists_accepted(tmp_path):
    message = refusal(build_tiny_model(tmp_path / "m.onnx", "keypoint_sequence", LABELS, metadata={"input_kind": "video_clip"}))
    assert "video_clip" in message
    assert all(kind in message for kind in INPUT_KINDS)


def test_window_disagreeing_with_graph(tmp_path):
    message = refusal(build_tiny_model(tmp_path / "m.onnx", "keypoint_sequence", LABELS, window=8, graph_window=10))
    assert "window 8" in message and "10" in message


def test_feature_count_disagreeing_with_graph(tmp_path):
    message = refusal(build_tiny_model(tmp_path / "m.onnx", "keypoint_sequence", LABELS, graph_features=N_FEATURES - 18))
    assert str(N_FEATURES) in message and str(N_FEATURES - 18) in message


@pytest.mark.parametrize("kind", ["skeleton_image", "skeleton_sequence", "skeleton_pyramid"])
def test_image_size_disagreeing_with_graph(tmp_path, kind):
    message = refusal(build_tiny_model(tmp_path / "m.onnx", kind, LABELS, image_size=16, graph_image_size=32))
    assert "image_size 16" in message and "32" in message


def test_image_kind_needs_an_image_size(tmp_path):
    message = refusal(build_tiny_model(tmp_path / "m.onnx", "skeleton_image", LABELS, image_size=0, graph_image_size=16))
    assert "'image_size'" in message


def test_pyramid_image_size_must_divide_by_8(tmp_path):
    message = refusal(build_tiny_model(tmp_path / "m.onnx", "skeleton_pyramid", LABELS, image_size=20, graph_image_size=16))
    assert "'image_size'" in message and "multiple of 8" in message


def test_feature_version_from_another_engine(tmp_path):
    message = refusal(build_tiny_model(tmp_path / "m.onnx", "keypoint_sequence", LABELS, feature_version=FEATURE_VERSION + 1))
    assert "'feature_version'" in message and "retrain" in message


def test_write_metadata_round_trip_and_replace(tmp_path):
    path = build_tiny_model(tmp_path / "m.onnx", "keypoint_sequence", LABELS)
    model = onnx.load(str(path))
    write_metadata(model, {"metrics": {"top1_window": 0.5}, "stride": 5, "trained_on": "mhad S01-S07"})
    props = {p.key: p.value for p in model.metadata_props}
    assert len(props) == len(model.metadata_props)  # replaced, not duplicated
    assert json.loads(props["metrics"]) == {"top1_window": 0.5}
    assert json.loads(props["labels"]) == LABELS
    onnx.save(model, str(path))
    contract = load_contract(path)
    assert (contract.stride, contract.trained_on, contract.metrics) == (5, "mhad S01-S07", {"top1_window": 0.5})


def test_write_metadata_refuses_unknown_keys(tmp_path):
    model = onnx.load(str(build_tiny_model(tmp_path / "m.onnx", "keypoint_sequence", LABELS)))
    with pytest.raises(ModelError, match="windwo"):
        write_metadata(model, {"windwo": 8})

"""Live pair labels: which tracks pair up, the pair window through a real onnxruntime session, and the
classify stage publishing a pair label with both track ids beside the one-person labels (real sockets)."""
from __future__ import annotations

import time

import msgpack
import numpy as np
import pytest

from engine.classify.pairing import PairingOptions, PairRuntime, match_pairs
from engine.classify.runtime import ClassifierRuntime, ClassifyOptions, track_windows
from engine.errors import ConfigError, ModelError
from engine.framework import transport
from engine.framework.schema import decode_label, encode_label, format_label
from pipeline_helpers import classify_process
from test_pair_input import person, punch_window
from tiny_models import build_tiny_model

LABELS = ["hugging", "pushing", "kicking"]
ONE = ["hands_up", "hands_down", "other_a"]


@pytest.fixture(scope="module")
def pair_model(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("pair") / "pair_tiny.onnx", "pair", LABELS, window=6, stride=3, fps=15.0, min_window=6)


def frame(*people: np.ndarray) -> np.ndarray:
    return np.stack(people).astype(np.float32)


def test_two_people_face_to_face_pair_and_a_third_far_away_does_not() -> None:
    kp = frame(person(200.0), person(330.0, facing=-1), person(600.0, facing=-1))
    assert match_pairs(kp, np.array([7, 3, 9]), set()) == [(1, 0)]  # rows of tracks 3 and 7, lower id first
    assert match_pairs(kp, np.array([7, -1, 9]), set()) == []  # no id yet: never paired


def test_only_people_facing_each_other_start_a_pair_but_a_pair_going_on_is_kept() -> None:
    apart = frame(person(200.0, facing=-1), person(330.0, facing=1))  # back to back
    assert match_pairs(apart, np.array([1, 2]), set()) == []
    for one_way in ((1, 1), (-1, -1), (0, -1), (1, 0), (0, 0)):  # walking one way, or seen from the front
        assert match_pairs(frame(person(200.0, facing=one_way[0]), person(330.0, facing=one_way[1])),
                           np.array([1, 2]), set()) == [], one_way
    assert match_pairs(frame(person(200.0, facing=1), person(330.0, facing=-1)), np.array([1, 2]), set()) == [(0, 1)]
    assert match_pairs(apart, np.array([1, 2]), {(1, 2)}) == [(0, 1)]  # departing: followed to the end
    far = frame(person(100.0), person(600.0, facing=-1))  # 500 px at about 190 px of body height
    assert match_pairs(far, np.array([1, 2]), {(1, 2)}) == []


def test_each_person_is_in_one_pair_the_closest_first() -> None:
    kp = frame(person(200.0), person(300.0, facing=-1), person(420.0, facing=-1))
    assert match_pairs(kp, np.array([1, 2, 3]), set()) == [(0, 1)]
    assert match_pairs(kp, np.array([1, 2, 3]), {(2, 3)}) == [(1, 2)]  # a pair going on comes before a new one
    with pytest.raises(ConfigError, match="keep_distance"):
        PairingOptions(start_distance=2.0, keep_distance=1.0)


def test_pair_runtime_labels_the_pair_with_both_ids_as_evaluate_scores_its_window(pair_model) -> None:
    window = punch_window(9)
    far = person(620.0, facing=-1)
    rt = PairRuntime(pair_model, ClassifyOptions(ema=0.0))
    labels = []
    for seq, (a, b) in enumerate(window):
        # tracks come in any order, and a third person far away is in every frame
        labels += rt.update("cam", seq, 15.0, np.array([11, 4, 5]), frame(b, a, far), 0)
    assert [(lab.track, lab.tracks, lab.seq_from, lab.seq_to) for lab in labels] == [(4, [4, 11], 0, 5), (4, [4, 11], 3, 8)]
    # the same windows offline, through the runtime's windowing, give the same scores
    runtime = ClassifierRuntime(pair_model, ClassifyOptions(ema=0.0))
    offline = list(track_windows(runtime.contract, window, 15.0))  # (track 4, track 11) per frame
    probs = runtime.classify_windows([w.items for w in offline])
    for lab, p in zip(labels, probs):
        assert dict(lab.topk)[LABELS[int(np.argmax(p))]] == pytest.approx(float(p.max()), abs=1e-6)
    message = decode_label(encode_label(labels[0].as_dict(), 1))
    assert message["kind"] == "pair" and message["tracks"] == [4, 11] and message["track"] == 4
    assert "tracks 4+11" in format_label(message)
    rt.end_stream("cam")
    assert rt.pair_count() == 0


def test_a_one_person_model_is_refused_as_a_pair_model(tmp_path) -> None:
    one = build_tiny_model(tmp_path / "one.onnx", "keypoint_sequence", ONE, window=6, stride=3, fps=15.0)
    with pytest.raises(ModelError, match="--pair-model needs a model with input_kind 'pair'"):
        PairRuntime(one)


@pytest.mark.parametrize("pair_unknown_below", [None, "1.0"])
def test_classify_stage_publishes_pair_labels_beside_one_person_labels(tmp_path, pair_model, pair_unknown_below) -> None:
    one = build_tiny_model(tmp_path / "one.onnx", "keypoint_sequence", ONE, window=6, stride=3, fps=15.0, min_window=6)
    window = punch_window(6)
    labels: list[dict] = []
    with classify_process(one, "--pair-model", str(pair_model), "--ema", "0",
                          *(["--pair-unknown-below", pair_unknown_below] if pair_unknown_below else [])) as (proc, push, sub):

        def send_stream(stream: str) -> None:
            for seq, people in enumerate(window):
                transport.send(push, {"stream": stream, "seq": seq, "t_capture_ns": time.time_ns(), "fps": 15.0,
                                      "tracks": [2, 8]}, {"keypoints": people})
            transport.send(push, {"stream": stream, "seq": len(window), "t_capture_ns": time.time_ns(), "eos": True})

        deadline = time.monotonic() + 60
        for n in range(30):
            send_stream(f"s{n}")
            until = time.monotonic() + 1.0
            while time.monotonic() < until:
                if sub.poll(100):
                    labels.append(msgpack.unpackb(sub.recv_multipart()[1], raw=False))
            if any(lab.get("kind") == "pair" for lab in labels) or time.monotonic() > deadline or proc.poll() is not None:
                break
    _, err = proc.communicate(timeout=10)
    stream = next((lab["stream"] for lab in labels if lab.get("kind") == "pair"), None)
    assert stream is not None, err
    mine = [lab for lab in labels if lab["stream"] == stream]
    pair = [lab for lab in mine if lab.get("kind") == "pair"]
    single = [lab for lab in mine if "kind" not in lab]
    assert [(lab["track"], lab["tracks"], lab["model"]) for lab in pair] == [(2, [2, 8], "pair_tiny")]
    assert (pair[0]["seq_from"], pair[0]["seq_to"]) == (0, 5)
    # --pair-unknown-below holds pair labels to their own threshold; one-person labels keep theirs
    assert pair[0]["label"] == "unknown" if pair_unknown_below else pair[0]["label"] in LABELS
    assert sorted(lab["track"] for lab in single) == [2, 8] and all("tracks" not in lab for lab in single)
    assert all(lab["label"] in ONE for lab in single)


def test_pairing_does_not_depend_on_the_order_of_rows_or_ids() -> None:
    """Every row order and every id order finds the same pair (the closer two, not the small far one)."""
    a, b = person(200.0, torso=90.0), person(440.0, torso=90.0, facing=-1)
    far = person(20.0, torso=30.0)
    for rows in ((a, b, far), (b, far, a), (far, a, b), (b, a, far)):
        for ids in ((1, 2, 3), (8, 3, 5), (3, 8, 5), (5, 3, 8)):
            kp, tracks = frame(*rows), np.array(ids)
            pairs = match_pairs(kp, tracks, set())
            assert len(pairs) == 1
            (i, j), = pairs
            assert tracks[i] < tracks[j] and {id(rows[i]), id(rows[j])} == {id(a), id(b)}


def test_a_pair_whose_top_class_is_an_unknown_label_gets_no_pair_label(tmp_path, pair_model) -> None:
    # pair_sbu's `none` class: two people near each other who do nothing together publish no pair label.
    window = punch_window(9)
    runtime = ClassifierRuntime(pair_model, ClassifyOptions(ema=0.0))
    probs = runtime.classify_windows([w.items for w in track_windows(runtime.contract, window, 15.0)])
    tops = [LABELS[int(np.argmax(p))] for p in probs]
    quiet = build_tiny_model(tmp_path / "pair_quiet.onnx", "pair", LABELS, window=6, stride=3, fps=15.0, min_window=6,
                             unknown_labels=[tops[0]])
    labels = []
    rt = PairRuntime(quiet, ClassifyOptions(ema=0.0))
    for seq, (a, b) in enumerate(window):
        labels += rt.update("cam", seq, 15.0, np.array([4, 11]), frame(a, b), 0)
    assert [lab.topk[0][0] for lab in labels] == [t for t in tops if t != tops[0]]
    assert all(lab.label == lab.topk[0][0] for lab in labels)
    assert rt.pair_count() == 1  # the pair is still followed: its label comes back when the top class changes

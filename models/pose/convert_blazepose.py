"""Reproduce models/pose/pose_landmark_full.onnx from the pinned MediaPipe wheel, in one command.

Run it in a conversion venv outside the repo (tf2onnx imports TensorFlow even for
--tflite, which the engine never needs at run time):

    python3.11 -m venv .convert-venv
    .convert-venv/bin/pip install -r models/pose/requirements-convert.txt
    .convert-venv/bin/python models/pose/convert_blazepose.py

Steps: download `mediapipe==0.10.14` (cp311 manylinux, no deps) unless --wheel names it;
take the two .tflite files out of it; rewrite the detector's flatbuffer so that its
sparse float16 weights (DENSIFY -> DEQUANTIZE) become dense float32 constants, which
tf2onnx cannot otherwise read; convert both with tf2onnx (opset 13); keep only the
outputs the engine reads; check every model against the TFLite interpreter on real
photos (see --images) and print the max abs differences and sha256 of each file.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

WHEEL_PIN = "mediapipe==0.10.14"
WHEEL_MEMBERS = {
    "pose_detection.tflite": "mediapipe/modules/pose_detection/pose_detection.tflite",
    "pose_landmark_full.tflite": "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
    "LICENSE": "mediapipe-0.10.14.dist-info/LICENSE",
}
OPSET = 13
HERE = Path(__file__).resolve().parent


# ---------------------------------------------------------------- wheel


def fetch_wheel(dest: Path) -> Path:
    """The pinned wheel for CPython 3.11 manylinux x86_64 (the .tflite files are the same on every platform)."""
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--python-version", "3.11", "--platform", "manylinux_2_17_x86_64", "-d", str(dest), WHEEL_PIN,
    ]
    subprocess.run(cmd, check=True)
    wheels = sorted(dest.glob("mediapipe-0.10.14-*.whl"))
    if not wheels:
        raise SystemExit(f"pip download did not produce a {WHEEL_PIN} wheel in {dest}")
    return wheels[0]


def extract(wheel: Path, dest: Path) -> dict[str, Path]:
    out = {}
    with zipfile.ZipFile(wheel) as z:
        for name, member in WHEEL_MEMBERS.items():
            out[name] = dest / name
            out[name].write_bytes(z.read(member))
    return out


# ---------------------------------------------------------------- detector rewrite


def _densify(shape: np.ndarray, sparsity, values: np.ndarray) -> np.ndarray:
    """Expand a TFLite sparse tensor (dense and CSR dimensions, no block map) to dense."""
    if sparsity.blockMap is not None and len(sparsity.blockMap):
        raise SystemExit("block-sparse weights are not handled; the pinned model has none")
    order = list(sparsity.traversalOrder)
    rows = np.zeros((1, 0), np.int64)  # one row of coordinates per reached position
    for meta in sparsity.dimMetadata:
        n = len(rows)
        if meta.format == 0:  # DENSE
            size = int(meta.denseSize)
            rows = np.concatenate([np.repeat(rows, size, axis=0), np.tile(np.arange(size), n)[:, None]], axis=1)
        else:  # SPARSE_CSR: segments index into indices, one segment per parent position
            seg = np.asarray(meta.arraySegments.values, np.int64)
            idx = np.asarray(meta.arrayIndices.values, np.int64)
            counts = np.diff(seg)[:n]
            rows = np.concatenate([np.repeat(rows, counts, axis=0), idx[seg[0]:seg[n]][:, None]], axis=1)
    if len(rows) != values.size:
        raise SystemExit(f"sparse tensor has {values.size} values but {len(rows)} positions")
    dense = np.zeros(tuple(int(s) for s in shape), values.dtype)
    coords = np.empty_like(rows)
    coords[:, order] = rows  # traversal order -> tensor dimension order
    dense[tuple(coords.T)] = values.reshape(-1)
    return dense


def dense_detector(src: Path, dst: Path) -> dict[str, int]:
    """Rewrite the detector so every DEQUANTIZE output is a float32 constant and drop dead parts."""
    from ai_edge_litert import schema_py_generated as schema
    import flatbuffers

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(src.read_bytes(), 0))
    if len(model.subgraphs) != 1:
        raise SystemExit("expected one subgraph")
    sg = model.subgraphs[0]
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    op_name = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    producers = {o: op for op in sg.operators for o in op.outputs}

    def const_values(t_index: int) -> np.ndarray:
        tensor = sg.tensors[t_index]
        producer = producers.get(t_index)
        if producer is not None and op_name[codes[producer.opcodeIndex]] == "DENSIFY":
            sparse = sg.tensors[producer.inputs[0]]
            raw = _buffer_array(model, sparse)
            return _densify(tensor.shape, sparse.sparsity, raw)
        if producer is not None:
            raise SystemExit(f"DEQUANTIZE input {tensor.name!r} is produced by an op other than DENSIFY")
        return _buffer_array(model, tensor).reshape(tuple(int(s) for s in tensor.shape))

    removed = {"DENSIFY": 0, "DEQUANTIZE": 0}
    kept = []
    for op in sg.operators:
        name = op_name[codes[op.opcodeIndex]]
        if name == "DEQUANTIZE":
            values = const_values(op.inputs[0]).astype(np.float32)
            out = sg.tensors[op.outputs[0]]
            if out.type != schema.TensorType.FLOAT32:
                raise SystemExit(f"DEQUANTIZE output {out.name!r} is not float32")
            buf = schema.BufferT()
            buf.data = np.frombuffer(values.tobytes(), np.uint8)
            model.buffers.append(buf)
            out.buffer = len(model.buffers) - 1
            removed[name] += 1
        elif name == "DENSIFY":
            removed[name] += 1
        else:
            kept.append(op)
    sg.operators = kept
    _drop_unused(model, schema)

    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    dst.write_bytes(bytes(builder.Output()))
    return removed


def _buffer_array(model, tensor) -> np.ndarray:
    dtypes = {1: np.float16, 0: np.float32}
    if tensor.type not in dtypes:
        raise SystemExit(f"constant {tensor.name!r} has TFLite type {tensor.type}, expected float16/float32")
    data = model.buffers[tensor.buffer].data
    return np.frombuffer(np.asarray(data, np.uint8).tobytes(), dtypes[tensor.type])


def _drop_unused(model, schema) -> None:
    """Remove tensors, buffers and opcodes nothing refers to any more, renumbering references."""
    sg = model.subgraphs[0]
    used_t = sorted({i for op in sg.operators for i in list(op.inputs) + list(op.outputs) if i >= 0}
                    | set(sg.inputs) | set(sg.outputs))
    t_map = {old: new for new, old in enumerate(used_t)}
    sg.tensors = [sg.tensors[i] for i in used_t]
    for op in sg.operators:
        op.inputs = [t_map[i] if i >= 0 else i for i in op.inputs]
        op.outputs = [t_map[i] for i in op.outputs]
    sg.inputs = [t_map[i] for i in sg.inputs]
    sg.outputs = [t_map[i] for i in sg.outputs]

    used_b = {0} | {t.buffer for t in sg.tensors} | {m.buffer for m in (model.metadata or [])}
    b_order = sorted(used_b)
    b_map = {old: new for new, old in enumerate(b_order)}
    model.buffers = [model.buffers[i] for i in b_order]
    for t in sg.tensors:
        t.buffer = b_map[t.buffer]
    for m in model.metadata or []:
        m.buffer = b_map[m.buffer]

    used_c = sorted({op.opcodeIndex for op in sg.operators})
    c_map = {old: new for new, old in enumerate(used_c)}
    model.operatorCodes = [model.operatorCodes[i] for i in used_c]
    for op in sg.operators:
        op.opcodeIndex = c_map[op.opcodeIndex]


# ---------------------------------------------------------------- ONNX


def to_onnx(tflite: Path, dst: Path, keep_outputs: int | None, batch: bool = False) -> list[str]:
    """tf2onnx conversion; `keep_outputs` prunes the graph to its first N outputs (by rank order below);
    `batch` makes the first dimension of the input and outputs dynamic (see dynamic_batch)."""
    import onnx
    import tf2onnx
    from onnx import utils as onnx_utils

    model, _ = tf2onnx.convert.from_tflite(str(tflite), opset=OPSET)
    names = [o.name for o in model.graph.output]
    if keep_outputs is not None:
        model = onnx_utils.Extractor(model).extract_model([i.name for i in model.graph.input], names[:keep_outputs])
    _canonical_names(model)
    if batch:
        dynamic_batch(model)
    model.producer_name = "har-engine convert_blazepose.py"
    model.doc_string = f"Converted from {tflite.name} of {WHEEL_PIN} (Apache-2.0) with tf2onnx {tf2onnx.__version__}, opset {OPSET}"
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return [o.name for o in model.graph.output]


def dynamic_batch(model) -> None:
    """Make dimension 0 of the graph's input and outputs a named, dynamic `batch`, in place.

    TFLite models have a batch of 1; the engine runs several people's crops in one call. A
    Reshape of an activation whose target shape starts with the literal 1 gets 0 there
    ("copy the input's batch") so that the graph stays valid for any batch; each item's
    outputs are those of a batch-1 call (checked by the conversion scripts).
    """
    from onnx import numpy_helper

    for value in [*model.graph.input, *model.graph.output]:
        dim = value.type.tensor_type.shape.dim[0]
        dim.ClearField("dim_value")
        dim.dim_param = "batch"
    inits = {t.name: t for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type != "Reshape" or node.input[0] in inits or node.input[1] not in inits:
            continue
        shape = numpy_helper.to_array(inits[node.input[1]]).copy()
        if shape.ndim == 1 and len(shape) > 1 and shape[0] == 1:
            shape[0] = 0
            inits[node.input[1]].CopyFrom(numpy_helper.from_array(shape, node.input[1]))


def _canonical_names(model) -> None:
    """Rename constants, nodes and intermediate values by position in the graph.

    tf2onnx numbers the names it makes up from global counters whose values vary from
    run to run; positional names make two conversions byte-identical.
    """
    graph = model.graph
    keep = {v.name for v in graph.input} | {v.name for v in graph.output}
    inits = {t.name: t for t in graph.initializer}
    names: dict[str, str] = {}
    ordered = []
    for i, node in enumerate(graph.node):
        for j, name in enumerate(node.input):
            if name in inits and name not in names:
                names[name] = f"const_{len(ordered)}"
                ordered.append(inits[name])
            node.input[j] = names.get(name, name)
        for j, name in enumerate(node.output):
            if name and name not in keep:
                names[name] = f"value_{i}_{j}"
                node.output[j] = names[name]
        node.name = f"{node.op_type}_{i}"
    for name, tensor in inits.items():
        tensor.name = names.get(name, name)
    del graph.value_info[:]
    del graph.initializer[:]
    graph.initializer.extend(ordered)


# ---------------------------------------------------------------- checks


def _tflite_run(path: Path, x: np.ndarray) -> list[np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path), num_threads=1)
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    return [interp.get_tensor(d["index"]).copy() for d in interp.get_output_details()]


def _onnx_run(path: Path, x: np.ndarray) -> dict[tuple, np.ndarray]:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outs = sess.run(None, {sess.get_inputs()[0].name: x})
    return outs


def _letterbox(image_bgr: np.ndarray, size: int) -> np.ndarray:
    import cv2

    h, w = image_bgr.shape[:2]
    s = size / max(h, w)
    nh, nw = round(h * s), round(w * s)
    canvas = np.zeros((size, size, 3), np.uint8)
    y0, x0 = (size - nh) // 2, (size - nw) // 2
    canvas[y0:y0 + nh, x0:x0 + nw] = cv2.resize(image_bgr, (nw, nh), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB).astype(np.float32)


def compare(images: list[Path], tflites: dict[str, Path], onnxs: dict[str, Path], dense: Path) -> dict:
    """Max abs differences, per model output, between TFLite (original file) and the ONNX file."""
    import cv2

    report: dict = {"images": [p.name for p in images]}
    det_diff: dict[str, float] = {}
    lmk_diff: dict[str, float] = {}
    dense_identical = True
    for path in images:
        image = cv2.imread(str(path))
        if image is None:
            raise SystemExit(f"cannot read {path}")
        x_det = (_letterbox(image, 224) / 127.5 - 1.0)[None]
        ref = _tflite_run(tflites["pose_detection.tflite"], x_det)
        dense_out = _tflite_run(dense, x_det)
        dense_identical &= all(np.array_equal(a, b) for a, b in zip(ref, dense_out))
        got = _onnx_run(onnxs["pose_detection.onnx"], x_det)
        by_shape = {o.shape: o for o in got}
        for r in ref:
            o = by_shape[r.shape]
            det_diff[f"{list(r.shape)}"] = max(det_diff.get(f"{list(r.shape)}", 0.0), float(np.abs(r - o).max()))
            if r.shape[-1] == 1:
                sig = lambda v: 1 / (1 + np.exp(-np.clip(v.astype(np.float64), -100, 100)))  # noqa: E731
                det_diff["sigmoid(scores)"] = max(det_diff.get("sigmoid(scores)", 0.0), float(np.abs(sig(r) - sig(o)).max()))
                same = np.array_equal(sig(r) > 0.5, sig(o) > 0.5)
                report.setdefault("same_anchors_above_0.5", True)
                report["same_anchors_above_0.5"] &= bool(same)
        x_lmk = (_letterbox(image, 256) / 255.0)[None]
        ref = _tflite_run(tflites["pose_landmark_full.tflite"], x_lmk)
        got = _onnx_run(onnxs["pose_landmark_full.onnx"], x_lmk)
        by_shape = {o.shape: o for o in got}
        for r in ref:
            if r.shape in by_shape:
                key = f"{list(r.shape)}"
                lmk_diff[key] = max(lmk_diff.get(key, 0.0), float(np.abs(r - by_shape[r.shape]).max()))
    report["detector_max_abs_diff"] = det_diff
    report["landmark_max_abs_diff"] = lmk_diff
    report["dense_detector_bit_identical_to_original"] = bool(dense_identical)
    return report


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rerun_with_fixed_hash_seed() -> None:
    """tf2onnx walks sets of names: with the hash seed fixed, a conversion is byte-identical run after run."""
    if os.environ.get("PYTHONHASHSEED") != "0":
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": "0"})


def main(argv: list[str] | None = None) -> int:
    rerun_with_fixed_hash_seed()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheel", type=Path, help=f"a downloaded {WHEEL_PIN} wheel (else pip downloads it)")
    ap.add_argument("--out", type=Path, default=HERE, help="where the .onnx files go (default: this folder)")
    ap.add_argument("--images", type=Path, nargs="*", help="real photos for the TFLite check "
                    "(default: messi5.jpg, basketball1.png and a vtest.avi frame from tests/media.py)")
    ap.add_argument("--report", type=Path, help="write the check as JSON here")
    ap.add_argument("--face-detector", action="store_true",
                    help="also write pose_detection.onnx (BlazePose's own detector, which the engine no longer uses)")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        wheel = args.wheel or fetch_wheel(tmp / "wheel")
        files = extract(wheel, tmp)
        dense = tmp / "pose_detection_dense.tflite"
        removed = dense_detector(files["pose_detection.tflite"], dense)
        print(f"detector: removed {removed}", flush=True)
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "LICENSE.mediapipe").write_bytes(files["LICENSE"].read_bytes())
        onnxs = {
            # BlazePose's face-based detector is converted and checked, but the engine no longer ships
            # it (pose/person_detector.py finds people): kept only with --face-detector.
            "pose_detection.onnx": (args.out if args.face_detector else tmp) / "pose_detection.onnx",
            "pose_landmark_full.onnx": args.out / "pose_landmark_full.onnx",
        }
        print("detector outputs:", to_onnx(dense, onnxs["pose_detection.onnx"], None), flush=True)
        # Landmark outputs in the TFLite order: landmarks [1,195], pose flag [1,1], segmentation
        # [1,256,256,1], heatmap [1,64,64,39], world landmarks [1,117]; keep the first two only.
        print("landmark outputs:", to_onnx(files["pose_landmark_full.tflite"], onnxs["pose_landmark_full.onnx"], 2,
                                              batch=True),
              flush=True)

        images = args.images
        if images is None:
            images = _default_images(tmp)
        report = compare(images, files, onnxs, dense)
        report["wheel"] = wheel.name
        report["sha256"] = {name: sha256(p) for name, p in onnxs.items()}
        report["sha256_tflite"] = {name: sha256(p) for name, p in files.items() if name.endswith(".tflite")}
        text = json.dumps(report, indent=2)
        print(text)
        if args.report:
            args.report.write_text(text + "\n")
    return 0


def _default_images(tmp: Path) -> list[Path]:
    import cv2

    sys.path.insert(0, str(HERE.parents[1]))
    from tests.media import media_path

    frame_path = tmp / "vtest_frame30.png"
    cap = cv2.VideoCapture(str(media_path("vtest.avi")))
    for _ in range(30):
        ok, frame = cap.read()
    cap.release()
    if not ok:
        raise SystemExit("cannot read vtest.avi")
    cv2.imwrite(str(frame_path), frame)
    return [media_path("messi5.jpg"), media_path("basketball1.png"), frame_path]


if __name__ == "__main__":
    sys.exit(main())

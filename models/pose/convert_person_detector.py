"""Reproduce models/pose/person_detection.onnx from the pinned MediaPipe Objectron npm package.

Run it in the conversion venv of convert_blazepose.py (see models/pose/README.md):

    .convert-venv/bin/python models/pose/convert_person_detector.py --report models/pose/person_detection_check.json

Steps: `npm pack @mediapipe/objectron@0.4.1675468480` (Apache-2.0) unless --tgz names the
downloaded tarball, and check its sha256; cut `object_detection_ssd_mobilenetv2_oidv4_fp16.tflite`
(an SSD MobileNetV2 trained on Open Images v4, 24 classes, `Person` among them) and its label
map out of `objectron_solution_packed_assets.data` at the offsets that the package's
`objectron_solution_packed_assets_loader.js` gives; convert it with tf2onnx (opset 13; its
float16 weights become float32 constants); make the batch dimension dynamic; check the ONNX
model against the TFLite interpreter on real photos, batch 1 and batched, and print the max
abs differences and the sha256 of each file.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from convert_blazepose import (  # noqa: E402
    OPSET, _canonical_names, _default_images, _onnx_run, _tflite_run, dynamic_batch, rerun_with_fixed_hash_seed,
)

PACKAGE = "@mediapipe/objectron@0.4.1675468480"
TGZ_NAME = "mediapipe-objectron-0.4.1675468480.tgz"
TGZ_SHA256 = "fc3e37b326b05e8f596099c90b3e0931b05a56cd3160b9ac450b621794bac94c"
TFLITE_MEMBER = "/third_party/mediapipe/modules/objectron/object_detection_ssd_mobilenetv2_oidv4_fp16.tflite"
TFLITE_SHA256 = "d0a5255bf8c4f5a0bc4240741a76c41d5e939f7655078f945f50ab53a9375da6"
LABELS_MEMBER = "/object_detection_oidv4_labelmap.txt"
INPUT_SIZE = 300


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_tgz(dest: Path) -> Path:
    """`npm pack` the pinned package into dest (the npm registry is the only source)."""
    subprocess.run(["npm", "pack", PACKAGE, "--pack-destination", str(dest)], check=True)
    path = dest / TGZ_NAME
    if not path.is_file():
        raise SystemExit(f"npm pack did not produce {TGZ_NAME} in {dest}")
    return path


def packed_assets(tgz: Path) -> dict[str, bytes]:
    """The files packed in objectron_solution_packed_assets.data, by their names in the loader."""
    data = tgz.read_bytes()
    if sha256(data) != TGZ_SHA256:
        raise SystemExit(f"{tgz}: sha256 {sha256(data)} is not the pinned {TGZ_SHA256}")
    with tarfile.open(tgz) as tar:
        loader = tar.extractfile("package/objectron_solution_packed_assets_loader.js").read().decode()
        blob = tar.extractfile("package/objectron_solution_packed_assets.data").read()
        package_json = json.loads(tar.extractfile("package/package.json").read())
    if package_json.get("license") != "Apache-2.0":
        raise SystemExit(f"{PACKAGE} is no longer marked Apache-2.0: {package_json.get('license')!r}")
    entries = re.findall(r'"filename":\s*"([^"]+)",\s*"start":\s*(\d+),\s*"end":\s*(\d+)', loader)
    return {name: blob[int(start):int(end)] for name, start, end in entries}


def to_onnx(tflite: Path, dst: Path) -> list[str]:
    import onnx
    import tf2onnx

    model, _ = tf2onnx.convert.from_tflite(str(tflite), opset=OPSET)
    _canonical_names(model)
    dynamic_batch(model)
    model.producer_name = "har-engine convert_person_detector.py"
    model.doc_string = (f"Converted from object_detection_ssd_mobilenetv2_oidv4_fp16.tflite of npm {PACKAGE} "
                        f"(Apache-2.0) with tf2onnx {tf2onnx.__version__}, opset {OPSET}")
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return [o.name for o in model.graph.output]


def model_input(image_bgr: np.ndarray) -> np.ndarray:
    """MediaPipe's preprocessing for this model: stretch to 300x300, RGB in [-1, 1]."""
    import cv2

    small = cv2.resize(image_bgr, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_BGR2RGB).astype(np.float32)[None] / np.float32(127.5) - np.float32(1.0)


def compare(images: list[Path], tflite: Path, onnx_path: Path) -> dict:
    """Max abs differences per output between the TFLite original and the ONNX file, batch 1 and batched."""
    import cv2

    diffs: dict[str, float] = {}
    xs = []
    refs = []
    for path in images:
        image = cv2.imread(str(path))
        if image is None:
            raise SystemExit(f"cannot read {path}")
        x = model_input(image)
        ref = _tflite_run(tflite, x)
        got = _onnx_run(onnx_path, x)
        for r, o in zip(ref, got):
            key = f"{'boxes' if r.shape[-1] == 4 else 'class logits'} {list(r.shape)}"
            diffs[key] = max(diffs.get(key, 0.0), float(np.abs(r - o).max()))
            if r.shape[-1] != 4:
                sig = lambda v: 1 / (1 + np.exp(-v.astype(np.float64)))  # noqa: E731
                diffs["sigmoid(class logits)"] = max(diffs.get("sigmoid(class logits)", 0.0),
                                                     float(np.abs(sig(r) - sig(o)).max()))
        xs.append(x)
        refs.append(got)
    batched = _onnx_run(onnx_path, np.concatenate(xs))
    batch_diff = max(float(np.abs(batched[k][i] - refs[i][k][0]).max()) for i in range(len(xs)) for k in range(2))
    return {"images": [p.name for p in images], "max_abs_diff_vs_tflite": diffs,
            "batched_vs_batch1_max_abs_diff": batch_diff}


def main(argv: list[str] | None = None) -> int:
    rerun_with_fixed_hash_seed()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tgz", type=Path, help=f"a downloaded {TGZ_NAME} (else `npm pack` fetches it)")
    ap.add_argument("--out", type=Path, default=HERE, help="where person_detection.onnx goes (default: this folder)")
    ap.add_argument("--images", type=Path, nargs="*", help="real photos for the TFLite check "
                    "(default: messi5.jpg, basketball1.png and a vtest.avi frame from tests/media.py)")
    ap.add_argument("--report", type=Path, help="write the check as JSON here")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        tgz = args.tgz or fetch_tgz(tmp)
        assets = packed_assets(tgz)
        tflite_bytes = assets[TFLITE_MEMBER]
        if sha256(tflite_bytes) != TFLITE_SHA256:
            raise SystemExit(f"{TFLITE_MEMBER}: sha256 {sha256(tflite_bytes)} is not the pinned {TFLITE_SHA256}")
        labels = assets[LABELS_MEMBER].decode().split("\n")
        print(f"labels: {labels}", flush=True)
        tflite = tmp / "object_detection_ssd_mobilenetv2_oidv4_fp16.tflite"
        tflite.write_bytes(tflite_bytes)
        args.out.mkdir(parents=True, exist_ok=True)
        dst = args.out / "person_detection.onnx"
        print("outputs:", to_onnx(tflite, dst), flush=True)
        images = args.images if args.images is not None else _default_images(tmp)
        report = compare(images, tflite, dst)
        report["package"] = PACKAGE
        report["labels"] = labels
        report["sha256"] = {"person_detection.onnx": sha256(dst.read_bytes()),
                            "object_detection_ssd_mobilenetv2_oidv4_fp16.tflite": TFLITE_SHA256, TGZ_NAME: TGZ_SHA256}
        text = json.dumps(report, indent=2)
        print(text)
        if args.report:
            args.report.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

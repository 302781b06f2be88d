"""`engine evaluate`: accuracy of an exported classifier on a dataset's test subjects, run as the engine runs it."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="accuracy of a classifier .onnx on a dataset (protocol test subjects)",
                       description="Run the ONNX classifier through the classify stage's windowing on the protocol's "
                       "test subjects; print top-1, top-5, per-class accuracy, the confusion matrix and "
                       "sequence-level accuracy (one vote per sequence).")
    p.add_argument("--model", required=True, help="classifier .onnx")
    p.add_argument("--data", required=True, help="dataset .npz")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument("--out", default=None, help="folder for confusion-matrix PNGs and metrics.json (default runs/evaluate/MODEL)")
    p.add_argument("--split", default="test", choices=("test", "train", "all"), help="which sequences (default test)")
    p.add_argument("--classify-threads", dest="threads", type=int, default=1,
                   help="onnxruntime threads, as `engine run --classify-threads` (default 1)")
    p.add_argument("--threads", dest="threads", type=int, help=argparse.SUPPRESS)  # its name before the flags were unified
    p.add_argument("--min-window", dest="min_window_s", type=float, default=0.0, metavar="SECONDS",
                   help="first label of a sequence after this long, as `engine run --min-window` (default: the model's)")


def run(args: argparse.Namespace) -> int:
    from engine.framework.commands.needs import dataset_file

    data = dataset_file(args.data)  # evaluate needs no training extra: onnxruntime and OpenCV only
    from trainer.dataset import load
    from trainer.evaluation import evaluate
    from trainer.plots import confusion_png

    dataset = load(data)
    result = evaluate(args.model, dataset, threads=args.threads, split=args.split, min_window_s=args.min_window_s)
    out = Path(args.out or f"runs/evaluate/{Path(args.model).stem}")
    out.mkdir(parents=True, exist_ok=True)
    title = f"{result['model']} on {Path(args.data).name} ({args.split})"
    result["confusion_png"] = str(confusion_png(result["confusion"], result["labels"], out / "confusion.png", title + ", windows"))
    confusion_png(result["sequence_confusion"], result["labels"], out / "confusion_sequences.png", title + ", sequences")
    (out / "metrics.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{title}: {result['n_windows']} windows of {result['n_sequences']} sequences")
    print(f"top-1 {result['top1']:.3f}   top-5 {result['top5']:.3f}   sequence top-1 {result['sequence_top1']:.3f}   "
          f"({result['windows_per_s']} windows/s on {args.threads} thread(s))")
    print("per class (windows):")
    for name, acc in result["per_class"].items():
        print(f"  {name:<24} {'-' if acc is None else f'{acc:.3f}'}")
    labels = result["labels"]
    print("confusion (rows true, columns predicted, windows):")
    print(" " * 6 + "".join(f"{f'A{j + 1:02d}':>6}" for j in range(len(labels))))
    for i, row in enumerate(result["confusion"]):
        print(f"{f'A{i + 1:02d}':>6}" + "".join(f"{v:>6}" for v in row))
    print(f"confusion matrix PNG: {result['confusion_png']}")
    return 0

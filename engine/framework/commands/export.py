"""`engine export`: a training run directory to one ONNX classifier, checked against Keras."""
from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a training run to a classifier .onnx (needs the [train] extra)",
                       description="Write the run's model as ONNX with the model contract's metadata, after checking "
                       "that ONNX and Keras agree on real inputs from the dataset.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory written by `engine train`")
    p.add_argument("-o", "--output", required=True, help="classifier file to write (.onnx)")
    p.add_argument("--data", default=None, help="dataset for the parity check (default: the one the run trained on)")
    p.add_argument("--tolerance", type=float, default=1e-4, help="largest accepted |ONNX - Keras| (default 1e-4)")


def run(args: argparse.Namespace) -> int:
    from engine.framework.commands.needs import dataset_file, require_train_extra

    data = dataset_file(args.data) if args.data else None
    require_train_extra("export", "tensorflow", "tf2onnx")
    from trainer.export import export

    result = export(args.run_dir, args.output, data=data, tolerance=args.tolerance)
    print(f"{result.path}: {result.size_bytes / 1e6:.2f} MB; ONNX vs Keras max |diff| {result.max_abs_diff:.1e} "
          f"on {result.n_checked} real inputs")
    return 0

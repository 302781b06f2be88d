"""`engine train`: train one classifier on a dataset file into a run directory (TensorFlow inside run only)."""
from __future__ import annotations

import argparse
import shlex
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a classifier on a dataset file (needs the [train] extra)",
        description="Train a model on the protocol's training subjects (cross-validation folds over them choose the "
        "epochs, the grid point and the unknown threshold; then a refit on all of them), report accuracy on the test "
        "subjects beside an extra-trees baseline, and write a run directory for `engine export`.",
    )
    p.add_argument("--model", required=True, help="which model to train: a module of trainer/models/ (keypoint_tcn, stgcn, ...)")
    p.add_argument("--data", required=True, help="dataset .npz (from `engine prepare`)")
    p.add_argument("--config", default=None, help="training config TOML (default configs/models/MODEL.toml)")
    p.add_argument("--grid", action="store_true", help="try every combination in the config's [grid] (window, model size, ...), keep the best out-of-fold")
    p.add_argument("--out", default=None, help="run directory (default runs/MODEL)")
    p.add_argument("--epochs", type=int, default=None, help="override the config's epochs")
    p.add_argument("--threads", type=int, default=None, help="TensorFlow threads (default from the config)")


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from engine.framework.commands.needs import dataset_file, require_train_extra

    data = dataset_file(args.data)
    require_train_extra("train", "tensorflow", "sklearn")  # the model, and the baseline beside it
    from trainer.config import load_config
    from trainer.dataset import load

    from trainer.models import known_model

    config = load_config(args.config, known_model(args.model))
    overrides = {k: v for k, v in (("epochs", args.epochs), ("threads", args.threads)) if v is not None}
    if overrides:
        config = dataclasses.replace(config, **overrides)
    dataset = load(data)
    from trainer.training import train

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    command = "engine " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else ""
    result = train(config, dataset, args.out or f"runs/{args.model}", grid=args.grid, command=command, log=log)
    m = result.metrics
    baseline = f", baseline {m['baseline_top1_sequence']:.3f}" if "baseline_top1_sequence" in m else ""
    print(f"{result.run_dir}: test window top-1 {m['top1_window']:.3f}, sequence top-1 {m['top1_sequence']:.3f}{baseline}, "
          f"{m['test_sequences_without_window']} sequence(s) without a label, trained in {result.seconds:.0f} s")
    return 0

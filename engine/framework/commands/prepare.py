"""`engine prepare`: write a dataset file (synthetic, or Berkeley MHAD through a pose backend)."""
from __future__ import annotations

import argparse
import os
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare", help="write a dataset .npz for training and evaluation",
                       description="Write a dataset file (see trainer/dataset.py for its keys).")
    kinds = p.add_subparsers(dest="dataset", metavar="DATASET", required=True)
    s = kinds.add_parser("synthetic", help="people of the synthetic motion model, MHAD ids S01-S12/A01-A11/R01-R05")
    s.add_argument("--out", default="data/synthetic.npz", help="dataset file to write (default data/synthetic.npz)")
    s.add_argument("--seed", type=int, default=0, help="world seed: subjects, motions and noise (default 0)")
    m = kinds.add_parser("mhad", help="Berkeley MHAD Kinect RGB frames through a pose backend")
    m.add_argument("--mhad-root", default=None, help="MHAD root holding Kinect/Kin01/... (or set MHAD_ROOT)")
    m.add_argument("--out", default="data/mhad.npz", help="dataset file to write (default data/mhad.npz)")
    m.add_argument("--pose", default="blazepose", help="pose backend (default blazepose)")
    m.add_argument("--weights-dir", default=None, help="pose weights folder")
    m.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="parallel processes (default: one per core)")
    m.add_argument("--cache", default=None, help="per-sequence keypoint cache folder (default OUT.cache/); reruns skip cached sequences")
    m.add_argument("--kinect", type=int, default=1, choices=(1, 2), help="Kinect camera (default 1)")


def run(args: argparse.Namespace) -> int:
    from trainer.dataset import save

    if args.dataset == "synthetic":
        from trainer.synthetic_data import build

        dataset = build(seed=args.seed)
        path = save(dataset, args.out)
        print(f"{path}: {len(dataset)} sequences, {len(dataset.label_names)} classes, seed {args.seed}")
        return 0

    from engine.sources import mhad
    from trainer.mhad import prepare_mhad

    # The same check, message and exit code as `engine run --source mhad:...`.
    root = str(mhad.kinect_dir(args.mhad_root, args.kinect).parents[1])
    result = prepare_mhad(root, args.out, backend=args.pose, workers=args.workers, cache_dir=args.cache,
                          weights_dir=args.weights_dir, kinect=args.kinect, progress=sys.stderr)
    for line in result.missing:
        print(f"skipped {line}", file=sys.stderr)
    print(f"{result.path}: {result.n_sequences} sequences ({result.n_cached} from cache), {len(result.missing)} missing")
    return 0

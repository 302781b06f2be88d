"""`engine prepare`: write a dataset file (synthetic, Berkeley MHAD through a pose backend, or a skeleton dataset's files)."""
from __future__ import annotations

import argparse
import os
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare", help="write a dataset .npz for training and evaluation",
                       description="Write a dataset file (see trainer/dataset.py for its keys).")
    kinds = p.add_subparsers(dest="dataset", metavar="DATASET", required=True)
    s = kinds.add_parser("synthetic", help="people of the synthetic motion model: the 11 MHAD actions (ids S01-S12/A01-A11/R01-R05), "
                         "standing, walking and other (negatives), each with varied copies")
    s.add_argument("--out", default="data/synthetic.npz", help="dataset file to write (default data/synthetic.npz)")
    s.add_argument("--seed", type=int, default=0, help="world seed: subjects, motions and noise (default 0)")
    s.add_argument("--mhad-only", action="store_true", help="only the 11 MHAD actions (no standing, walking, other)")
    s.add_argument("--variants", type=int, default=None, metavar="N",
                   help="varied copies per performance: other pose sources, cameras, frame rates, 1-3 s clips (default 2; 0: none)")
    m = kinds.add_parser("mhad", help="Berkeley MHAD Kinect RGB frames through a pose backend")
    m.add_argument("--mhad-root", default=None, help="MHAD root holding Kinect/Kin01/... (or set MHAD_ROOT)")
    m.add_argument("--out", default="data/mhad.npz", help="dataset file to write (default data/mhad.npz)")
    # The flags `engine run` and `engine pose` give these meanings; the old names stay, hidden.
    m.add_argument("--pose", default="blazepose", help="pose backend (default blazepose)")
    m.add_argument("--pose-weights", default=None, metavar="DIR", help="folder with the backend's weight files")
    m.add_argument("--weights-dir", dest="pose_weights", help=argparse.SUPPRESS)
    m.add_argument("--pose-workers", type=int, default=os.cpu_count() or 1, help="parallel processes (default: one per core)")
    m.add_argument("--workers", dest="pose_workers", type=int, help=argparse.SUPPRESS)
    m.add_argument("--cache", default=None, help="per-sequence keypoint cache folder (default OUT.cache/); reruns skip cached sequences")
    m.add_argument("--kinect", type=int, default=1, choices=(1, 2), help="Kinect camera (default 1)")
    pa = kinds.add_parser("penn-action", help="Penn Action's hand-annotated 2D joints (15 classes, official split)",
                          description="Penn Action labels/NNNN.mat to a dataset file: joints mapped to COCO-18 "
                          "(pose/layouts.py), visibility as confidence, the official train/test split, 30 fps.")
    pa.add_argument("--root", required=True, help="Penn Action folder holding labels/0001.mat ...")
    pa.add_argument("--out", default="data/penn_action.npz", help="dataset file to write (default data/penn_action.npz)")
    sb = kinds.add_parser("sbu", help="SBU Kinect Interaction skeletons (8 two-person classes, one sequence per person)",
                          description="SBU <set>/<class>/<seq>/skeleton_pos.txt to a dataset file: OpenNI joints mapped "
                          "to COCO-18 in pixels of a 640x480 image, 15 fps, keys pair and fold; --fold K is the test split. "
                          "Run K = 1..5 for the dataset's 5-fold protocol.")
    sb.add_argument("--root", required=True, help="SBU folder holding the set folders s01s02 ... s07s03")
    sb.add_argument("--out", default=None, help="dataset file to write (default data/sbu_foldK.npz)")
    sb.add_argument("--fold", type=int, default=1, choices=(1, 2, 3, 4, 5), help="fold whose sets are the test split (default 1)")


def run(args: argparse.Namespace) -> int:
    from trainer.dataset import save

    if args.dataset == "synthetic":
        from trainer.synthetic_data import build

        options = {"extra_activities": not args.mhad_only}
        if args.variants is not None:
            options["variants"] = max(0, args.variants)
        dataset = build(seed=args.seed, **options)
        path = save(dataset, args.out)
        print(f"{path}: {len(dataset)} sequences, {len(dataset.label_names)} classes, seed {args.seed}")
        return 0

    if args.dataset in ("penn-action", "sbu"):
        if args.dataset == "penn-action":
            from engine.framework.commands.needs import require_train_extra

            require_train_extra("prepare penn-action", "scipy")  # reads the .mat files
        return _import(args)

    from engine.sources import mhad
    from trainer.mhad import prepare_mhad

    # The same check, message and exit code as `engine run --source mhad:...`.
    root = str(mhad.kinect_dir(args.mhad_root, args.kinect).parents[1])
    result = prepare_mhad(root, args.out, backend=args.pose, workers=args.pose_workers, cache_dir=args.cache,
                          weights_dir=args.pose_weights, kinect=args.kinect, progress=sys.stderr)
    for line in result.missing:
        print(f"skipped {line}", file=sys.stderr)
    print(f"{result.path}: {result.n_sequences} sequences ({result.n_cached} from cache), {len(result.missing)} missing")
    return 0


def _import(args: argparse.Namespace) -> int:
    """Skeleton datasets read from their published files (no pose backend): Penn Action, SBU."""
    import time

    import numpy as np

    start = time.perf_counter()
    if args.dataset == "penn-action":
        from trainer.penn_action import prepare_penn_action

        path, dataset = prepare_penn_action(args.root, args.out)
        protocol = "official split"
    else:
        from trainer.sbu import prepare_sbu

        path, dataset = prepare_sbu(args.root, args.out or f"data/sbu_fold{args.fold}.npz", fold=args.fold)
        protocol = f"fold {args.fold} tests"
    n_test = int(np.sum(dataset.split == "test"))
    lengths = dataset.lengths
    print(f"{path}: {len(dataset)} sequences ({len(dataset) - n_test} train, {n_test} test, {protocol}), "
          f"{len(set(dataset.labels.tolist()))} of {len(dataset.label_names)} classes, frames {lengths.min()}-{lengths.max()} "
          f"(median {int(np.median(lengths))}) at {float(dataset.fps[0]):g} fps, {time.perf_counter() - start:.1f} s")
    return 0

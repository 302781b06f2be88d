"""What a classifier says about people doing things it was never taught, and about those it was.

    .venv/bin/python benchmarks/open_set.py --model models/default.onnx --data data/penn_action.npz [--split test]
    .venv/bin/python benchmarks/open_set.py --model models/default.onnx --labels runs/vtest/labels.jsonl

With `--data`: every sequence of the split runs through the classify runtime's own windowing
(`sequence_windows`, smoothing as live); each sequence's vote is the mean of its window scores,
with the model's rejection threshold applied (published `unknown` under it). Per dataset class it
prints the mix of labels the model gave. A class the model knows (same name) counts as right or
wrong; any other class counts as *rejected* when the vote is one of the labels that mean "none of
my actions" (`unknown`, `standing`, `walking`, `other`), else as a confident false label.

With `--labels`: the label mix of a `--labels-out` file of a real run (every published label).
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from engine.classify.runtime import UNKNOWN, ClassifierRuntime, ClassifyOptions, sequence_windows  # noqa: E402

REJECTING = frozenset({UNKNOWN, "standing", "walking", "other"})


def sequence_votes(model: str, data: str, split: str) -> dict[str, collections.Counter]:
    """Per dataset class, a Counter of the label each sequence was given."""
    from trainer.dataset import load, split_protocol

    runtime = ClassifierRuntime(model, ClassifyOptions())
    contract = runtime.contract
    threshold = runtime.unknown_below
    dataset = load(data)
    train, test = split_protocol(dataset)
    mask = {"test": test, "train": train, "all": np.ones(len(dataset), bool)}[split]
    mix: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for i in np.flatnonzero(mask).tolist():
        truth = dataset.label_names[dataset.labels[i]]
        windows = [items for _, _, items in sequence_windows(contract, dataset.sequence(i), float(dataset.fps[i]))]
        if not windows:
            mix[truth]["(no window)"] += 1
            continue
        scores = runtime.classify_windows(windows).mean(axis=0)
        best = int(np.argmax(scores))
        said = contract.labels[best]
        mix[truth][UNKNOWN if scores[best] < threshold or said in contract.unknown_labels else said] += 1
    return mix


def report(mix: dict[str, collections.Counter], known: set[str]) -> dict:
    rows, right, known_n, rejected, unknown_n = {}, 0, 0, 0, 0
    for truth in sorted(mix):
        counts = mix[truth]
        n = sum(counts.values())
        if truth in known:
            right += counts[truth]
            known_n += n
            outcome = f"right {counts[truth] / n:6.1%}"
        else:
            rej = sum(v for k, v in counts.items() if k in REJECTING)
            rejected += rej
            unknown_n += n
            outcome = f"rejected {rej / n:6.1%}"
        top = ", ".join(f"{k} {v}" for k, v in counts.most_common(4))
        print(f"{truth:<24} {n:5d}  {outcome}   {top}")
        rows[truth] = dict(counts)
    summary = {
        "known_classes_top1": right / known_n if known_n else None, "known_sequences": known_n,
        "unknown_classes_rejected": rejected / unknown_n if unknown_n else None, "unknown_sequences": unknown_n,
        "per_class": rows,
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "per_class"}))
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--model", default=str(ROOT / "models" / "default.onnx"))
    parser.add_argument("--data", help="dataset .npz (any classes)")
    parser.add_argument("--split", default="test", choices=("test", "train", "all"))
    parser.add_argument("--labels", help="a --labels-out JSONL file of a run")
    parser.add_argument("--json", help="write the summary here")
    args = parser.parse_args()
    if bool(args.data) == bool(args.labels):
        parser.error("give --data or --labels")
    if args.labels:
        counts = collections.Counter(json.loads(line)["label"] for line in open(args.labels, encoding="utf-8") if line.strip())
        n = sum(counts.values())
        rejected = sum(v for k, v in counts.items() if k in REJECTING)
        print(f"{n} labels; walking/standing/unknown/other {rejected / max(n, 1):.1%}: "
              + ", ".join(f"{k} {v}" for k, v in counts.most_common()))
        summary = {"labels": n, "rejecting_share": rejected / max(n, 1), "mix": dict(counts)}
    else:
        from engine.classify.contract import load_contract

        summary = report(sequence_votes(args.model, args.data, args.split), set(load_contract(args.model).labels))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Keras batch feeders over uint8 tables: images become float32 in [0, 1] one batch at a time.

Holding every skeleton image as float32 would take gigabytes; the tables stay uint8 and a
batch is gathered, scaled and (optionally) weighted on demand. Shuffling is seeded.
"""
from __future__ import annotations

from typing import Callable

import keras
import numpy as np


class Batches(keras.utils.PyDataset):
    """Batches of `make(rows) -> inputs`, targets `targets[rows]` and optional sample weights."""

    def __init__(
        self,
        make: Callable[[np.ndarray], list[np.ndarray]],
        targets: np.ndarray | Callable[[np.ndarray], np.ndarray],
        n: int,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        weights: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        self.make, self.targets, self.n, self.batch_size = make, targets, n, batch_size
        self.shuffle, self.weights = shuffle, weights
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(n) if shuffle else np.arange(n)

    def __len__(self) -> int:
        return (self.n + self.batch_size - 1) // self.batch_size

    def __getitem__(self, i: int):  # noqa: ANN204 - keras accepts tuples of several shapes
        rows = np.sort(self.order[i * self.batch_size : (i + 1) * self.batch_size])
        inputs = self.make(rows)
        x = inputs[0] if len(inputs) == 1 else tuple(inputs)
        y = self.targets(rows) if callable(self.targets) else self.targets[rows]
        if self.weights is None:
            return x, y
        return x, y, self.weights[rows]

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self.order = self.rng.permutation(self.n)

"""Pictures of a run: the confusion matrix (OpenCV, so `engine evaluate` needs no plotting
library) and loss/accuracy curves (matplotlib, part of the training extra)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np


def confusion_png(confusion: list[list[int]] | np.ndarray, labels: list[str] | tuple[str, ...], path: str | Path, title: str = "") -> Path:
    """A row-normalised confusion matrix (rows: true class, columns: predicted) with counts."""
    m = np.asarray(confusion, np.float64)
    n = len(labels)
    cell, left, top = 44, 210, 60 + (24 if title else 0)
    size = (top + n * cell + 20, left + n * cell + 20)
    image = np.full(size + (3,), 255, np.uint8)
    rates = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    font = cv2.FONT_HERSHEY_SIMPLEX
    if title:
        cv2.putText(image, title, (10, 22), font, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    for i in range(n):
        cv2.putText(image, str(labels[i])[:26], (6, top + i * cell + cell // 2 + 5), font, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(image, f"A{i + 1:02d}", (left + i * cell + 8, top - 10), font, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
        for j in range(n):
            shade = int(255 * (1 - rates[i, j]))
            x0, y0 = left + j * cell, top + i * cell
            cv2.rectangle(image, (x0, y0), (x0 + cell - 1, y0 + cell - 1), (255, shade, shade), -1)
            cv2.rectangle(image, (x0, y0), (x0 + cell - 1, y0 + cell - 1), (200, 200, 200), 1)
            if m[i, j]:
                colour = (255, 255, 255) if rates[i, j] > 0.5 else (0, 0, 0)
                cv2.putText(image, str(int(m[i, j])), (x0 + 4, y0 + cell // 2 + 5), font, 0.4, colour, 1, cv2.LINE_AA)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), image)
    return out


def curves_png(history: dict[str, Any], path: str | Path, title: str = "") -> Path:
    """Loss and accuracy per epoch, training and validation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key in zip(axes, ("loss", "accuracy")):
        for prefix, style in (("", "-"), ("val_", "--")):
            values = history.get(prefix + key)
            if values:
                ax.plot(range(1, len(values) + 1), values, style, label=(prefix or "train_") + key)
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out

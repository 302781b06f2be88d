"""One Euro filter (Casiez et al., CHI 2012) on whole arrays: jitter goes, fast motion stays.

The cutoff frequency rises with the speed of the signal, so a still joint is smoothed
hard while a moving one follows with little lag. MediaPipe smooths pose landmarks the
same way; `value_scale` divides out the person's size so that one set of parameters
suits near and far people (speed is measured in body sizes per second).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OneEuroParams:
    """min_cutoff in Hz, beta (speed coefficient), d_cutoff in Hz for the speed estimate."""

    min_cutoff: float = 0.05
    beta: float = 80.0
    d_cutoff: float = 1.0


# MediaPipe's full-body landmark smoothing (pose_landmark_filtering.pbtxt): strong at rest.
LANDMARK_PARAMS = OneEuroParams(min_cutoff=0.05, beta=80.0, d_cutoff=1.0)
# Its filter for the two auxiliary points that place the next frame's region of interest.
ROI_PARAMS = OneEuroParams(min_cutoff=0.01, beta=10.0, d_cutoff=1.0)


def _alpha(cutoff: np.ndarray | float, dt_s: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff))
    return 1.0 / (1.0 + tau / dt_s)


class OneEuroFilter:
    """Filters a float array of fixed shape, one independent filter per element."""

    def __init__(self, params: OneEuroParams = LANDMARK_PARAMS) -> None:
        self.params = params
        self.reset()

    def reset(self) -> None:
        self._t_s: float | None = None
        self._x: np.ndarray | None = None
        self._raw: np.ndarray | None = None
        self._dx: np.ndarray | None = None

    def __call__(self, t_s: float, x: np.ndarray, value_scale: float = 1.0) -> np.ndarray:
        """The filtered value of `x` observed at time `t_s` (seconds, increasing).

        A time that does not move forward, or a change of shape, restarts the filter.
        """
        x = np.asarray(x, np.float32)
        if self._x is None or self._t_s is None or t_s <= self._t_s or x.shape != self._x.shape:
            self._t_s, self._x, self._raw, self._dx = t_s, x.copy(), x.copy(), np.zeros_like(x)
            return x.copy()
        dt_s = t_s - self._t_s
        p = self.params
        speed = (x - self._raw) * (value_scale / dt_s)
        self._dx = self._dx + _alpha(p.d_cutoff, dt_s) * (speed - self._dx)
        cutoff = p.min_cutoff + p.beta * np.abs(self._dx)
        self._x = (self._x + _alpha(cutoff, dt_s) * (x - self._x)).astype(np.float32)
        self._raw, self._t_s = x.copy(), t_s
        return self._x.copy()

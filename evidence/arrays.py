"""Array helpers every layer may use (numpy only; no other evidence import)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray


def distinct(values: ArrayLike) -> NDArray[Any]:
    """Return the sorted distinct values of a 1-D integer array, as ``np.unique`` does, by one sort.

    numpy 2.3+ makes ``np.unique`` hash first and sort the result: on int64 keys that is several
    times slower than one sort (15 ms against 2.0 ms for 60 k keys here, sorted or not). Only for
    integers: ``np.unique`` also folds NaNs into one, which a sort does not.
    """
    a = np.sort(np.asarray(values).ravel())
    if a.size < 2:
        return a
    keep = np.empty(a.size, dtype=bool)
    keep[0] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    return a[keep]

"""evidence.arrays.distinct against np.unique, whose result it must give exactly."""

from __future__ import annotations

import numpy as np
import pytest

from evidence.arrays import distinct


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint16])
@pytest.mark.parametrize("size", [0, 1, 2, 7, 1000])
def test_distinct_is_np_unique(dtype: type, size: int) -> None:
    rng = np.random.default_rng(size)
    for values in (
        rng.integers(0, 50, size),  # many repeats
        rng.integers(0, 10**4, size),  # few repeats
        np.sort(rng.integers(0, 50, size)),  # already sorted, as collect's keys mostly are
        np.full(size, 3),  # one value
    ):
        a = values.astype(dtype)
        got = distinct(a)
        want = np.unique(a)
        assert got.dtype == want.dtype
        assert got.tolist() == want.tolist()


def test_distinct_keeps_its_input_and_flattens() -> None:
    a = np.array([[5, 1], [5, 3]], dtype=np.int64)
    assert distinct(a).tolist() == [1, 3, 5]
    assert a.tolist() == [[5, 1], [5, 3]]  # sorted a copy, not the caller's array
    assert distinct([2, 2, -1]).tolist() == [-1, 2]


def test_distinct_of_large_keys() -> None:
    # The keys of counters._recreated: group × stride + milliseconds.
    keys = np.array([3 << 42, (1 << 42) + 15_000, 3 << 42, (1 << 42) + 15_000, 0], dtype=np.int64)
    assert distinct(keys).tolist() == sorted(set(keys.tolist()))

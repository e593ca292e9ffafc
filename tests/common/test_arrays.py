"""Index runs: the spans a run-by-run gather copies, checked against a plain gather."""

from __future__ import annotations

import numpy as np
import pytest

from hyperplex.common.arrays import run_spans, runs


@pytest.mark.parametrize("idx", [[], [4], [0, 1, 2], [3, 4, 5, 40, 41, 150, 151, 152, 170, 260, 284], [1, 3, 5]])
def test_run_spans_rebuild_the_gather(idx):
    idx = np.asarray(idx, dtype=int)
    source = np.arange(300) * 10
    out = np.full(idx.size, -1)
    for first, at, n in run_spans(idx):
        out[at : at + n] = source[first : first + n]
    np.testing.assert_array_equal(out, source[idx])
    assert len(run_spans(idx)) == len(runs(idx))

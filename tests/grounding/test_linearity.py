"""Every reader of untrusted text stays linear on adversarial input (issue: a regex that hangs).

A time bound would pass on a fast machine and fail on a busy one, so each case compares
the same reader on an input of size n and of size 8n: linear work costs about 8x (plus
a constant, which only lowers the ratio), quadratic about 64x, cubic about 512x. The
threshold sits well between linear and quadratic; the fastest of several runs is taken,
so a busy neighbour cannot fake a failure by slowing one run down.
"""

from __future__ import annotations

import pytest

from ..support.adversarial import CASES, Case, calibrated, seconds

RATIO = 8
LIMIT = 24.0  # linear: about 8; quadratic: about 64


@pytest.mark.parametrize("case", CASES, ids=[f"{c.target}: {c.name}" for c in CASES])
def test_reader_is_linear(case: Case) -> None:
    n = calibrated(case)
    small = seconds(case, n)
    large = seconds(case, n * RATIO)
    ratio = large / max(small, 1e-9)
    assert ratio < LIMIT, (
        f"{case.target} on {case.name!r}: {n} chars in {small * 1e3:.2f} ms, "
        f"{n * RATIO} chars in {large * 1e3:.2f} ms (x{ratio:.1f}; linear is about x{RATIO})"
    )

"""How closely a float recorded on one CPU must be reproduced on another (issue 17).

numpy, scipy and torch choose their SIMD kernels per CPU at run time (AVX-512, AVX2, SSE, NEON,
...): an ``exp``, a ``log``, a sum or a matrix product may differ in its last bit or two from
one machine to the next. A float written down on one machine therefore holds elsewhere only to a
few ulps; and where a small value is the difference of large ones (the last day's spend is the
budget left, ~1e4 minus ~1e4), to a few ulps of the large ones. So recorded floats are compared
relative to the largest value of the array they belong to, integers and booleans exactly.

Exact equality stays right for integers (counts, seeds, indices), booleans, values exact by
construction, and two runs of the same code in one process (one machine, same kernels).
"""

from __future__ import annotations

import numpy as np

#: Relative tolerance (of an array's largest value) for float64 results replayed on another CPU.
#: Measured between numpy's AVX-512 and AVX2 / SSE paths (NPY_DISABLE_CPU_FEATURES) on the golden
#: replay: at most 4.6e-16 of the scale (4 ulps; up to 19 ulps of a small value made by
#: cancellation). 1e-12 leaves three orders of magnitude for other CPUs (arm64's NEON, its libm)
#: while any change to the maths itself moves results by far more.
CROSS_CPU_RTOL = 1e-12


def assert_replays(actual, desired, *, rtol: float = CROSS_CPU_RTOL, err_msg: str = "") -> None:
    """``actual`` reproduces the recorded ``desired``: same shape and dtype; integers and booleans
    exactly; floats to ``rtol`` times the largest ``|desired|`` of the array, float32 also to its
    eps relative to each value (a 1-ulp move always passes, 3 ulps never: float32 values are
    rounded from float64 maths, which may round either way)."""
    actual, desired = np.asarray(actual), np.asarray(desired)
    if desired.dtype.kind not in "fc":
        np.testing.assert_array_equal(actual, desired, err_msg=err_msg, strict=True)
        return
    per_value = float(np.finfo(desired.dtype).eps) if desired.dtype.itemsize < 8 else 0.0
    scale = float(np.max(np.abs(desired), initial=0.0))
    np.testing.assert_allclose(actual, desired, rtol=per_value, atol=rtol * scale, err_msg=err_msg, strict=True)

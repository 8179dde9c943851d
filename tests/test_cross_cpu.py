"""The tests that compare with files recorded on another machine hold on any attendee's CPU (issue 17).

numpy dispatches its loops (exp, log, sums ...) per CPU: AVX-512 on the machine that recorded
tests/data/env_single_channel_golden.npz, AVX2 on many laptops and AMD EPYCs, SSE or NEON
elsewhere, and the results differ in the last bits. Here those tests run again in a fresh process
with every SIMD extension numpy dispatches on this CPU switched off (``NPY_DISABLE_CPU_FEATURES``,
computed at run time, so it means something on any CPU) and torch's kernels at their plain level
(``ATEN_CPU_CAPABILITY=default``): the other code path must pass too. ~20 s.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Tests whose expected values were recorded on one machine (cheap ones only).
RECORDED = [
    "tests/test_channel_env.py::test_one_channel_replays_the_trajectories_recorded_before_the_generalisation",
    "tests/test_data.py::test_regeneration_reproduces_committed_files_byte_for_byte",
]

# The child checks that the switches took effect before it runs the tests.
CHILD = """
import sys
try:
    from numpy._core._multiarray_umath import __cpu_features__
except ImportError:  # numpy < 2
    from numpy.core._multiarray_umath import __cpu_features__
off = sys.argv[1].split()
still_on = [f for f in off if __cpu_features__.get(f)]
if still_on:
    sys.exit(f"NPY_DISABLE_CPU_FEATURES did not switch off {still_on}")
import pytest
code = pytest.main(["-q", "-p", "no:cacheprovider", "-o", "addopts=", *sys.argv[2:]])
if "torch" in sys.modules:  # only if the tests used torch (importing it here would cost seconds)
    import torch
    if torch.backends.cpu.get_cpu_capability() != "DEFAULT":
        sys.exit(f"ATEN_CPU_CAPABILITY=default was ignored: {torch.backends.cpu.get_cpu_capability()}")
sys.exit(code)
"""


def dispatched_simd_features() -> list[str]:
    """The SIMD extensions numpy dispatches to on this CPU beyond its compiled-in baseline (only
    these can be switched off; on numpy 2.5 x86-64 e.g. X86_V3 X86_V4 AVX512_ICL AVX512_SPR)."""
    try:
        from numpy._core import _multiarray_umath as mu
    except ImportError:  # numpy < 2
        from numpy.core import _multiarray_umath as mu
    return [f for f in mu.__cpu_dispatch__ if mu.__cpu_features__.get(f) and f not in mu.__cpu_baseline__]


def test_recorded_results_hold_with_the_wide_simd_kernels_switched_off():
    # those already switched off in this process (numpy then reports them absent) stay off
    off = sorted(set(dispatched_simd_features()) | set(os.environ.get("NPY_DISABLE_CPU_FEATURES", "").split()))
    if not off:
        pytest.skip("numpy dispatches no SIMD extension beyond its baseline on this CPU: no other path to try")
    env = {**os.environ, "NPY_DISABLE_CPU_FEATURES": " ".join(off), "ATEN_CPU_CAPABILITY": "default", "TQDM_DISABLE": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    proc = subprocess.run([sys.executable, "-c", CHILD, " ".join(off), *RECORDED], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"with NPY_DISABLE_CPU_FEATURES={' '.join(off)!r}:\n{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    assert f"{len(RECORDED)} passed" in proc.stdout, proc.stdout[-2000:]

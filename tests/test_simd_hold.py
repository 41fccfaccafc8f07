"""`import hmrm` holds the libraries that choose SIMD kernels at load time to AVX2 on a processor with
AVX-512 (their AVX-512 kernels change the committed tables' last bits): it imports nothing that loads
them, NumPy imported after it runs without its AVX-512 loops, a variable the user set wins and
HMRM_NATIVE_SIMD=1 turns the hold off."""
import json
import os
import subprocess
import sys

import pytest

import hmrm

PROBE = """
import json, os, sys
import hmrm
loaded = sorted(m for m in ("numpy", "torch", "cv2", "numba", "scipy") if m in sys.modules)
import numpy
found = numpy._core._multiarray_umath.__cpu_features__
print(json.dumps({"loaded": loaded, "held": hmrm.SIMD_HELD, "avx512": found.get("X86_V4", False),
                  "numba": os.environ.get("NUMBA_CPU_NAME")}))
"""


def _probe(**env) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in hmrm.SIMD_HOLD and k != "HMRM_NATIVE_SIMD"}
    run = subprocess.run([sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_import_hmrm_loads_none_of_the_libraries_it_holds():
    assert _probe()["loaded"] == []


@pytest.mark.skipif(not hmrm._has_avx512(), reason="this processor has no AVX-512: nothing to hold")
def test_numpy_after_hmrm_runs_without_its_avx512_loops_unless_told():
    held = _probe()
    assert held["held"] and not held["avx512"] and held["numba"] == "haswell"
    native = _probe(HMRM_NATIVE_SIMD="1")
    assert not native["held"] and native["avx512"] and native["numba"] is None
    assert _probe(NUMBA_CPU_NAME="generic")["numba"] == "generic"  # the user's own setting wins

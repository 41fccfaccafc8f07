"""The HMRM course library: micro-expression recognition rebuilt from its parts and evaluated honestly.

Data flows one way: :mod:`hmrm.face` (alignment, regions) and :mod:`hmrm.flow` (optical flow) serve
:mod:`hmrm.data` (data sets and SynthME); :mod:`hmrm.features` turns clips into network inputs,
:mod:`hmrm.augment` mixes them (MotionMix), :mod:`hmrm.model` recognises them (HMRM, baselines;
:mod:`hmrm.ssm` the selective scan) and :mod:`hmrm.train` trains and scores them (LOSO, intervals,
tables). Every measured table is saved with a JSON twin (:mod:`hmrm.resultfiles`); :mod:`hmrm.evidence`
reads the committed comparisons with their verdicts and :mod:`hmrm.choices` sets the paper's choices
apart from ours. ``hmrm --help`` lists the commands.

Layers
------
One layer a line, lowest first. A module imports from its own layer and from the layers above it in
this list, never from one below it, and no import closes a circle (``tests/test_structure.py`` reads
this list and checks every import statement, those inside functions included). A module belongs to
the most specific layer that names it or a package above it::

    hmrm.utils            atomic writes, locks, worker pools, devices, the cache folder
    hmrm.markdown         markdown tables, an estimate with its interval as text
    hmrm.options          checks of configuration fields, with the flag or field they came from
    hmrm.checkpoint       checkpoints of a resumable training loop (flow pretraining and LOSO folds)
    hmrm.resultfiles      measured tables and their JSON twins
    hmrm.face             detection, landmarks, alignment, regions
    hmrm.flow             optical flow: operations, classical methods, GRU-AOFE, head-motion removal
    hmrm.data             sample records, class schemes, data-set loaders, the face bank, SynthME
    hmrm.viz              pictures: the flow colour wheel, overlays, plots, montages
    hmrm.flow.facepairs   GRU-AOFE's pretraining pairs, drawn on the face bank's photos
    hmrm.flow.train       GRU-AOFE's pretraining loop
    hmrm.features         network inputs from clips: flow, strain, the flow cache
    hmrm.augment          MotionMix
    hmrm.ssm              the selective scan and the Mamba blocks
    hmrm.model            HMRM, its ablations and the baselines
    hmrm.train            LOSO training, scores, intervals, calibration, tables
    hmrm.explain          which regions drive a prediction
    hmrm.evidence         the committed comparisons and their verdicts
    hmrm.demo             the main job on SynthME
    hmrm.choices          the paper's choices against ours, measured
    hmrm.beyond           experiments beyond the paper (apex, head motion, calibration ...)
    hmrm.efficiency       parameters, operations and speed
    hmrm.viz.widgets      the flow explorer in a notebook
    hmrm.doctor           what this machine can run
    hmrm.commands         the sub-commands of ``hmrm``: their options and what each runs
    hmrm.cli              the ``hmrm`` command
"""
import os as _os

__version__ = "0.1.0"

#: What each library that picks its SIMD kernels when it loads is held to on a processor with AVX-512:
#: AVX2 (x86-64-v3). The libraries' AVX-512 kernels round differently in the last bits, and those bits
#: reach the committed tables (SynthME's pixels, then the flow, then the scores): with AVX-512 left on,
#: the demo's main row moves by 0.005 UF1 between two machines that run the same versions. Set before
#: any of them loads (this module imports nothing else); a variable already set wins, and
#: ``HMRM_NATIVE_SIMD=1`` leaves every library its native kernels. OpenCV's own AVX-512 loops are left
#: on: with them, the demo's SynthME and table came out as on a machine without AVX-512.
SIMD_HOLD = {
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",          # NumPy's dispatched loops
    "OPENCV_IPP": "avx2",                                                  # OpenCV's bundled IPP
    "OPENBLAS_CORETYPE": "Haswell",                                        # NumPy's and SciPy's BLAS
    "MKL_CBWR": "AVX2",                                                    # PyTorch's BLAS
    "ONEDNN_MAX_CPU_ISA": "AVX2",                                          # PyTorch's convolutions
    "ATEN_CPU_CAPABILITY": "avx2",                                         # PyTorch's own kernels
    "NUMBA_CPU_NAME": "haswell",                                           # SynthME's compiled loops
}


def _has_avx512() -> bool:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            return any(line.startswith("flags") and " avx512f" in line for line in cpuinfo)
    except OSError:  # not Linux: the libraries keep their own choice
        return False


#: Whether this process holds the libraries to AVX2 (a processor with AVX-512 and no HMRM_NATIVE_SIMD).
SIMD_HELD = not _os.environ.get("HMRM_NATIVE_SIMD") and _has_avx512()
if SIMD_HELD:
    for _name, _value in SIMD_HOLD.items():
        _os.environ.setdefault(_name, _value)

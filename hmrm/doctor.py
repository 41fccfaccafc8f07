"""``hmrm doctor``: one OK / FAIL / INFO line per component, to paste into bug reports.

Each check imports what it checks inside itself, so that a part that does not import is reported as a
FAIL line instead of stopping the doctor."""
from __future__ import annotations

import platform
import sys


def _check(name: str, fn, required: bool = True) -> bool:
    try:
        detail = fn()
        print(f"OK    {name:<18} {detail}")
        return True
    except Exception as exc:  # noqa: BLE001 - the point is to report anything
        tag = "FAIL " if required else "INFO "
        print(f"{tag} {name:<18} {type(exc).__name__}: {exc}")
        return not required


def _torch():
    import torch

    return f"torch {torch.__version__} (threads {torch.get_num_threads()})"


def _torchvision():
    import torch
    import torchvision
    from torchvision.ops import nms

    nms(torch.zeros(1, 4), torch.ones(1), 0.5)  # the operator facenet-pytorch needs
    return f"torchvision {torchvision.__version__}, nms operator works"


def _cuda():
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError("not available; everything runs on the CPU (GPU is optional)")
    return f"{torch.cuda.device_count()} device(s): {torch.cuda.get_device_name(0)}"


def _mamba():
    from .ssm import available_backends

    info = {b.name: b for b in available_backends()}["mamba_ssm"]
    if not info.available:
        raise RuntimeError(f"{info.detail}; the fused CPU loops (CPU) or the pure-PyTorch parallel scan (GPU) "
                           "run instead (optional)")
    return info.detail


def _fused_scan():
    import numba
    import torch

    from .ssm import selective_scan

    u = torch.ones(1, 2, 3)
    b = torch.ones(1, 1, 3)
    selective_scan(u, u, -torch.ones(2, 1), b, b, backend="fused")  # compiles the loops (cached afterwards)
    return f"numba {numba.__version__}; the compiled CPU selective scan runs"


def _triton():
    from .ssm import available_backends

    info = {b.name: b for b in available_backends()}["triton"]
    if not info.available:
        raise RuntimeError(f"{info.detail} (optional)")
    return info.detail


def _ray():
    from .train.loso.ray_engine import RAY_INSTALL, ray_available

    version = ray_available()
    if version is None:
        raise RuntimeError(f"not installed; --engine ray (folds as tasks on a cluster) needs it: {RAY_INSTALL}")
    return f"ray {version}; hmrm loso / reproduce --engine ray can train folds on a Ray cluster"


def _opencv():
    import cv2

    cv2.optflow.DualTVL1OpticalFlow_create()
    return f"opencv {cv2.__version__} with contrib (TV-L1, DIS, Farneback)"


def _dlib():
    import dlib

    from .face.landmarks import model_path

    path = model_path()
    return f"dlib {dlib.__version__}; 68-point model {path} ({path.stat().st_size // 2**20} MB)"


def _mtcnn():
    import os

    import facenet_pytorch

    data = os.path.join(os.path.dirname(facenet_pytorch.__file__), "data")
    found = [n for n in ("pnet.pt", "rnet.pt", "onet.pt") if os.path.isfile(os.path.join(data, n))]
    if len(found) != 3:
        raise RuntimeError(f"MTCNN weights missing in {data}: reinstall with `pip install --no-deps facenet-pytorch==2.6.0`")
    from .face.detect import _mtcnn

    _mtcnn()
    return f"facenet-pytorch {getattr(facenet_pytorch, '__version__', '2.6')}; weights {', '.join(found)}"


def _bank():
    from .data.facebank import PHOTOS, bank_dir, fetch_face_bank, subjects

    photos = fetch_face_bank(offline=True, verbose=False)
    n_people = len({p.person for p in PHOTOS})
    got = len(subjects(photos))
    msg = f"{len(photos)}/{len(PHOTOS)} photos, {got}/{n_people} subjects cached in {bank_dir()}"
    if got < n_people:
        raise RuntimeError(msg + "; run `hmrm facebank` to fetch the rest")
    return msg


def _flow_weights():
    from .flow.pretrained import load_pretrained, weight_info

    info = weight_info()
    load_pretrained()  # checks the sha256 and loads with weights_only=True
    return f"GRU-AOFE weights ok (sha256 {info['sha256'][:12]}..., {info['steps']} training steps)"


def _simd():
    import os

    from . import SIMD_HELD, SIMD_HOLD

    if SIMD_HELD:
        unheld = [name for name, value in SIMD_HOLD.items() if os.environ.get(name) != value]
        told = f"; set by you: {', '.join(unheld)}" if unheld else ""
        return (f"AVX-512 present: NumPy, OpenCV's IPP, BLAS, torch and Numba held to AVX2 "
                f"(HMRM_NATIVE_SIMD=1: native){told}")
    if os.environ.get("HMRM_NATIVE_SIMD"):
        return "native kernels (HMRM_NATIVE_SIMD is set): the committed tables' last bits may differ here"
    return "no AVX-512 on this processor: nothing to hold"


def run_doctor() -> int:
    from . import __version__

    print(f"hmrm {__version__} | Python {sys.version.split()[0]} | {platform.platform()}")
    import warnings

    ok = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ok &= _check("torch", _torch)
        ok &= _check("torchvision", _torchvision)
        _check("SIMD kernels", _simd, required=False)
        _check("CUDA", _cuda, required=False)
        _check("mamba-ssm kernel", _mamba, required=False)
        _check("fused CPU scan", _fused_scan, required=False)
        _check("Triton scan", _triton, required=False)
        _check("Ray (optional)", _ray, required=False)
        ok &= _check("opencv-contrib", _opencv)
        ok &= _check("dlib model", _dlib)
        ok &= _check("MTCNN weights", _mtcnn)
        _check("face bank", _bank, required=False)
        _check("GRU-AOFE weights", _flow_weights, required=False)
    print("all required components work" if ok else "some required component FAILED (see above)")
    return 0 if ok else 1

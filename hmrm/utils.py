"""Small helpers shared by the whole package: cache folder, atomic writes, device choice, threads."""
from __future__ import annotations

import hashlib
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def cache_dir(sub: str | None = None) -> Path:
    """The folder where downloaded or derived files are kept.

    ``$HMRM_CACHE`` wins; otherwise ``$XDG_CACHE_HOME/hmrm`` (``~/.cache/hmrm``).
    The Makefile points ``HMRM_CACHE`` at ``.cache/`` inside the repository, which git ignores.
    """
    root = os.environ.get("HMRM_CACHE")
    if root:
        base = Path(root)
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hmrm"
    path = base / sub if sub else base
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    An interrupted writer therefore never leaves a half-written file under the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def pick_device(preferred: str | None = None):
    """Return a ``torch.device``: the one asked for, else CUDA when available, else CPU."""
    import torch

    if preferred and preferred != "auto":
        dev = torch.device(preferred)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(
                f"device {preferred!r} was asked for but CUDA is not available here; "
                "pass --device cpu (or 'auto') to run on the CPU"
            )
        return dev
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@contextmanager
def single_threaded() -> Iterator[None]:
    """Within the block, PyTorch and OpenCV compute on one thread (the settings before are restored).

    Some multi-threaded kernels split their sums differently for different numbers of threads, so
    the last bits of a result can depend on the machine's core count or on ``--threads``. Work
    whose output is cached or compared byte for byte (the flow inputs) runs inside this block, so
    that it gives the same bytes whatever the threads and worker processes.
    """
    import cv2
    import torch

    torch_before, cv2_before = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        torch.set_num_threads(torch_before)
        cv2.setNumThreads(cv2_before)

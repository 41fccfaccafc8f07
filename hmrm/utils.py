"""Small helpers shared by the whole package: cache folder, atomic writes, device choice, threads."""
from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
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


def current_umask() -> int:
    """The process's file-creation mask (read without changing it where the system allows)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere the only way to read it is to set it, briefly
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    An interrupted writer therefore never leaves a half-written file under the final name. The
    file gets the mode an ordinary ``open(path, "w")`` would give it (0666 less the umask), not the
    owner-only mode of a temporary file, so that what one user builds the rest of a lab can read.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part" + path.suffix, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~current_umask())
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


def write_between_markers(path: str | Path, begin: str, end: str, text: str) -> bool:
    """Replace what lies between the lines ``begin`` and ``end`` of the file ``path`` by ``text``
    (atomically). Returns False, changing nothing, when a marker is missing."""
    path = Path(path)
    old = path.read_text()
    if begin not in old or end not in old:
        return False
    head, rest = old.split(begin, 1)
    _, tail = rest.split(end, 1)
    atomic_write_text(path, head + begin + "\n" + text + "\n" + end + tail)
    return True


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


# ----------------------------------------------------------------------------- worker processes
def _exit_with_parent(parent: int, poll: float) -> None:
    while True:
        time.sleep(poll)
        if os.getppid() != parent:  # re-parented: the process that started us is gone
            os._exit(1)


def _worker_start(parent: int, poll: float, initializer, initargs) -> None:
    threading.Thread(target=_exit_with_parent, args=(parent, poll), daemon=True, name="hmrm-parent-watch").start()
    if initializer is not None:
        initializer(*initargs)


def worker_pool(workers: int, initializer=None, initargs: tuple = (), poll: float = 0.5):
    """A ``ProcessPoolExecutor`` of ``workers`` spawned processes (spawn, not fork: forking a process
    whose torch or OpenMP threads already ran can deadlock the children) that end on their own when
    the calling process dies. A job scheduler or the out-of-memory killer ends a process with SIGKILL,
    which runs no clean-up; without this its workers would live on as orphans, finishing work nobody
    will collect. Each worker checks every ``poll`` seconds that its parent is still there."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_worker_start,
                               initargs=(os.getpid(), poll, initializer, tuple(initargs)))


# ----------------------------------------------------------------------------- one writer per folder
class FolderBusyError(BlockingIOError):
    """Another process holds the folder's lock (see :func:`folder_lock`)."""


LOCK_NAME = ".hmrm.lock"


@contextmanager
def folder_lock(folder: str | os.PathLike, what: str = "folder") -> Iterator[Path]:
    """Hold an exclusive lock on ``folder`` (created if needed) for the block.

    Two processes writing one run folder or data set would each do the whole work and overwrite
    each other's files; the second one is refused instead, with the holder's PID and command. The
    lock is the operating system's (``filelock``), so it is released when the holder ends, however
    it ends; ``.hmrm.lock.owner`` beside it says who holds it (removed on release; the empty lock file
    itself stays).
    """
    import json
    import sys
    from datetime import datetime

    from filelock import FileLock, Timeout

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / LOCK_NAME))
    owner = folder / (LOCK_NAME + ".owner")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        try:
            info = json.loads(owner.read_text())
        except (OSError, ValueError):
            info = {}
        holder = (f"PID {info.get('pid', '?')} on {info.get('host', '?')}, since {info.get('since', '?')}"
                  + (f": {info['command']}" if info.get("command") else ""))
        raise FolderBusyError(
            f"{what} {folder} is in use by another process ({holder}). Wait for it to finish, or stop it "
            f"(kill {info.get('pid', '<PID>')}), then run this command again: it continues from what is on disk."
        ) from None
    try:
        import platform
        import shlex

        atomic_write_text(owner, json.dumps({"pid": os.getpid(), "host": platform.node(),
                                             "since": datetime.now().isoformat(timespec="seconds"),
                                             "command": shlex.join(sys.argv)}))
        yield folder
    finally:
        owner.unlink(missing_ok=True)  # the empty lock file stays: a folder's bytes do not depend on who wrote it
        lock.release()

"""Folds trained side by side on a CPU: spawned worker processes, one PyTorch thread each, so that the
results are the same bits whatever the number of workers (see the package docstring)."""
from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from ...utils import worker_pool
from .config import FOLD_THREADS, LOSOConfig
from .data import LOSOData
from .fold import make_fold
from .fold_parts import Stopped
from .report import write_outputs


def train_in_workers(todo: list, n_workers: int, data: LOSOData, config: LOSOConfig, env: dict, run_dir: Path,
                      results: dict, deadline: float | None, bar) -> bool:
    """Train the folds of ``todo`` in ``n_workers`` spawned processes, adding each result to
    ``results`` (and the run folder's pooled files) as it arrives. False if one stopped at the
    deadline.

    A fold is handed to a worker only when one is free, so that an interrupt (Ctrl-C, SIGTERM) or a
    failing fold leaves no fold queued to start: the workers are told to stop (SIGTERM: the fold
    raises where it is, its last checkpoint stays, nothing half-written is left), and ended if they
    have not within :data:`STOP_SECONDS`."""
    from concurrent.futures import FIRST_COMPLETED, wait

    finished = True
    queue = list(todo)
    running: dict = {}
    pool = worker_pool(n_workers, _worker_init, (data, config, env, run_dir))

    def hand_out() -> None:
        while queue and len(running) < n_workers:
            index, subject, train_idx, test_idx = queue.pop(0)
            running[pool.submit(_worker_fold, index, subject, train_idx, test_idx, deadline)] = subject

    try:
        hand_out()
        while running:
            bar.set_postfix(training=",".join(sorted(running.values())), refresh=True)
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: running[f]):
                subject = running.pop(future)
                result = future.result()  # a fold's error is raised here, naming what went wrong
                if result is None:  # past the deadline: folds that have not started stay to do
                    finished = False
                    queue.clear()
                    continue
                record_fold(results, result, run_dir, data, config, bar)
            hand_out()
    except BaseException:
        stop_workers(pool)
        raise
    pool.shutdown(wait=True)
    return finished


#: Seconds the workers get to stop after SIGTERM before they are killed.
STOP_SECONDS = 10.0


def stop_workers(pool, grace: float = STOP_SECONDS) -> None:
    """Stop a worker pool now: nothing queued starts, every worker gets SIGTERM (its fold stops where it
    is, keeping its last checkpoint) and is killed if it has not ended within ``grace`` seconds."""
    known = getattr(pool, "_processes", None)   # the executor's own record of its processes (pid -> Process)
    processes = list(known.values()) if isinstance(known, dict) else []
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        if proc.is_alive():
            proc.terminate()
    end = time.monotonic() + grace
    for proc in processes:
        proc.join(max(0.0, end - time.monotonic()))
    for proc in processes:
        if proc.is_alive():
            proc.kill()
            proc.join(1.0)


def record_fold(results: dict, result: dict, run_dir: Path, data: LOSOData, config: LOSOConfig, bar) -> None:
    """Add a finished fold's result to ``results`` and rewrite the run folder's pooled files."""
    results[result["subject"]] = result
    write_outputs(run_dir, list(results.values()), data, config, figures=False)
    bar.update(1)


#: What a worker process trains with, set once by the pool's initializer (so the data cross to each
#: process once, not with every fold): the one module-level state of the LOSO code, and it lives in
#: worker processes only.
_WORKER: dict = {}


class WorkerStopped(BaseException):
    """Raised in a worker's fold by SIGTERM: the parent asked it to stop (its last checkpoint stays)."""


def _on_sigterm(signum, frame) -> None:
    if _WORKER.get("in_fold"):
        raise WorkerStopped()   # unwinds the fold: atomic writes in progress remove their temporary files
    os._exit(0)                 # idle: nothing to tidy


def _worker_init(data: LOSOData, config: LOSOConfig, env: dict, run_dir: Path) -> None:
    import signal

    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)     # Ctrl-C reaches the whole process group: the parent decides
    signal.signal(signal.SIGTERM, _on_sigterm)
    torch.set_num_threads(FOLD_THREADS)
    _WORKER.update(data=data, config=config, env=env, run_dir=run_dir)


def _worker_fold(index: int, subject: str, train_idx, test_idx, deadline: float | None) -> dict | None:
    """Train one fold in a worker process; None when it stopped at the deadline (after a checkpoint)."""
    w = _WORKER
    fold = make_fold(w["data"], w["config"], w["env"], w["run_dir"], index, subject, train_idx, test_idx)
    w["in_fold"] = True
    try:
        return fold.run(False, None if deadline is None else lambda *_: time.time() > deadline)
    except Stopped:
        return None
    finally:
        w["in_fold"] = False


def cpu_cores() -> int:
    """The CPU cores this process may use."""
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def fold_workers(requested: int | None, device: str, n_folds: int) -> int:
    """How many processes train folds: ``requested`` (None: one per CPU core), at most one per fold,
    and 1 (the calling process) on CUDA."""
    if not device.startswith("cpu") or n_folds < 2:
        return 1
    return max(1, min(requested or cpu_cores(), n_folds))


@contextlib.contextmanager
def fold_threads():
    """Within the block, PyTorch uses :data:`FOLD_THREADS` threads (the number every fold trains with)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(FOLD_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(before)

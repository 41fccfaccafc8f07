"""Folds as Ray tasks: one LOSO run spread over the CPUs and GPUs of a Ray cluster (or of this
machine), with the same run folder, resume and results as training the folds here.

Ray (https://docs.ray.io) is an optional extra: ``pip install -e '.[ray]'``. Each fold is one task
that asks for one CPU (and one GPU when the run's device is CUDA) and trains with one PyTorch thread,
as the local fold workers do, so the numbers do not depend on which machine trained which fold.
The task writes its checkpoints and ``result.json`` straight into the run folder, which must
therefore be on a path every machine of the cluster sees (a shared file system); the inputs travel
through Ray's object store, so the workers need the ``hmrm`` package but neither the data nor the
flow cache.

A worker that dies (a killed process, a lost machine) fails its task; Ray runs the task again (up
to ``retries`` times), and the new attempt continues the fold from its last checkpoint in the run
folder. Folds that finished are never trained again: their ``result.json`` is the mark. While a
task runs, its fold folder holds ``running.json`` (host, process id, start time), removed when the
fold is done, so a person (or a test) can see which process trains what.
"""
from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from ...utils import atomic_write_text
from .config import FOLD_THREADS, LOSOConfig
from .data import LOSOData
from .fold import make_fold
from .fold_parts import Stopped
from .workers import cpu_cores, record_fold

#: How the ray extra is installed (the message of a run asked for Ray where it is missing).
RAY_INSTALL = "pip install -e '.[ray]'  (in this repository; or: pip install 'ray>=2.40')"
#: Engines that train a run's folds: "local" (this process, or worker processes on a CPU), "stacked"
#: (several folds as one batched network, :mod:`.stacked`) and "ray".
ENGINES = ("local", "stacked", "ray")
#: How many times Ray runs a fold's task again after its worker died.
RETRIES = 3


class EngineError(RuntimeError):
    """The ray engine cannot run: Ray is missing, the cluster cannot be reached, or a fold failed."""


def import_ray():
    """The ``ray`` module, or an :class:`EngineError` that says how to install it."""
    try:
        import ray
    except ImportError:
        raise EngineError(f"the ray engine needs Ray, an optional extra that is not installed: {RAY_INSTALL}") from None
    return ray


def ray_available() -> str | None:
    """Ray's version when it can be imported, else None (``hmrm doctor`` reports it)."""
    try:
        import ray
    except ImportError:
        return None
    return ray.__version__


#: Seconds to wait for a cluster's address to answer before giving up (an unreachable address would
#: otherwise keep ``ray.init`` trying for minutes).
CONNECT_TIMEOUT = 5.0
#: Set (to anything) by ``--verbose``: Ray's own log lines reach the terminal.
VERBOSE_ENV = "HMRM_RAY_VERBOSE"


def _unreachable(address: str, problem: str) -> EngineError:
    return EngineError(f"cannot reach a Ray cluster at {address!r} ({problem}). Start one with `ray start --head` on "
                       "one machine (it prints the address to pass, HEAD:6379) and `ray start --address HEAD:6379` on "
                       "the others; or leave --address out to start Ray on this machine; or drop --engine ray to "
                       "train here without Ray.")


def check_ray_address(address: str, timeout: float = CONNECT_TIMEOUT) -> None:
    """Fail fast, with a message that names ``address``, when nothing answers there: ``HOST:PORT``
    (``ray://HOST:PORT`` too) must accept a connection within ``timeout`` seconds. ``auto`` (Ray finds
    a cluster on this machine) is left to Ray."""
    if address == "auto":
        return
    host_port = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = host_port.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise _unreachable(address, "not an address of the form HOST:PORT")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise _unreachable(address, f"nothing answers there within {timeout:g} s: {exc.strerror or exc}") from None


def _start(ray, address: str | None, cpus: int | None) -> bool:
    """Connect to the cluster at ``address`` or start a local one with ``cpus`` CPUs; True if this
    call started (and so must stop) Ray. Ray's own log lines stay out of the terminal unless
    :data:`VERBOSE_ENV` is set (``--verbose``)."""
    import logging

    if ray.is_initialized():
        return False
    verbose = bool(os.environ.get(VERBOSE_ENV))
    if not verbose:
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "error")
    kwargs = {"include_dashboard": False, "log_to_driver": verbose, "configure_logging": verbose,
              "logging_level": logging.INFO if verbose else logging.ERROR}
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(num_cpus=cpus or cpu_cores(), **kwargs)
    except Exception as exc:  # ConnectionError, a timeout, a refused address ...
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise EngineError(f"cannot start or reach {where} ({type(exc).__name__}: {exc}). Start the cluster with "
                          "`ray start --head` on one machine and `ray start --address HEAD:6379` on the others, "
                          "then pass --address HEAD:6379; or leave --address out to use this machine.") from None
    return True


def train_on_ray(todo: list, data: LOSOData, config: LOSOConfig, env: dict, run_dir: Path, results: dict,
                 deadline: float | None, bar, address: str | None = None, cpus: int | None = None,
                 retries: int | None = None) -> bool:
    """Train the folds of ``todo`` as Ray tasks, adding each result to ``results`` (and the run
    folder's pooled files) as it arrives. ``address``: a running cluster (None: start Ray on this
    machine with ``cpus`` CPUs, one fold per CPU). ``retries``: attempts after a worker died
    (default :data:`RETRIES`). A fold that fails does not stop the others: they finish and are kept,
    then :class:`EngineError` names the failed ones. False if a fold stopped at ``deadline`` (a
    ``time.time()`` value)."""
    ray = import_ray()
    started = _start(ray, address, cpus)
    run_dir = Path(run_dir).resolve()
    finished, failures = True, {}
    try:
        gpu = 1 if env["device"].startswith("cuda") else 0
        task = ray.remote(num_cpus=1, num_gpus=gpu, max_retries=RETRIES if retries is None else retries,
                          retry_exceptions=False)(_ray_fold)
        data_ref = ray.put(data)
        running = {task.remote(data_ref, config, env, str(run_dir), index, subject, train_idx, test_idx, deadline):
                   subject for index, subject, train_idx, test_idx in todo}
        try:
            while running:
                bar.set_postfix(training=f"{len(running)} folds on Ray", refresh=True)
                done, _ = ray.wait(list(running), num_returns=1)
                for ref in done:
                    subject = running.pop(ref)
                    try:
                        result = ray.get(ref)
                    except Exception as exc:  # the fold's own error, or its worker lost more than `retries` times
                        failures[subject] = exc
                        continue
                    if result is None:  # stopped at the deadline, after a checkpoint
                        finished = False
                        continue
                    record_fold(results, result, run_dir, data, config, bar)
        except BaseException:
            for ref in running:
                ray.cancel(ref, force=True)
            raise
    finally:
        if started:
            ray.shutdown()
    if failures:
        lines = "\n".join(f"  {s}: {type(e).__name__}: {_short(e)}" for s, e in sorted(failures.items()))
        raise EngineError(f"{len(failures)} fold(s) failed on Ray:\n{lines}\nThe other folds finished and are kept in "
                          f"{run_dir} (a failed fold keeps its last checkpoint); fix the cause and run the same command "
                          "again to continue.")
    return finished


def _short(exc: Exception, limit: int = 2000) -> str:
    text = str(exc).strip()
    return text if len(text) <= limit else "..." + text[-limit:]


def _ray_fold(data: LOSOData, config: LOSOConfig, env: dict, run_dir: str, index: int, subject: str, train_idx,
              test_idx, deadline: float | None) -> dict | None:
    """One fold in a Ray worker: resumes from the fold's checkpoint when an earlier attempt left one;
    None when it stopped at the deadline."""
    import torch

    torch.set_num_threads(FOLD_THREADS)
    fold = make_fold(data, config, env, run_dir, index, subject, train_idx, test_idx)
    folder = fold.folder
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / "running.json"
    atomic_write_text(marker, json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}) + "\n")
    try:
        return fold.run(False, None if deadline is None else lambda *_: time.time() > deadline)
    except Stopped:
        return None
    finally:
        marker.unlink(missing_ok=True)

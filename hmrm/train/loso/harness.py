"""``run_loso``: a LOSO run from its inputs to its scores, resumable; the steps are in the sibling
modules (configuration, run folder, fold, workers, report)."""
from __future__ import annotations

import contextlib
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ...data.records import DataError
from ...options import OptionError
from ...utils import folder_lock
from ..folds import fold_dir, read_fold_result
from .config import LOSOConfig, build_fold_model, resolve_environment
from .data import LOSOData, loso_splits
from .fold import Fold, make_fold
from .fold_parts import Stopped
from .ray_engine import ENGINES, check_ray_address, import_ray, train_on_ray
from .report import LOSOResult, write_outputs
from .run_folder import RUN_FORMAT, config_record, damaged_checkpoint, open_run_dir, sweep_partial_files
from .stacked import StackedFolds, group_size
from .workers import fold_threads, fold_workers, record_fold, train_in_workers


@dataclass(frozen=True)
class RunOptions:
    """How :func:`run_loso` carries a run out: none of it changes a score (``stop`` and ``max_minutes``
    only pause it, and the same call continues).

    ``progress``: progress bars. ``figures``: also draw ``training.png`` and ``confusion.png`` at the
    end. ``stop(subject, epoch)`` is asked after every epoch but a fold's last (after that epoch's
    periodic checkpoint, if any); True writes a checkpoint and returns (``finished=False``);
    ``max_minutes`` stops the same way once that much time has passed. ``cache_dir``: the flow-input
    cache; ``prepared``: the crops of ``hmrm prepare`` (licensed sets). ``workers``: processes that
    train folds side by side on a CPU (1: every fold in the calling process; None: one per core; the
    results do not depend on it); a ``stop`` hook runs every fold in the calling process.
    ``engine``: "local" (the above), "ray" (every fold a Ray task, on the cluster at ``address`` or,
    without one, on a Ray instance started here with ``workers`` CPUs; :mod:`.ray_engine`; the same
    bits) or "stacked" (``stack`` folds at a time, default: as many as the device memory holds,
    trained as one batched network, for GPUs; :mod:`.stacked`: the same results up to rounding).
    """

    progress: bool = True
    figures: bool = True
    stop: Callable[[str, int], bool] | None = None
    max_minutes: float | None = None
    cache_dir: str | Path | None = None
    prepared: str | Path | None = None
    workers: int | None = 1
    engine: str = "local"
    address: str | None = None
    stack: int | None = None

    def __post_init__(self):
        if self.engine not in ENGINES:
            raise ValueError(f"unknown engine {self.engine!r}; choose one of {', '.join(ENGINES)}")
        if self.engine == "ray" and self.stop is not None:
            raise ValueError("a stop hook needs engine='local' (Ray tasks stop at max_minutes only)")
        if self.engine != "ray" and self.address is not None:
            raise ValueError("an address is for engine='ray'")
        if self.stack is not None and self.engine != "stacked":
            raise ValueError("stack (folds trained at once) is for engine='stacked'")

    def deadline(self, clock: Callable[[], float]) -> float | None:
        """When ``max_minutes`` runs out, on ``clock`` (None: never)."""
        return None if self.max_minutes is None else clock() + 60 * self.max_minutes


def run_loso(samples_or_inputs, config: LOSOConfig, run_dir: str | Path,
             options: RunOptions | None = None) -> LOSOResult:
    """Run (or continue) a LOSO evaluation of ``config`` into ``run_dir`` and return its scores.

    ``samples_or_inputs``: a list of :class:`~hmrm.data.records.Sample` (their flow inputs are built
    with ``config.flow`` / ``input_size`` / ``channels``, cached under ``options.cache_dir``, from the
    crops in ``options.prepared`` for the licensed sets) or a :class:`LOSOData`. ``options``: how the
    run is carried out (:class:`RunOptions`; progress bars, figures, pausing, engines), never what it
    computes. Calling again with the same arguments continues.
    """
    options = options or RunOptions()
    if options.engine == "ray":
        import_ray()  # before any work: say how to install it
    if options.engine == "stacked" and config.amp:
        raise ValueError("stacked folds train in float32: drop amp, or use engine='local'")
    data = _inputs(samples_or_inputs, config, options)
    subjects = require_subjects(data.groups)
    if config.folds is not None and config.folds > len(subjects):
        raise OptionError("folds", f"asks for the first {config.folds} folds, but the data has {len(subjects)} subjects "
                                   f"(one fold each); give at most {len(subjects)}, or leave it out for every subject")
    try:  # before the run folder records the configuration
        build_fold_model(config, len(data.classes), data.x.shape[1])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the model options {config.model_overrides} do not build a {config.model} network: {exc}") from None
    run_dir = Path(run_dir)
    env = resolve_environment(config)
    if options.engine == "ray" and options.address is not None:
        check_ray_address(options.address)  # an unreachable cluster fails now, before the run folder is written
    with folder_lock(run_dir, "run folder"):  # one writer at a time; a second process is refused
        return _train_run(data, config, env, run_dir, options)


def _inputs(samples_or_inputs, config: LOSOConfig, options: RunOptions) -> LOSOData:
    """The :class:`LOSOData` of :func:`run_loso`'s first argument, built from samples or checked against ``config``."""
    if isinstance(samples_or_inputs, LOSOData):
        data = samples_or_inputs
        if data.x.shape[-1] != config.input_size:
            raise ValueError(f"the inputs are {data.x.shape[-1]} px but config.input_size is {config.input_size}")
        if data.source.get("flow") not in (None, config.flow):
            raise ValueError(f"the inputs were made with flow {data.source['flow']!r} but config.flow is {config.flow!r}")
    else:
        data = LOSOData.from_samples(samples_or_inputs, config.flow, config.input_size, config.channels,
                                     cache_dir=options.cache_dir, prepared=options.prepared,
                                     progress=options.progress, head_motion=config.head_motion)
    if data.source.get("head_motion", "keep") != config.head_motion:
        raise ValueError(f"the inputs were built with head_motion={data.source.get('head_motion', 'keep')!r} but the "
                         f"config asks for {config.head_motion!r}: build them with LOSOData.from_samples(..., "
                         f"head_motion={config.head_motion!r})")
    if data.x.shape[1] != len(config.channels):
        raise ValueError(f"the inputs have {data.x.shape[1]} channels but config.channels names {len(config.channels)}")
    return data


def require_subjects(groups, where: str = "these inputs") -> list[str]:
    """The sorted subjects of ``groups``; an error that gives the count and the fix when there are
    fewer than two (leave-one-subject-out then has no fold that trains on anyone)."""
    subjects = sorted(set(groups))
    if len(subjects) < 2:
        raise DataError(f"leave-one-subject-out needs at least two subjects; {where} have {len(subjects)} "
                        f"({', '.join(subjects) or 'none'}), so no fold could train on anyone. A SynthME built "
                        "without network access (or with --offline) has only the one offline photo: build it where "
                        "PyPI can be reached (`hmrm facebank` fetches the bank), or point to a data set with more "
                        "subjects.")
    return subjects


def _train_run(data: LOSOData, config: LOSOConfig, env: dict, run_dir: Path, options: RunOptions) -> LOSOResult:
    """The body of :func:`run_loso` once its inputs are checked and the run folder is locked."""
    open_run_dir(run_dir, config_record(config, data, env))
    sweep_partial_files(run_dir)   # left by a process killed in the middle of a write
    from tqdm.auto import tqdm

    splits = loso_splits(data.groups)
    chosen = splits[: config.folds] if config.folds else splits
    results: dict[str, dict] = {}
    for subject, _, test_idx in splits:  # every finished fold in the folder counts, chosen or not
        folder = fold_dir(run_dir, subject)
        r = read_fold_result(folder / "result.json")
        if r is not None and r.get("format") == RUN_FORMAT and r.get("keys") == [data.keys[i] for i in test_idx]:
            problem = damaged_checkpoint(folder / "checkpoint.pt")
            if problem is None:
                results[subject] = r
                continue
            warnings.warn(f"{folder / 'checkpoint.pt'}: the final weights of the finished fold {subject} cannot be "
                          f"used ({problem}); that fold is trained again.", stacklevel=2)
            (folder / "result.json").unlink()
            (folder / "checkpoint.pt").unlink(missing_ok=True)
    deadline, stop = options.deadline(time.monotonic), options.stop

    def halt(subject: str, epoch: int) -> bool:
        return (stop is not None and stop(subject, epoch)) or (deadline is not None and time.monotonic() > deadline)

    todo = [(i, *chosen[i]) for i in range(len(chosen)) if chosen[i][0] not in results]
    bar = tqdm(total=len(chosen), initial=len(chosen) - len(todo), desc="LOSO folds", unit="fold", disable=not options.progress)
    n_workers = 1 if stop is not None else fold_workers(options.workers, env["device"], len(todo))
    if options.engine == "stacked" and todo:
        finished = _train_stacked(todo, data, config, env, run_dir, results, options, halt, bar)
    elif options.engine == "ray" and todo:
        finished = train_on_ray(todo, data, config, env, run_dir, results, options.deadline(time.time), bar,
                                options.address, options.workers)
    elif n_workers > 1:
        finished = train_in_workers(todo, n_workers, data, config, env, run_dir, results,
                                     options.deadline(time.time), bar)
    else:
        finished = True
        with fold_threads() if env["device"] == "cpu" else contextlib.nullcontext():
            for index, subject, train_idx, test_idx in todo:
                bar.set_postfix(subject=subject, refresh=True)
                fold = make_fold(data, config, env, run_dir, index, subject, train_idx, test_idx)
                try:
                    results[subject] = fold.run(options.progress, halt)
                except Stopped:
                    finished = False
                    break
                write_outputs(run_dir, list(results.values()), data, config, figures=False)
                bar.update(1)
    bar.close()
    metrics = write_outputs(run_dir, list(results.values()), data, config, figures=options.figures)
    return LOSOResult(run_dir, metrics, finished)


def _train_stacked(todo: list, data: LOSOData, config: LOSOConfig, env: dict, run_dir: Path, results: dict,
                   options: RunOptions, halt, bar) -> bool:
    """The folds of ``todo`` stacked ``options.stack`` at a time (:mod:`.stacked`); False if ``halt`` paused them."""
    def fold(index, subject, train_idx, test_idx) -> Fold:
        return make_fold(data, config, env, run_dir, index, subject, train_idx, test_idx)

    with fold_threads() if env["device"] == "cpu" else contextlib.nullcontext():
        size = group_size(options.stack, len(todo), fold(*todo[0]))
        for g in range(0, len(todo), size):
            group = [fold(*t) for t in todo[g:g + size]]  # one group's training data on the device at a time
            bar.set_postfix(training=",".join(f.subject for f in group), refresh=True)
            done = StackedFolds(group).run(options.progress, halt,
                                           on_result=lambda r: record_fold(results, r, run_dir, data, config, bar))
            if done is None:
                return False
    return True

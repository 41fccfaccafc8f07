"""The run folder of a LOSO run: its name, ``config.json`` (what the run is; a folder made with another
configuration or other inputs is refused, saying what differs), and the finished folds' final
weights read back (their folders and ``result.json``: :mod:`hmrm.train.folds`)."""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Sequence

from ...checkpoint import load_checkpoint
from ...data.records import DataError
from ...utils import atomic_write_text
from ..folds import fold_dir
from .config import LOSOConfig

#: Format of the run folder; bumped when its files change meaning.
RUN_FORMAT = 1
#: Config fields that may change between two calls on the same run folder: they do not change
#: what any fold computes (``device`` may change the last bits; a change is warned about and the
#: device of every fold is recorded).
FREE_FIELDS = ("folds", "checkpoint_every", "device")


class RunMismatchError(DataError):
    """The run folder was made with another configuration or other inputs (``run_dir``, ``diffs``:
    what differs, for a command to word its own hint)."""

    def __init__(self, message: str, run_dir: Path | None = None, diffs: Sequence[str] = ()):
        super().__init__(message)
        self.run_dir, self.diffs = run_dir, list(diffs)


def run_name(dataset: str, config, seeds: Sequence[int] | None = None) -> str:
    """The default name of a run folder, from what the run is:
    ``<dataset>-<model>[-<ablation>]-<flow>[-headremoved]-e<epochs>-seed<S>``, or ``...-seeds<A>-<B>`` for a run over the
    training seeds ``seeds``. ``dataset`` may name its build too (``synthme_tiny3``)."""
    seed_part = f"seeds{seeds[0]}-{seeds[-1]}" if seeds else f"seed{config.seed}"
    head = ["headremoved"] if getattr(config, "head_motion", "keep") == "remove" else []
    return "-".join([dataset, config.model] + ([config.ablation] if config.ablation else [])
                    + [config.flow, *head, f"e{config.epochs}", seed_part])


def config_record(config, data, env: dict) -> dict:
    """What ``config.json`` holds: the format, the configuration, the inputs' description and the environment."""
    return {"format": RUN_FORMAT, "config": config.to_dict(), "motionmix_applied": config.mixes,
            "data": data.describe(), "environment": env}


def config_differences(old: dict, config: dict) -> list[str]:
    """How the configuration recorded in a run folder's ``config.json`` (``old``) differs from
    ``config`` (a :meth:`LOSOConfig.to_dict`), field by field; the fields that may change between
    sessions (device, workers ...) do not count."""
    diffs = []
    # a field added to LOSOConfig after a run was made reads as its default there
    oc, nc = {**LOSOConfig.field_defaults(), **old.get("config", {})}, config
    for k in sorted(set(oc) | set(nc)):
        if k in FREE_FIELDS:
            continue
        if oc.get(k) != nc.get(k):
            diffs.append(f"{k}: {json.dumps(oc.get(k))} there, {json.dumps(nc.get(k))} here")
    return diffs


def mismatch_message(run_dir: Path, diffs: list[str], new_folder: str) -> str:
    """The refusal of a run folder made with another configuration: what differs, how to continue
    that run, and how to start another (``new_folder``: the option that names a run folder for the
    command at hand, e.g. ``--run-dir`` or ``another --out``)."""
    return (f"{run_dir} holds a run made with another configuration:\n  " + "\n  ".join(diffs)
            + f"\nTo continue that run, repeat its options (they are in {run_dir / 'config.json'}). To start a new "
            f"run, pass {new_folder}, or delete {run_dir}.")


def _differences(old: dict, new: dict) -> list[str]:
    diffs = config_differences(old, new["config"])
    od, nd = old.get("data", {}), new["data"]
    if od.get("fingerprint") != nd["fingerprint"]:
        what = [f"{k}: {json.dumps(od.get(k))} there, {json.dumps(nd.get(k))} here"
                for k in ("n_samples", "n_subjects", "classes", "class_counts", "shape", "datasets", "scheme")
                if od.get(k) != nd.get(k)]
        diffs.append("the inputs differ (fingerprint of flow maps, boxes, labels and subjects)"
                     + (f": {'; '.join(what)}" if what else "; same sizes, other values (a rebuilt data set or flow cache?)"))
    if old.get("format") != RUN_FORMAT:
        diffs.append(f"run folder format {old.get('format')} there, {RUN_FORMAT} here")
    return diffs


def open_run_dir(run_dir: Path, record: dict) -> None:
    """Write ``config.json``, or check that the one already there describes the same run (a command
    words its own hint from the refusal's ``run_dir`` and ``diffs``)."""
    path = run_dir / "config.json"
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except ValueError as exc:
            raise RunMismatchError(f"{path} is unreadable ({exc}); delete {run_dir} to start over, or pass another "
                                   "run folder.") from None
        diffs = _differences(old, record)
        if diffs:
            raise RunMismatchError(mismatch_message(run_dir, diffs, "another run folder"), run_dir, diffs)
        if old.get("environment", {}).get("device") != record["environment"]["device"]:
            warnings.warn(f"{run_dir} was started on {old.get('environment', {}).get('device')} and continues on "
                          f"{record['environment']['device']}; each fold's result.json records where it ran.",
                          stacklevel=3)
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")


def _final_checkpoint(ckpt) -> None:
    if not isinstance(ckpt, dict) or not ckpt.get("final") or ckpt.get("model") is None:
        raise ValueError("it is not the final checkpoint of a finished fold")


def _load_final(path: Path, model=None) -> str | None:
    """Load a finished fold's final checkpoint (into ``model`` when given); what is wrong with it, or None."""
    parts = {} if model is None else {"model": model}
    try:
        if load_checkpoint(path, parts, "cpu", check=_final_checkpoint) is None:
            return "it is missing"
    except Exception as exc:  # truncated, garbage, not a torch file, another network's weights
        detail = str(exc).splitlines()[0][:120] if str(exc) else "no detail"
        return detail if detail.startswith("it is") else f"it cannot be loaded ({type(exc).__name__}: {detail})"
    return None


def damaged_checkpoint(path: Path) -> str | None:
    """Why a finished fold's final ``checkpoint.pt`` cannot be used (missing, unreadable, not a final
    checkpoint of this format), or None when it loads."""
    return _load_final(Path(path))


def load_final_weights(run_dir: Path, subject: str, model) -> None:
    """Load a finished fold's final weights into ``model``; a damaged file is an error that names it
    and says how to get it back."""
    path = fold_dir(run_dir, subject) / "checkpoint.pt"
    problem = _load_final(path, model)
    if problem is None:
        return
    raise DataError(f"{path}: the final weights of fold {subject} cannot be used: {problem}. Run the LOSO command "
                    f"that made {run_dir} again (its options are in {Path(run_dir) / 'config.json'}): it trains that "
                    "fold again, to the same predictions.")


def sweep_partial_files(run_dir: Path) -> list[Path]:
    """Remove the temporary files an atomic write leaves when its process was killed outright (SIGKILL,
    a force-cancelled Ray task): ``.<name>.<random>.part<suffix>`` beside the file it was to replace.
    Only called with the run folder's lock held, so no other process is writing them."""
    gone = []
    for path in Path(run_dir).rglob(".*.part*"):
        if path.is_file():
            path.unlink(missing_ok=True)
            gone.append(path)
    return gone

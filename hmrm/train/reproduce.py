"""``hmrm reproduce``: run the LOSO job notebook (``notebooks/jobs/loso_run.ipynb``) once per YAML config, with papermill.

::

    for each configs/<name>.yaml:
        parameters <- the YAML, each key mapped onto a parameter of notebooks/jobs/loso_run.ipynb
        parameters <- command-line overrides (--data-root, --prepared, --device, --epochs)
        <out>/<name>/metrics.json complete (and for the same epochs)?  -> skip, already done
        papermill: notebooks/jobs/loso_run.ipynb -> <out>/<name>/loso_run.ipynb, RUN_DIR = <out>/<name>
                   (run_loso writes config.json, folds/, metrics.json, ... beside the notebook)

Key mapping
-----------
A YAML key names a notebook parameter, in upper or lower case: ``epochs: 1000`` and
``EPOCHS: 1000`` both set ``EPOCHS``. Every key must be a parameter of the notebook's first cell
(the one tagged ``parameters``); an unknown key (a typo) is an error that lists the known ones.
Values are passed as they are (YAML ``null`` is Python ``None``).

Resuming
--------
A config whose run folder holds a ``metrics.json`` that covers every fold asked for (all subjects,
or the first ``FOLDS``) with the same number of epochs is skipped. Otherwise the notebook runs
again and :func:`hmrm.train.loso.run_loso` continues from the finished folds and checkpoints.
``--data-root`` and ``--prepared`` apply to the configs of the licensed data sets only; a SynthME
config keeps its own ``DATA_ROOT`` (None: the tiny SynthME build in the hmrm cache).
"""
from __future__ import annotations

import ast
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from ..data.classes import SCHEMES
from ..data.datasets import DATASET_NAMES, LICENSED, MissingDataError, check_licensed
from ..data.records import DataError
from ..options import OptionError, at_least, check_value, one_of
from .loso import ENGINES, LOSOConfig
from .loso.ray_engine import check_ray_address, import_ray
from .loso.run_folder import config_differences, mismatch_message

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "jobs" / "loso_run.ipynb"
CONFIG_DIR = REPO / "configs"


class ReproduceError(DataError):
    """A config that cannot be run as given, or a notebook that failed."""


# ----------------------------------------------------------------------------- parameters
def notebook_parameters(notebook: str | Path = NOTEBOOK) -> dict:
    """Name -> default of the assignments in the notebook's cell tagged ``parameters``."""
    nb = json.loads(Path(notebook).read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            tree = ast.parse(src)
            return {t.id: ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
                    for t in node.targets if isinstance(t, ast.Name)}
    raise ReproduceError(f"{notebook} has no cell tagged 'parameters'")


def _available_configs() -> str:
    names = sorted(p.relative_to(REPO).as_posix() for p in CONFIG_DIR.glob("*.yaml")) if CONFIG_DIR.is_dir() else []
    return ", ".join(names) or "(none)"


def load_config(path: str | Path, parameters: dict | None = None) -> dict:
    """The notebook parameters a YAML config sets (keys mapped to the notebook's upper-case names)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ReproduceError(f"config {path} does not exist. Available configs: {_available_configs()}")
    parameters = notebook_parameters() if parameters is None else parameters
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ReproduceError(f"config {path} is not valid YAML: {exc}") from None
    if raw is None or raw == {}:
        raise ReproduceError(f"config {path} is empty: it sets no parameter, so it would run the job notebook's "
                             f"defaults unnoticed. Write the keys of the run into it (configs/loso_synthme_quick.yaml "
                             f"is an example; available configs: {_available_configs()}).")
    if not isinstance(raw, dict):
        raise ReproduceError(f"config {path} must be a mapping of notebook parameters, got {type(raw).__name__}")
    out: dict = {}
    for key, value in raw.items():
        name = str(key).upper()
        if name not in parameters:
            raise ReproduceError(f"config {path}: {key!r} is not a parameter of {NOTEBOOK.name}; known (either case): "
                                 + ", ".join(k.lower() for k in parameters))
        if name == "RUN_DIR":
            raise ReproduceError(f"config {path}: {key!r} is set by hmrm reproduce (OUT/<config name>); use --out")
        if name in out:
            raise ReproduceError(f"config {path}: {name} is set twice (keys are case-insensitive)")
        out[name] = value
    return out


# ----------------------------------------------------------------------------- parameters -> configuration
#: Notebook parameter -> :class:`~hmrm.train.loso.LOSOConfig` field: the notebook and ``hmrm reproduce`` both
#: build the run's configuration through :func:`config_from_parameters`, so a value is checked by the
#: same rules (the config's) whether it comes from the command line, a YAML file or the notebook.
PARAMETER_FIELDS = {
    "MODEL": "model", "ABLATION": "ablation", "MODEL_OPTIONS": "model_overrides", "FLOW_METHOD": "flow",
    "INPUT_SIZE": "input_size", "EPOCHS": "epochs", "FOLDS": "folds", "BATCH_SIZE": "batch_size", "LR": "lr",
    "WEIGHT_DECAY": "weight_decay", "SCHEDULE": "schedule", "WARMUP_EPOCHS": "warmup_epochs",
    "LABEL_SMOOTHING": "label_smoothing", "EMA": "ema", "MOTIONMIX_P": "motionmix_p", "AMP": "amp",
    "DEVICE": "device", "SEED": "seed",
}


def _other_parameters() -> dict:
    """The notebook parameters that are not configuration fields: their type and accepted values."""
    return {"DATASET": (str, one_of(*DATASET_NAMES)), "DATA_ROOT": (str | None, None), "PREPARED": (str | None, None),
            "CLASS_SCHEME": (str | None, one_of(*SCHEMES)), "THREADS": (int, at_least(0)),
            "WORKERS": (int | None, at_least(1)), "RUN_DIR": (str | None, None),
            "ENGINE": (str, one_of(*ENGINES)), "RAY_ADDRESS": (str | None, None), "STACK": (int | None, at_least(1))}


def config_from_parameters(params: dict):
    """The :class:`~hmrm.train.loso.LOSOConfig` that the notebook parameters in ``params`` ask for (other
    names in ``params`` are ignored, so a notebook can pass ``globals()``). Every parameter is
    checked, the configuration's own and the others (data set, scheme, threads, workers); a refused
    value raises :class:`~hmrm.options.OptionError` under its parameter's name (``EPOCHS``)."""
    for name, (hint, rule) in _other_parameters().items():
        if name in params:
            value = params[name]
            if name in ("DATA_ROOT", "PREPARED", "RUN_DIR") and isinstance(value, Path):
                value = str(value)
            if name == "DATASET" and isinstance(value, str):
                value = value.lower()
            check_value(name, value, hint, rule)
    kwargs = {field: params[name] for name, field in PARAMETER_FIELDS.items() if name in params}
    if kwargs.get("ablation") == "full":
        kwargs["ablation"] = None
    if str(kwargs.get("model", "")).lower() != "hmrm" and kwargs.get("ablation") is None:
        kwargs.pop("ablation", None)
    try:
        return LOSOConfig(**kwargs)
    except OptionError as exc:
        head, dot, sub = exc.key.partition(".")
        name = next((n for n, f in PARAMETER_FIELDS.items() if f == head), head.upper())
        raise exc.renamed(name + dot + sub) from None


# ----------------------------------------------------------------------------- planning and running
@dataclass
class PlannedRun:
    """One config: its name, YAML, run folder, executed-notebook path, parameters and state
    (``todo``, ``resume`` (a run folder exists) or ``done``)."""

    name: str
    config: Path
    run_dir: Path
    notebook: Path
    parameters: dict = field(default_factory=dict)
    state: str = "todo"
    metrics: dict | None = None
    refusal: str | None = None   # why the run folder refuses this config (state "refused")

    def describe(self) -> str:
        p = self.parameters
        folds = "all subjects" if p.get("FOLDS") is None else f"first {p['FOLDS']} subjects"
        return (f"{self.name}: {p.get('DATASET')} {p.get('MODEL')} ({p.get('ABLATION')}), flow {p.get('FLOW_METHOD')}, "
                f"{p.get('EPOCHS')} epochs, {folds}, device {p.get('DEVICE')} -> {self.run_dir} [{self.state}]")


def _is_done(metrics: dict | None, params: dict) -> bool:
    if not metrics or metrics.get("epochs") != params.get("EPOCHS"):
        return False
    folds = params.get("FOLDS")
    return bool(metrics.get("complete")) or (folds is not None and metrics.get("folds_done", 0) >= folds)


def plan(configs: Sequence[str | Path], out: str | Path = "runs/reproduce", data_root=None, prepared=None,
         device: str | None = None, epochs: int | None = None, engine: str | None = None,
         address: str | None = None, stack: int | None = None) -> list[PlannedRun]:
    """Resolve every config into a :class:`PlannedRun` (nothing runs; errors come before any training).
    ``engine``, ``address`` and ``stack`` override ENGINE, RAY_ADDRESS and STACK of every config
    (how the folds are trained: :func:`hmrm.train.loso.run_loso`)."""
    if not configs:
        raise ReproduceError(f"no config given. Available configs: {_available_configs()}")
    parameters = notebook_parameters()
    out = Path(out).resolve()
    runs, names = [], set()
    for cfg in configs:
        cfg = Path(cfg)
        params = {**parameters, **load_config(cfg, parameters)}
        dataset = str(params["DATASET"]).lower()
        if dataset in LICENSED:
            if data_root is not None:
                params["DATA_ROOT"] = str(data_root)
            if prepared is not None:
                params["PREPARED"] = str(prepared)
        overridden = set()
        if device is not None:
            params["DEVICE"], overridden = device, overridden | {"DEVICE"}
        if epochs is not None:
            params["EPOCHS"], overridden = epochs, overridden | {"EPOCHS"}
        if engine is not None:
            params["ENGINE"], overridden = engine, overridden | {"ENGINE"}
        if address is not None:
            params["RAY_ADDRESS"], overridden = address, overridden | {"RAY_ADDRESS"}
        if stack is not None:
            params["STACK"], overridden = stack, overridden | {"STACK"}
        try:
            loso_config = config_from_parameters(params)
        except OptionError as exc:
            origin = f"--{exc.key.lower()}" if exc.key in overridden else f"{exc.key.lower()}: in {cfg}"
            raise ReproduceError(f"config {cfg}: {exc.key.lower()}: {exc.problem}. Fix {origin} (keys are the "
                                 f"parameters of {NOTEBOOK.name}, in either case).") from None
        try:
            check_licensed(dataset, params["DATA_ROOT"], params["PREPARED"], root_option="--data-root, or DATA_ROOT "
                           "in the config", prepared_option="--prepared, or PREPARED in the config")
        except MissingDataError as exc:
            raise ReproduceError(f"config {cfg}: {exc}") from None
        for key in ("DATA_ROOT", "PREPARED"):  # the kernel may start elsewhere
            if params[key] is not None:
                params[key] = str(Path(params[key]).resolve())
        name = cfg.stem
        if name in names:
            raise ReproduceError(f"two configs are named {name}; their run folders would collide")
        names.add(name)
        run_dir = out / name
        params["RUN_DIR"] = str(run_dir)
        metrics_path = run_dir / "metrics.json"
        metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else None
        nb_path = run_dir / NOTEBOOK.name
        state = "done" if _is_done(metrics, params) and nb_path.is_file() else (
            "resume" if (run_dir / "config.json").is_file() else "todo")
        refusal = _refusal(run_dir, loso_config) if state != "todo" else None
        runs.append(PlannedRun(name, cfg, run_dir, nb_path, params, "refused" if refusal else state, metrics, refusal))
    return runs


def _refusal(run_dir: Path, loso_config) -> str | None:
    """Why the run folder, made with another configuration, would refuse this one (None: it fits).
    Checked before any notebook runs, so that a refused config leaves the folder untouched."""
    try:
        old = json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError) as exc:
        return f"{run_dir / 'config.json'} is unreadable ({exc}); delete {run_dir} to start over, or pass another --out."
    diffs = config_differences(old, json.loads(json.dumps(loso_config.to_dict())))
    return mismatch_message(run_dir, diffs, "another --out") if diffs else None


def _score_line(metrics: dict | None) -> str:
    if not metrics or not metrics.get("honest"):
        return "no scores"
    h = metrics["honest"]
    scope = "" if metrics.get("complete") else f" (PARTIAL: {metrics['folds_done']}/{metrics['folds_total']} subjects)"
    return f"UF1 {h['uf1']:.4f}, UAR {h['uar']:.4f}, accuracy {h['accuracy']:.4f}{scope}"


def reproduce(configs: Sequence[str | Path], out: str | Path = "runs/reproduce", data_root=None, prepared=None,
              device: str | None = None, epochs: int | None = None, dry_run: bool = False,
              log: Callable[[str], None] = print, engine: str | None = None,
              address: str | None = None, stack: int | None = None) -> list[PlannedRun]:
    """Run the job notebook for every config not yet done (see the module docstring); return the plan
    with each run's metrics. A failing notebook raises :class:`ReproduceError` naming the executed
    notebook, which holds the traceback."""
    runs = plan(configs, out, data_root, prepared, device, epochs, engine, address, stack)
    if any(r.parameters.get("ENGINE") == "ray" for r in runs):
        import_ray()  # say how to install it before any notebook runs
        for address in sorted({r.parameters.get("RAY_ADDRESS") for r in runs if r.parameters.get("ENGINE") == "ray"} - {None}):
            check_ray_address(address)  # and fail fast on a cluster that cannot be reached
    for r in runs:
        log(("plan " if dry_run else "") + r.describe())
    refused = [r for r in runs if r.refusal]
    if refused:  # before any notebook runs: a refused config changes nothing in any run folder
        raise ReproduceError("\n".join(f"{r.name} (config {r.config}): {r.refusal}" for r in refused))
    if dry_run:
        return runs
    import papermill as pm

    for r in runs:
        if r.state == "done":
            log(f"{r.name}: already done, skipped ({_score_line(r.metrics)})")
            continue
        r.run_dir.mkdir(parents=True, exist_ok=True)
        log(f"{r.name}: running {NOTEBOOK.name} -> {r.notebook}")
        # executed into a file of its own, put in place only when it ran through: a failed attempt never
        # replaces the executed notebook of a run that finished before
        running, failed = r.run_dir / f".{NOTEBOOK.stem}.running.ipynb", r.run_dir / f"{NOTEBOOK.stem}.failed.ipynb"
        try:
            pm.execute_notebook(str(NOTEBOOK), str(running), parameters=r.parameters, cwd=os.getcwd(),
                                progress_bar=False, report_mode=False)
        except pm.PapermillExecutionError as exc:
            os.replace(running, failed)
            raise ReproduceError(f"{r.name}: the notebook failed ({exc.ename}: {exc.evalue}). The executed notebook "
                                 f"with the traceback is {failed}; fix the cause and run the same command again "
                                 "(finished folds are kept).") from None
        except BaseException:
            running.unlink(missing_ok=True)   # interrupted: the record of the last finished run stays as it was
            raise
        os.replace(running, r.notebook)
        failed.unlink(missing_ok=True)
        path = r.run_dir / "metrics.json"
        r.metrics = json.loads(path.read_text()) if path.is_file() else None
        r.state = "done" if _is_done(r.metrics, r.parameters) else "stopped"
        log(f"{r.name}: {r.state}, {_score_line(r.metrics)}")
    return runs

"""The GRU-AOFE weights shipped with the package (``hmrm/flow/weights/``).

Each weight file ``NAME.pt`` has a ``NAME.json`` beside it with its sha256, the config, the step
count, the training time and the exact command that produced it. :func:`load_pretrained` checks the
hash and loads with ``torch.load(weights_only=True)`` (no pickled code runs).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ..utils import sha256_file
from .gru_aofe import GRUAOFE

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def weight_info(name: str = "gru_aofe", folder: str | Path | None = None) -> dict:
    folder = Path(folder) if folder else WEIGHTS_DIR
    meta = folder / f"{name}.json"
    if not meta.is_file():
        raise FileNotFoundError(
            f"no weights '{name}' in {folder} ({meta.name} missing). Train them with `hmrm flow train` and copy "
            f"gru_aofe.pt and gru_aofe.json from the run folder into {folder}."
        )
    return json.loads(meta.read_text())


def load_pretrained(name: str = "gru_aofe", folder: str | Path | None = None, device: str | torch.device = "cpu") -> GRUAOFE:
    """The shipped (or a given folder's) GRU-AOFE, sha256-checked, in eval mode."""
    folder = Path(folder) if folder else WEIGHTS_DIR
    info = weight_info(name, folder)
    path = folder / info["file"]
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing although {name}.json lists it; restore it from git or retrain.")
    got = sha256_file(path)
    if got != info["sha256"]:
        raise ValueError(f"{path} has sha256 {got[:12]}..., but {name}.json records {info['sha256'][:12]}...; "
                         "the file is corrupt or was replaced without its .json. Restore both together.")
    model = GRUAOFE.from_checkpoint(torch.load(path, map_location=device, weights_only=True))
    return model.to(device).eval()

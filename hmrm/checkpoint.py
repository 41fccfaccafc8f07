"""Checkpoints of a resumable training loop: the state of every stateful part (model, optimiser,
schedule, loss scaler, weight average ...) and, if asked, the random-number generators, written
atomically and read back. LOSO folds (:mod:`hmrm.train.loso.fold`) and GRU-AOFE pretraining
(:mod:`hmrm.flow.train`) both keep their checkpoints with these two functions."""
from __future__ import annotations

from pathlib import Path

from .utils import atomic_path


def save_checkpoint(path: str | Path, parts: dict, rng: bool = False, **fields) -> None:
    """Write ``{name: part.state_dict()}`` for every part (``None`` for a part that is ``None``), the
    torch and CUDA generator states under ``"rng"`` when ``rng``, and ``fields`` as they are, to
    ``path`` atomically (a reader never sees half a file)."""
    import torch

    ckpt = {name: None if part is None else part.state_dict() for name, part in parts.items()}
    if rng:
        ckpt["rng"] = {"torch": torch.get_rng_state(),
                       "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}
    ckpt.update(fields)
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)


def load_checkpoint(path: str | Path, parts: dict, device=None, optional: tuple[str, ...] = (),
                    check=None) -> dict | None:
    """Restore ``parts`` (and the generators, if the checkpoint holds them) from ``path``; the whole
    checkpoint is returned, None when there is no file. ``check(ckpt)`` runs before anything is
    restored and may raise to refuse the file. A part that is not None must be in the checkpoint,
    unless it is named in ``optional``. Errors (a truncated file, another network) propagate: the
    caller decides whether to start again or stop."""
    import torch

    path = Path(path)
    if not path.is_file():
        return None
    ckpt = torch.load(path, map_location=device, weights_only=True)
    if check is not None:
        check(ckpt)
    for name, part in parts.items():
        if part is None:
            continue
        if ckpt.get(name) is None:
            if name in optional:
                continue
            raise ValueError(f"the checkpoint has no {name!r} state")
        part.load_state_dict(ckpt[name])
    if ckpt.get("rng"):
        torch.set_rng_state(ckpt["rng"]["torch"].cpu())
        if ckpt["rng"]["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in ckpt["rng"]["cuda"]])
    return ckpt

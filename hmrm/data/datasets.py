"""One entry point for every data set: ``load_dataset(name, root)``, and ``training_samples``, the loader
that ``hmrm loso``, ``hmrm reproduce`` and the LOSO chapter share (SynthME, or a licensed set with the
crops and apex estimates of ``hmrm prepare``).

=========  =======================================  ===============  ======================
name       root holds                               default scheme   other schemes
=========  =======================================  ===============  ======================
synthme    annotations.csv, frames/ (hmrm synthme)  composite3       casme2_5
casme2     CASME2-coding-*.xlsx, CASME2_RAW_selected casme2_5        composite3
samm       SAMM_Micro_FACS_Codes_v2.xlsx, SAMM/     samm5            composite3
smic       HS/s1/micro/<class>/...                  smic3            composite3
composite  casme2/, samm/, smic/ (one root each)    composite3       (fixed by the protocol)
=========  =======================================  ===============  ======================
"""
from __future__ import annotations

from pathlib import Path

from .apex import ApexCache
from .casme2 import load_casme2
from .composite import load_composite
from .records import DataError, SampleSet
from .samm import load_samm
from .smic import load_smic
from .synthme import load_synthme, tiny_synthme

DEFAULT_SCHEME = {"synthme": "composite3", "casme2": "casme2_5", "samm": "samm5", "smic": "smic3", "composite": "composite3"}
DATASET_NAMES = tuple(DEFAULT_SCHEME)
#: how tables name each data set
DISPLAY_NAMES = {"casme2": "CASME II", "samm": "SAMM", "smic": "SMIC-HS", "composite": "Composite", "synthme": "SynthME"}
#: where each licensed set is requested (the owners' pages; a signed licence agreement is needed)
WHERE_TO_REQUEST = {
    "casme2": "CASME II: Institute of Psychology, Chinese Academy of Sciences (Fu Xiaolan's group), http://casme.psych.ac.cn/casme/e2",
    "samm": "SAMM: Manchester Metropolitan University (Moi Hoon Yap's group), http://www2.docm.mmu.ac.uk/STAFF/M.Yap/dataset.php",
    "smic": "SMIC: University of Oulu, Center for Machine Vision and Signal Analysis (Guoying Zhao's group); request it from the SMIC page of the University of Oulu",
}


LICENSED = ("casme2", "samm", "smic", "composite")


class MissingDataError(DataError):
    """A licensed data set was asked for without its folder or without the output of ``hmrm prepare``."""


def where_to_request(dataset: str) -> str:
    """Where a licensed data set is requested (the composite: its three parts)."""
    if dataset == "composite":
        return "; ".join(WHERE_TO_REQUEST[k] for k in ("casme2", "samm", "smic"))
    return WHERE_TO_REQUEST.get(dataset, "")


def check_licensed(dataset: str, data_root, prepared, root_option: str = "--data-root",
                   prepared_option: str = "--prepared") -> None:
    """A licensed data set needs its folder as distributed and the aligned crops of ``hmrm prepare``;
    without either, :class:`MissingDataError` says where to get it (``*_option``: how the caller sets
    each, for the message)."""
    dataset = dataset.lower()
    if dataset not in LICENSED:
        return
    if data_root is None:
        raise MissingDataError(
            f"{dataset} is a licensed data set and needs its folder as distributed ({root_option}). It cannot be "
            f"shipped; it is requested from {where_to_request(dataset)} (README, 'The licensed data sets').")
    if prepared is None:
        import shlex

        command = shlex.join(["hmrm", "prepare", "--dataset", dataset, "--root", str(data_root), "--out", "data/prepared"])
        raise MissingDataError(f"{dataset} needs the aligned crops of `{command}` ({prepared_option}).")


def training_samples(dataset: str = "synthme", data_root=None, prepared=None, scheme: str | None = None,
                     lenient: bool = False, seed: int = 0, subjects: int | None = None,
                     root_option: str = "--data-root", prepared_option: str = "--prepared") -> SampleSet:
    """The samples a LOSO run trains on: SynthME from ``data_root`` (None: the tiny build in the cache,
    made with ``seed``, of the first ``subjects`` bank subjects), or a licensed set read from ``data_root`` with the apex estimates that
    ``hmrm prepare`` saved in ``prepared`` (both required: :func:`check_licensed`)."""
    dataset = dataset.lower()
    if dataset == "synthme" and data_root is None:
        size = {} if subjects is None else {"subjects": subjects}
        return tiny_synthme(seed=seed, scheme=scheme or DEFAULT_SCHEME["synthme"], **size)
    check_licensed(dataset, data_root, prepared, root_option, prepared_option)
    kwargs = {}
    if dataset in LICENSED:
        kwargs["apex_cache"] = ApexCache(Path(prepared) / "apex_estimates.json")  # the estimates prepare made
    return load_dataset(dataset, data_root, scheme=scheme, lenient=lenient, **kwargs)


def _sub_root(root: Path, name: str) -> Path:
    for p in root.iterdir() if root.is_dir() else ():
        if p.is_dir() and p.name.lower().replace("-", "").replace("_", "") in {name, {"casme2": "casmeii"}.get(name, name)}:
            return p
    raise DataError(
        f"composite: no {name} folder in {root}. Put (or link) the three data sets as {root}/casme2, {root}/samm and "
        f"{root}/smic, or pass --casme2-root / --samm-root / --smic-root."
    )


def load_dataset(name: str, root: str | Path, scheme: str | None = None, **kwargs) -> SampleSet:
    """Samples of data set ``name`` under ``root``, labelled under ``scheme`` (its default if None).

    Extra keyword arguments go to the parser (``frames="cropped"`` for CASME II, ``apex_cache``,
    ``casme2_root=`` ... for the composite set; ``lenient=True``: skip rows that cannot be read as
    written, such as an unknown emotion, with a warning, instead of stopping)."""
    name = name.lower()
    if name not in DEFAULT_SCHEME:
        raise ValueError(f"unknown data set {name!r}; choose one of {', '.join(DATASET_NAMES)}")
    scheme = scheme or DEFAULT_SCHEME[name]
    root = Path(root)
    if name == "synthme":
        return load_synthme(root, scheme=scheme, lenient=kwargs.get("lenient", False))
    if name == "casme2":
        return load_casme2(root, scheme=scheme, **kwargs)
    if name == "samm":
        return load_samm(root, scheme=scheme, **kwargs)
    if name == "smic":
        return load_smic(root, scheme=scheme, **kwargs)

    if scheme != "composite3":
        raise ValueError("the composite set has one scheme, composite3 (its labels come from the MEGC2019 list)")
    roots = {k: kwargs.pop(f"{k}_root", None) for k in ("casme2", "samm", "smic")}
    roots = {k: Path(v) if v else _sub_root(root, k) for k, v in roots.items()}
    kwargs.pop("lenient", None)  # the composite list labels the clips, not the sheets' emotion cells
    return load_composite(roots["casme2"], roots["samm"], roots["smic"], **kwargs)

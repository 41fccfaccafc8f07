"""What drove a decision: per-clip region maps of a trained LOSO run, checked against the true
action units of SynthME.

HMRM's paper gives no explanation of its predictions. Two readings of a trained fold are cheap:

* **RFFS attention.** RFFS fuses one token per facial region (right eye, left eye, nose, mouth) and
  a global token per grain by self-attention (:mod:`hmrm.model.rffs`). The attention a region's
  tokens *receive*, averaged over heads and queries and summed over grains, says how much the
  fused feature draws on that region.
* **Gradient saliency.** ``|x * d logit / d x|`` of the predicted class, summed over the flow
  channels (gradient times input), is a map over the flow image; its mean inside each region box
  ranks the regions.

**Checked against the truth.** A real data set cannot say whether a map is right. SynthME can: a
clip is rendered from known action units, and :func:`hmrm.data.au.au_displacement` says which
landmarks each of them moves. A region *moved* when one of those landmarks (moved by at least a
quarter of the largest landmark displacement) lies inside its box. A map is *on target* for a clip
when its top region is one that moved. By chance (a region drawn at random) that happens with
probability ``moved regions / 4`` for that clip; the hit rate is compared with that, with a
bootstrap interval over held-out subjects.

Every clip is explained by the fold that held its subject out (its final weights, as scored), so
nothing here was fitted on the clip it explains.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .data.au import au_displacement, parse_aus
from .data.records import DataError
from .face.regions import REGION_NAMES, region_boxes
from .features import load_aligned_pair
from .markdown import format_interval, markdown_table
from .train.loso import LOSOConfig, build_fold_model, loso_splits
from .train.loso.fold_parts import input_scale
from .train.loso.run_folder import load_final_weights
from .train.stats import CONFIDENCE, subject_interval
from .viz.plots import plot_explanations

#: A landmark counts as moved when it moves by at least this share of the clip's largest landmark move.
MOVED_SHARE = 0.25


def moved_regions(aus: str, landmarks: np.ndarray, size: int, share: float = MOVED_SHARE) -> list[str]:
    """The regions of :data:`REGION_NAMES` whose box holds a landmark that the action units ``aus``
    (SynthME's code, e.g. ``"1+2+R12"``) move; ``landmarks`` (68, 2) in an image of side ``size``."""
    d = np.zeros((68, 2))
    for au, side in parse_aus(aus):
        d += au_displacement(au, 0.0 if side == "L" else 1.0, 0.0 if side == "R" else 1.0)
    norm = np.linalg.norm(d, axis=1)
    if norm.max() <= 0:
        return []
    lm = np.asarray(landmarks, dtype=np.float64)[norm >= share * norm.max()]
    out = []
    for name, (x0, y0, x1, y1) in region_boxes(landmarks, size).items():
        if ((lm[:, 0] >= x0) & (lm[:, 0] < x1) & (lm[:, 1] >= y0) & (lm[:, 1] < y1)).any():
            out.append(name)
    return out


def region_attention(attention, token_names: Sequence[str], regions: Sequence[str] = REGION_NAMES) -> np.ndarray:
    """(N, R): the RFFS attention each region's tokens receive (mean over heads and queries, summed
    over grains); ``attention`` (N, heads, T, T) as :class:`hmrm.model.rffs.RFFS` returns it."""
    a = np.asarray(attention, dtype=np.float64).mean(axis=(1, 2))  # (N, T): received
    slot = [n.split("/", 1)[1] for n in token_names]
    return np.stack([a[:, [i for i, s in enumerate(slot) if s == r]].sum(1) for r in regions], 1)


def region_means(maps: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(N, R): the mean of each (H, W) map inside each of its boxes ``(x0, y0, x1, y1)``."""
    out = np.zeros(boxes.shape[:2])
    for i, (m, bs) in enumerate(zip(maps, boxes)):
        for r, (x0, y0, x1, y1) in enumerate(bs):
            patch = m[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)]
            out[i, r] = float(patch.mean()) if patch.size else 0.0
    return out


def explain_batch(model, x, boxes) -> dict[str, np.ndarray]:
    """Predicted class, probabilities, saliency maps (N, H, W) and per-region attention (N, R, or None
    without RFFS) of ``model`` on flow inputs ``x`` (N, C, H, W, already scaled as the fold scales them)."""
    import torch

    model.eval()
    x = torch.as_tensor(x).clone().requires_grad_(True)
    b = torch.as_tensor(boxes)
    out = model(x, b)
    logits = out["logits"]
    pred = logits.argmax(1)
    logits.gather(1, pred[:, None]).sum().backward()
    sal = (x.grad * x).abs().sum(1).detach().numpy()
    att = out.get("attention")
    rffs = getattr(model, "rffs", None)
    region_att = region_attention(att.detach().numpy(), rffs.token_names) if att is not None and rffs is not None else None
    return {"pred": pred.numpy(), "probs": torch.softmax(logits, 1).detach().numpy(), "saliency": sal,
            "attention": region_att}


@dataclass
class Explanations:
    """Per held-out clip: key, subject, true AUs, moved regions, region scores of both maps, the
    saliency map; :meth:`summary` scores them against chance."""
    keys: list[str]
    groups: list[str]
    aus: list[str]
    moved: list[list[str]]
    saliency_regions: np.ndarray   # (N, R)
    attention_regions: np.ndarray | None
    saliency: np.ndarray           # (N, H, W)
    boxes: np.ndarray              # (N, R, 4)
    pred: np.ndarray
    truth: np.ndarray

    def hits(self, which: str) -> np.ndarray:
        scores = self.saliency_regions if which == "saliency" else self.attention_regions
        top = scores.argmax(1)
        return np.array([REGION_NAMES[t] in m for t, m in zip(top, self.moved)], dtype=np.float64)

    def summary(self, n_resamples: int = 10_000, seed: int = 0) -> dict:
        """Hit rate of each map, chance, and the paired difference hit - chance with its 95 % interval
        over held-out subjects (clips with no moved region are left out)."""
        keep = np.array([len(m) > 0 for m in self.moved])
        g = np.asarray(self.groups, dtype=object)[keep]
        subjects = sorted(set(g.tolist()))
        chance = np.array([len(m) / len(REGION_NAMES) for m in self.moved])[keep]
        out: dict = {"clips": int(keep.sum()), "n_subjects": len(subjects), "chance": float(chance.mean()),
                     "what": "share of held-out clips whose top region is one the true action units moved"}
        maps = ["saliency"] + (["attention"] if self.attention_regions is not None else [])
        for which in maps:
            h = self.hits(which)[keep]
            per = np.array([[h[g == s].sum(), chance[g == s].sum(), (g == s).sum()] for s in subjects])

            def stat(i, axis=-1, col=0):
                p = per[np.moveaxis(i, axis, -1)].sum(-2)
                return (p[..., 0] - col * p[..., 1]) / p[..., 2]

            out[which] = {"hit_rate": float(h.mean()), "hit_interval": subject_interval(stat, len(subjects), seed, n_resamples,
                                                                                 CONFIDENCE),
                          "minus_chance": float(h.mean() - chance.mean()),
                          "minus_chance_interval": subject_interval(lambda i, axis=-1: stat(i, axis, 1), len(subjects), seed,
                                                             n_resamples, CONFIDENCE),
                          "top_region_counts": {r: int(c) for r, c in zip(REGION_NAMES, np.bincount(
                              (self.saliency_regions if which == "saliency" else self.attention_regions)[keep].argmax(1),
                              minlength=len(REGION_NAMES)))}}
        return out


def _fold_model(run_dir: Path, subject: str, config, data, train_idx):
    """The final weights of one fold of a run, and the input scale it used (from its training clips)."""
    model = build_fold_model(config, len(data.classes), data.x.shape[1])
    load_final_weights(run_dir, subject, model)
    return model, input_scale(data.x[train_idx])


def explain_run(run_dir, data, samples, progress: bool = True) -> Explanations:
    """Explain every held-out clip of a finished LOSO run folder with the fold that held it out.

    ``data`` is the run's :class:`~hmrm.train.loso.LOSOData` (refused when its fingerprint is not the
    run's), ``samples`` the SynthME samples it was built from (their action units and landmarks)."""
    import torch
    from tqdm.auto import tqdm

    run_dir = Path(run_dir)
    record = json.loads((run_dir / "config.json").read_text())
    if record["data"]["fingerprint"] != data.fingerprint():
        raise DataError(f"{run_dir / 'config.json'} was trained on other inputs than the ones given (fingerprints "
                        "differ): build them with the run's data set, flow method and input size")
    config = LOSOConfig(**{k: v for k, v in record["config"].items() if k in LOSOConfig.__dataclass_fields__})
    by_key = {s.key: s for s in samples}
    parts = []
    for subject, tr, te in tqdm(loso_splits(data.groups), desc="explaining folds", disable=not progress):
        model, scale = _fold_model(run_dir, subject, config, data, tr)
        x = data.x[te] / scale[None, :, None, None]
        r = explain_batch(model, torch.from_numpy(x), torch.from_numpy(data.boxes[te]))
        r["sal_regions"] = region_means(r["saliency"], data.boxes[te])
        r["idx"] = te
        parts.append(r)
    idx = np.concatenate([p["idx"] for p in parts])
    keys = [data.keys[i] for i in idx]
    moved, aus = [], []
    for k in keys:
        pair = load_aligned_pair(by_key[k])
        aus.append(by_key[k].aus)
        moved.append(moved_regions(by_key[k].aus, pair.landmarks, pair.onset.shape[0]))
    att = None if parts[0]["attention"] is None else np.concatenate([p["attention"] for p in parts])
    return Explanations(keys, [data.groups[i] for i in idx], aus, moved,
                        np.concatenate([p["sal_regions"] for p in parts]), att,
                        np.concatenate([p["saliency"] for p in parts]), data.boxes[idx],
                        np.concatenate([p["pred"] for p in parts]), data.labels[idx])


def explanation_table(summaries: dict[str, dict]) -> str:
    """Markdown: per run and map, the hit rate, chance and the difference with their intervals."""
    rows = []
    for name, s in summaries.items():
        for which in ("attention", "saliency"):
            if which in s:
                m = s[which]
                rows.append([name, "RFFS attention" if which == "attention" else "gradient x input",
                             format_interval(m["hit_rate"], m["hit_interval"]), f"{s['chance']:.4f}",
                             format_interval(m["minus_chance"], m["minus_chance_interval"], signed=True),
                             str(s["clips"])])
    return markdown_table(["run", "map", "top region moved [95%]", "chance", "difference [95%, over subjects]",
                           "clips"], rows)


def explain_figure(expl: Explanations, samples, classes: Sequence[str], n: int = 4, out=None):
    """:func:`hmrm.viz.plots.plot_explanations` of ``n`` clips, the first of each subject in turn
    (a fixed choice, not one picked by how good its map looks)."""
    by_key = {s.key: s for s in samples}
    first: dict[str, int] = {}
    for i, g in enumerate(expl.groups):
        first.setdefault(g, i)
    rows = list(first.values())[:n]
    faces = [load_aligned_pair(by_key[expl.keys[i]]).onset for i in rows]
    return plot_explanations(faces, expl, rows, classes, out)

"""The paper apart from us: for each part of HMRM, what the paper says, what this course chose, why,
and what the choice measured.

``docs/paper.md`` is the record of what HMRM specifies; everything it leaves open, and a few things
it specifies that we do differently, is a choice of ours. Each chapter that builds a part shows its
box::

    from hmrm.choices import choices_markdown
    display(Markdown(choices_markdown("gru_aofe")))

A choice's measured effect is read from the committed results files when it is shown (their JSON
twins, :mod:`hmrm.resultfiles`), never typed in, so the box says what the tables say today; an
effect that no table measures says so. ``tests/test_choices.py`` renders every box from the
committed files.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

from .demo import DEMO_INPUT_SIZE, DEMO_RECIPES
from .markdown import markdown_table
from .resultfiles import REPO, Interval, read_results
from .train.loso.config import LOSOConfig

SILENT = "silent"
_H, _S = DEMO_RECIPES["hmrm"], DEMO_RECIPES["ststnet"]


@dataclass(frozen=True)
class Choice:
    """One line of a box: the ``topic``, what the ``paper`` says (:data:`SILENT` when it says
    nothing), what we chose (``ours``), ``why``, and a function that reads the measured effect
    from the results files (None: not measured)."""

    topic: str
    paper: str
    ours: str
    why: str
    measured: Callable[[], str] | None = None


def _default_batch_size() -> int:
    from dataclasses import fields

    return next(f.default for f in fields(LOSOConfig) if f.name == "batch_size")


# ----------------------------------------------------------------------------- readings
def _table(file: str, first: str, caption: str | None = None):
    return read_results(file).table(first, caption)


FLOW_BENCH = "benchmarks/results/flow_parts/seed0"  # benchmarks/flow_bench.py on the demo's SynthME (make figures)


def _flow(method: str, column: str = "face EPE mean") -> float:
    """A method's face EPE in the committed flow benchmark (the estimate, where the cell is an interval)."""
    value = _table(FLOW_BENCH, "method").value(method, column)
    return value.value if isinstance(value, Interval) else value


def _ablation(name: str) -> str:
    t = _table("figures/demo_ablations", "data set")
    row = t.find(name, "ablation")
    delta, interval = t.value(row, "ΔUF1 vs full"), t.value(row, "ΔUF1 95% interval (paired)")
    return (f"ΔUF1 {delta:+.4f} [{interval.low:+.2f}, {interval.high:+.2f}] against the full demo network, paired "
            f"over subjects: {_words(interval)} (`figures/demo_ablations.md`)")


def _words(interval: Interval) -> str:
    return "inside the noise" if interval.direction is None else f"supported by the data ({interval.direction})"


def _demo_difference(file: str, starts: str) -> Interval:
    return _table(file, "difference (paired: the same subjects resampled for both rows)").value(starts, "ΔUF1")


def _choice_effect(variant: str) -> str:
    path = REPO / "benchmarks" / "results" / "choice_effects.json"
    if not path.is_file():
        return "not measured yet (`benchmarks/choice_effects.py`)"
    t = _table("benchmarks/results/choice_effects", "data")
    parts = []
    for data in sorted({r[0] for r in t.cells}):
        try:
            d = t.value(t.where(data=data, variant=variant), "ΔUF1")
        except KeyError:
            continue
        parts.append(f"{data}: ΔUF1 {d.value:+.4f} [{d.low:+.2f}, {d.high:+.2f}], {_words(d)}")
    return "; ".join(parts) + " (paired over subjects; `benchmarks/results/choice_effects.md`)"


def _search(network: str, trial: int, column: str = "score") -> float:
    t = _table("benchmarks/results/recipe_search", "rank", caption=f"**{network}**")
    return t.value(t.where(trial=trial), column)


def _best_linear_patch_trial() -> tuple[float, int]:
    t = _table("benchmarks/results/recipe_search", "rank", caption="**hmrm**")
    scores = [(r["score"], r["trial"]) for r in t.rows() if "stem=patch" in r["settings"]]
    return max(scores)


def _weights() -> dict:
    return json.loads((REPO / "hmrm" / "flow" / "weights" / "gru_aofe.json").read_text())


def _part(label: str, seed: int = 0) -> tuple[Interval, str]:
    """A paired difference of face EPE from the committed flow-parts benchmark of SynthME ``seed``, with
    the table's own verdict (computed there from the unrounded interval)."""
    t = _table(f"benchmarks/results/flow_parts/seed{seed}", "difference")
    return t.value(label, "EPE (px)"), t.value(label, "verdict")


def _px(d: Interval) -> str:
    return f"{d.value:+.4f} [{d.low:+.4f}, {d.high:+.4f}] px"


def _part_words(d: Interval, verdict: str) -> str:
    if "supported" not in verdict:
        return "inside the noise"
    return "supported by the data: " + ("worse" if d.value > 0 else "better")


def _measured_parts(label: str, what: str) -> str:
    (a, va), (b, vb) = _part(label, 0), _part(label, 2)
    return (f"{what + ': ' if what else ''}face EPE {_px(a)} on the demo's SynthME ({_part_words(a, va)}) and {_px(b)} on seed 2 "
            f"({_part_words(b, vb)}), paired over subjects (`benchmarks/results/flow_parts/seed0.md`, `seed2.md`)")


def _measured_attention() -> str:
    t = read_results("benchmarks/results/flow_overfit")
    ends = {}
    for form in ("dot", "cosine"):
        rows = list(t.table("step", caption=f"**{form} attention, from warm start**").rows())
        ends[form] = rows[-1]["entropy / log(HW)"]
    return (f"fitting 8 generated pairs, GMA's form ends with rows at {ends['dot']:.3f} log(HW) (uniform), the cosine "
            f"form at {ends['cosine']:.3f} (`benchmarks/results/flow_overfit.md`); in the shipped weights "
            + _measured_parts("with attention minus without (refinement off)", "with attention minus without"))


def _measured_refinement() -> str:
    t = _table(FLOW_BENCH, "subject")
    better = sum(1 for r in t.rows() if r["gru_aofe"] < r["dis_tuned"])
    gru, full, dis = _flow("GRU-AOFE without its refinement"), _flow("GRU-AOFE (shipped"), _flow("dis_tuned")
    noise = _table("figures/flow_error_sources", "build")
    return (f"face EPE {gru} px without it, {full} px with it (tuned DIS {dis} px): "
            + _measured_parts("full GRU-AOFE minus the GRU alone (the refinement stage after it)", "with minus without")
            + f"; GRU-AOFE better than tuned DIS on {better} of {len(t)} subjects (`{FLOW_BENCH}.md`). Why drift: tuned DIS "
            f"scores {noise.value('as shipped', 'tuned DIS')} px on three subjects as built, "
            f"{noise.value('no sensor noise', 'tuned DIS')} px without sensor noise (`figures/flow_error_sources.md`)")


def _measured_pretraining() -> str:
    w = _weights()
    first = w["first_stage"]
    return (f"the shipped weights: the GRU {first['steps']} steps in {first['train_seconds'] / 60:.0f} min, then the "
            f"refinement stage {w['steps']} steps in {w['train_seconds'] / 60:.0f} min on {w['device']} "
            "(`hmrm/flow/weights/gru_aofe.json`); what FlyingChairs pretraining would give is not measured here")


def _measured_scales() -> str:
    t = _table("benchmarks/results/flow_scales", "delta:flow scale:max warm error")
    last, steps = {}, 0
    for k in range(len(t)):  # the last row of each variant
        last[t.cell(k, 0)], steps = t.cell(k, "best iteration"), t.value(k, "step")
    return (f"the GRU trained {steps} steps from tuned DIS, its best iteration against DIS on a development SynthME: "
            f"RAFT's scales {last['1:1:0.5']}, the update's scale alone {last['0.02:1:0.5']}, both scales with the "
            f"loss on every pixel {last['0.02:40:0']}, all three {last['0.02:40:0.5']} "
            "(`benchmarks/results/flow_scales.md`); in the shipped weights the GRU minus DIS is "
            + _measured_parts("GRU-AOFE without refinement minus tuned DIS", ""))


def _measured_flow_lever() -> str:
    a = _demo_difference("figures/demo_results", "HMRM on ground-truth flow")
    b = _demo_difference("benchmarks/results/holdout_seed2/demo_results", "HMRM on ground-truth flow")
    return (f"exact flow instead of GRU-AOFE lifts the demo's HMRM by ΔUF1 {a.signed} on seed 0 ({_words(a)}; "
            f"`figures/demo_results.md`) and {b.signed} on seed 2 ({_words(b)}; "
            "`benchmarks/results/holdout_seed2/demo_results.md`)")


def _measured_stem() -> str:
    best, trial = _best_linear_patch_trial()
    return (f"linear patches instead of the stem: {_choice_effect('linear patches')}. In the recipe search (development seed 1, unpaired): the best "
            f"linear-patch setting scored {best:.4f} UF1 (trial {trial}), the winner with the stem "
            f"{_search('hmrm', 15):.4f} (`benchmarks/results/recipe_search.md`)")


def _measured_motionmix() -> str:
    best = _table("benchmarks/results/recipe_search", "rank", caption="**hmrm**")
    top = best.value(0, "settings")
    return (f"MotionMix p 0.5 instead of none: {_choice_effect('MotionMix p 0.5')}. The recipe search never varied "
            f"MotionMix alone: its best HMRM "
            f"trial ({best.value(0, 'score'):.4f}, over the time budget) used {top.split('motionmix_p=')[1].split(',')[0]}, "
            "the winner 0.0 (`benchmarks/results/recipe_search.md`)")


def _measured_recipe() -> str:
    return (f"on the development SynthME (seed 1) the first demo's settings (the paper's rate, constant, 40 epochs, "
            f"linear patches) scored {_search('hmrm', 0):.4f} UF1, the chosen recipe {_search('hmrm', 15):.4f} "
            "(`benchmarks/results/recipe_search.md`; one run each, unpaired)")


def _measured_epochs() -> str:
    t = _table("benchmarks/results/convergence", "network")
    one = t.value(t.where(network="HMRM", flow="GRU-AOFE", epochs="40"), "UF1")
    four = t.value(t.where(network="HMRM", flow="GRU-AOFE", epochs="160"), "UF1")
    return (f"on the development SynthME, 160 epochs instead of 40: UF1 {four} against {one}; the intervals overlap "
            "and no paired interval was measured, so longer training is not shown to help "
            "(`benchmarks/results/convergence.md`)")


def _measured_backends() -> str:
    t = _table("figures/scan_bench", "L")
    fused = t.value(t.where(L="196", backend="fused"), "forward+backward (ms)")
    par = t.value(t.where(L="196", backend="parallel"), "forward+backward (ms)")
    return (f"the same numbers (tested to float32 rounding) at different speeds: forward+backward at L 196 takes "
            f"{par} ms `parallel`, {fused} ms `fused` on the 2-core CPU (`figures/scan_bench.md`)")


# ----------------------------------------------------------------------------- the boxes
PARTS: dict[str, tuple[Choice, ...]] = {
    "faces": (
        Choice("face detector and landmarks", "MTCNN finds the face, dlib's 68 landmarks align it",
               "the same: MTCNN (facenet-pytorch), dlib's 68-point model", "the paper's own choice"),
        Choice("alignment", SILENT, "a similarity transform from the eye centres and the nose tip to a 256 px face",
               "a fixed face size lets every clip share one pixel scale, so a displacement means the same on "
               "every face"),
        Choice("regions", "eye and mouth regions located from landmarks (MotionMix); coarse and fine region "
               "features (RFFS)", "four boxes from the onset landmarks: right eye with brow, left eye with brow, "
               "nose, mouth", "the boxes MotionMix and RFFS share"),
        Choice("data", "CASME II, SAMM, SMIC-HS, the MEGC2019 composite", "SynthME, rendered from real photos "
               "with exact motion, read by the same loading code; the licensed sets through `hmrm prepare`",
               "no micro-expression set can be downloaded without a licence"),
    ),
    "gru_aofe": (
        Choice("pretraining data", "FlyingChairs and FlyingThings", "pairs generated on the fly: face-domain pairs "
               "(`hmrm.flow.facepairs`: face-bank photos and non-face textures under local deformations peaking at up "
               "to 4 px, head motion and a camera) for the GRU, its last 300 steps weighing an error most where tuned "
               "DIS is already right; textured layers under affine motion (`hmrm.flow.synthetic`) for the refinement "
               "stage, trained second on the frozen GRU",
               "fits a CPU, needs no download, and never uses SynthME's motion, clips or seeds; with peaks up to 1.5 px "
               "the GRU learned that skin never moves far and shortened the larger motions DIS had right (chapter 03, "
               "section 5)", _measured_pretraining),
        Choice("warm start", SILENT, "the GRU starts from tuned DIS, not from zero flow", "so that the network "
               "only has to learn what DIS gets wrong, within a CPU-sized pretraining",
               lambda: _measured_parts("GRU-AOFE without refinement minus tuned DIS", "the GRU (refinement off) minus "
                                       "its warm start")),
        Choice("attention", "attention guides the GRU's updates", "one attention matrix over context features per "
               "pair mixes the motion features: normalised queries and keys, a learned temperature starting at 10 and "
               "a gain starting at 1",
               "GMA's is the closest published design, but its form (dot product, gain starting at 0) gets almost no "
               "gradient to start from, so it stays uniform (chapter 03, section 4)", _measured_attention),
        Choice("scales of the GRU", SILENT, "the update times 0.02 and the flow into the motion encoder times 40; the "
               "GRU's loss only where tuned DIS is within 0.5 px (`hmrm.flow.gru_aofe`)", "RAFT's scales are made for "
               "motions of pixels: a warm-started face flow needs corrections of hundredths, which they drown "
               "(chapter 03, section 5)", _measured_scales),
        Choice("refinement stage", SILENT, "a full-resolution learned smoothing after the GRU "
               "(`hmrm.flow.refine`), trained after it", "what is left of DIS's error on a face is drift over flat "
               "skin, which averaging removes; trained together with the GRU on face-domain pairs it made the flow "
               "worse (chapter 03, section 5)", _measured_refinement),
        Choice("sizes", SILENT, "stride-4 features, a 3-level correlation pyramid of radius 3, 2 GRU iterations",
               "sized for 256 px faces on a CPU"),
        Choice("does flow matter for recognition?", "GRU-AOFE is meant to suppress noise in the flow", "-",
               "the demo's oracle row trains HMRM on the exact flow", _measured_flow_lever),
    ),
    "motionmix": (
        Choice("what is mixed", "eye and mouth regions of two flow maps of the same class", "the right-eye, left-eye "
               "(each with its brow) and mouth boxes, all three from one partner, hard-pasted",
               "the paper's words, with the simplest reading of 'patch mixing'"),
        Choice("how often", SILENT, "the library's default: half of the training clips (`p=0.5`); the demo's "
               "recipe mixes none", "the recipe search on the development set chose no MotionMix for both networks",
               _measured_motionmix),
        Choice("where", "an augmentation (\"hybrid motion feature augmentation\")", "training folds only; the held-out subject is never mixed and never lends its "
               "motion", "anything else would leak the test subject into training"),
    ),
    "selective_scan": (
        Choice("the scan", "Mamba's selective state-space scan", "one function with the semantics of mamba-ssm's "
               "reference scan and several backends (sequential, parallel, fused, Triton, the mamba-ssm kernel)",
               "the CUDA kernel cannot run on a CPU; every backend gives the same numbers", _measured_backends),
    ),
    "mamba_block": (
        Choice("bidirectional block", "a bidirectional Mamba module with convolutional gating", "a forward and a "
               "backward scan, each with its own convolution, projections, A and D; shared input and output "
               "projections; the gate through a depthwise convolution", "our reading of 'convolutional gating'",
               lambda: _ablation("unidirectional").replace("against", "for the forward scan alone, against")),
    ),
    "encoder_rffs": (
        Choice("width and depth", "width 192, depth 4", "the paper's for `hmrm reproduce`; the demo trains width "
               f"{_H['d_model']}, depth {_H['depth']}", "the paper's network needs a GPU; the demo must finish in minutes on a CPU"),
        Choice("input channels", "optical-flow maps", "three channels: horizontal and vertical "
               "motion u, v, and optical strain (the local deformation; chapter 04)", "strain lights up where skin "
               "deforms and ignores a head that moves as a whole; STSTNet reads the same three"),
        Choice("input size", SILENT, f"112 px (paper configs), {DEMO_INPUT_SIZE} px (the demo)", "112 is divisible "
               f"by both grains; {DEMO_INPUT_SIZE} fits the CPU budget"),
        Choice("grains", "more than one patch size", "8 and 16 px patches at 112 px (14 x 14 and 7 x 7 grids)",
               "chosen by `benchmarks/encoder_grains.py` (the encoder's docstring)",
               lambda: _ablation("single_grain")),
        Choice("patch embedding", "the flow maps are split into patches", "one linear map per patch (the paper "
               "configs) or a small convolutional stem first (the demo)", "a linear map per patch ignores which pixels "
               "are neighbours; a stem first computes local motion features over 3 x 3 neighbourhoods",
               _measured_stem),
        Choice("region fusion (RFFS)", "coarse and fine region features fused by multi-head self-attention",
               "a region token is the mean of the patch tokens overlapping its box; four regions and a global "
               "token per grain; one pre-norm attention layer", "region boxes of any size always get a token",
               lambda: _ablation("no_rffs")),
        Choice("loss", "a cross-entropy weighted over scales", "the fused head (weight 1) plus one head per grain "
               "(0.5 each), class weights from the training fold", "the paper's words; class weights for the "
               "imbalanced classes", lambda: _ablation("plain_ce")),
    ),
    "training": (
        Choice("optimiser and rate", "AdamW, learning rate 0.0005", f"AdamW; the demo's HMRM at a peak rate of "
               f"{_H['lr']:g} with a {_H['schedule']} schedule", "chosen by the recipe search on the development SynthME (seed 1), with the "
               "same number of tries for STSTNet", _measured_recipe),
        Choice("epochs", "1000", f"{_H['epochs']} (the demo's HMRM), {_S['epochs']} (STSTNet); the paper configs "
               "keep 1000", "the CPU budget of `make demo`", _measured_epochs),
        Choice("batch size", SILENT, str(_default_batch_size()), "the harness's default; not tuned"),
        Choice("weight decay, label smoothing", SILENT, f"{_H['weight_decay']:g} and {_H['label_smoothing']:g} for the "
               "demo's HMRM", "chosen by the recipe search"),
        Choice("weight averaging", SILENT, f"an exponential moving average of the weights ({_H['ema']:g} per step) "
               "predicts",
               "chosen by the recipe search; smooths the last steps, the only ones scored"),
        Choice("MotionMix", "part of HMRM's motion feature augmentation", f"p {_H['motionmix_p']:g} in the demo's recipe" if _H["motionmix_p"]
               else "none in the demo's recipe", "chosen by the recipe search",
               _measured_motionmix),
        Choice("evaluation", "leave-one-subject-out, UF1 and UAR", "the same, pooled over folds (MEGC), the final "
               "epoch of fixed training, with intervals from a bootstrap over subjects", "nothing may be chosen on "
               "the test subject"),
    ),
}


def choices(part: str) -> tuple[Choice, ...]:
    if part not in PARTS:
        raise KeyError(f"unknown part {part!r}; choose one of {', '.join(PARTS)}")
    return PARTS[part]


def measured(choice: Choice) -> str:
    """The measured effect of a choice, read now from the committed results files."""
    return "not measured" if choice.measured is None else choice.measured()


def choices_markdown(part: str) -> str:
    """The "paper says / this course chose" box of one part, as a markdown table."""
    rows = [[f"**{c.topic}**", "*silent*" if c.paper == SILENT else c.paper, c.ours, c.why, measured(c)]
            for c in choices(part)]
    return markdown_table(["", "the paper says", "this course chose", "why", "measured"], rows)

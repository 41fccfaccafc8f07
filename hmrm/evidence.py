"""The evidence that ships: every paired comparison of the committed results, with its verdict.

Chapter 09 shows it on a fresh clone, with no training: the demo's paired differences on the demo's
SynthME (seed 0) and on the hold-out SynthME (seed 2), the ablations of the demo's HMRM, and our own
choices undone (``benchmarks/choice_effects.py``), all read from the committed JSON twins
(:mod:`hmrm.resultfiles`). Each comparison gets the verdict of the interval rule: a difference whose
paired 95 % interval excludes 0 is supported by the data; one whose interval contains 0 is inside the
noise, whatever its size.

What would decide a comparison inside the noise: more subjects. A bootstrap interval over subjects
narrows roughly as one over the square root of their number, so a difference ``d`` whose interval has
half-width ``h`` with ``n`` subjects would need about ``n (h / d)^2`` subjects like these to be resolved,
if it stayed the size it is (:func:`subjects_to_resolve`). That is a rough extrapolation, not a power
analysis: it assumes the new subjects disagree as much as these do.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .markdown import markdown_table
from .resultfiles import REPO, Interval, read_results

DEMO = "figures/demo_results"
HOLDOUT = "benchmarks/results/holdout_seed2/demo_results"
ABLATIONS = "figures/demo_ablations"
CHOICES = "benchmarks/results/choice_effects"
DIFFERENCES = "difference (paired: the same subjects resampled for both rows)"

#: the demo's three paired differences: (question, the row of the differences table)
DEMO_QUESTIONS = (
    ("does HMRM beat the field's usual baseline (STSTNet on TV-L1)?", "HMRM on GRU-AOFE flow - STSTNet on TV-L1 flow"),
    ("does HMRM beat STSTNet on the same flow?", "HMRM on GRU-AOFE flow - STSTNet on GRU-AOFE flow"),
    ("does better flow lift HMRM (exact flow against GRU-AOFE)?", "HMRM on ground-truth flow - HMRM on GRU-AOFE flow"),
)
#: the ablations of the demo's HMRM: (question, ablation)
ABLATION_QUESTIONS = (
    ("does the second grain matter?", "single_grain"),
    ("does the backward scan matter?", "unidirectional"),
    ("does region fusion (RFFS) matter?", "no_rffs"),
    ("does the multi-scale loss matter?", "plain_ce"),
)
#: our own choices undone on the demo's HMRM: (question, variant)
CHOICE_QUESTIONS = (
    ("does the convolutional stem matter (linear patches instead)?", "linear patches"),
    ("does MotionMix matter (p 0.5 instead of none)?", "MotionMix p 0.5"),
)


@dataclass(frozen=True)
class Comparison:
    """One paired comparison: the ``question``, where it was measured (``data``), the difference
    with its interval, the number of subjects, and the file it was read from."""

    group: str
    question: str
    data: str
    delta: Interval
    n_subjects: int
    source: str

    @property
    def supported(self) -> bool:
        return self.delta.excludes_zero

    @property
    def verdict(self) -> str:
        if not self.supported:
            return "inside the noise"
        return "supported: " + ("a gain" if self.delta.direction == "higher" else "a loss")

    @property
    def subjects_needed(self) -> int | None:
        return subjects_to_resolve(self.delta, self.n_subjects)


def subjects_to_resolve(delta: Interval, n_subjects: int) -> int | None:
    """About how many subjects like these a difference would need for its interval to exclude 0, if
    it stayed the size it is (see the module docstring); None when the estimate is 0."""
    half = (delta.high - delta.low) / 2
    if delta.value is None or delta.value == 0:
        return None
    return max(n_subjects, math.ceil(n_subjects * (half / abs(delta.value)) ** 2))


def _subjects(text: str, default: int = 10) -> int:
    m = re.search(r"over (\d+) subjects|(\d+)-subject LOSO", text)
    return int(next(g for g in m.groups() if g)) if m else default


def _seed(text: str) -> str:
    m = re.search(r"data seed (\d+)", text)
    return f"SynthME seed {m.group(1)}" if m else "SynthME"


def demo_comparisons(file: str = DEMO) -> list[Comparison]:
    results = read_results(file)
    caption = " ".join(results.text)
    table = results.table(DIFFERENCES)
    return [Comparison("HMRM against the baseline, and the flow", q, _seed(caption), table.value(row, "ΔUF1"),
                       _subjects(caption), f"{file}.md") for q, row in DEMO_QUESTIONS]


def ablation_comparisons(file: str = ABLATIONS) -> list[Comparison]:
    results = read_results(file)
    table = results.table("data set")
    out = []
    for q, name in ABLATION_QUESTIONS:
        try:
            row = table.find(name, "ablation")
        except KeyError:
            continue
        ci = table.value(row, "ΔUF1 95% interval (paired)")
        folds = table.value(row, "folds")
        n = folds.n if hasattr(folds, "n") else 10
        out.append(Comparison("HMRM's own parts (ablations)", q, "SynthME seed 0",
                              Interval(table.value(row, "ΔUF1 vs full"), ci.low, ci.high), n, f"{file}.md"))
    return out


def choice_comparisons(file: str = CHOICES) -> list[Comparison]:
    if not (REPO / f"{file}.json").is_file():
        return []
    results = read_results(file)
    n = _subjects(" ".join(results.text))
    table = results.table("data")
    out = []
    for q, variant in CHOICE_QUESTIONS:
        for k, r in enumerate(table.cells):
            if r[table.column("variant")] == variant:
                out.append(Comparison("our own choices, undone", q, r[0], table.value(k, "ΔUF1"), n, f"{file}.md"))
    return out


def all_comparisons() -> list[Comparison]:
    """Every paired comparison the committed results hold, seed 0 and seed 2 side by side."""
    return [*demo_comparisons(DEMO), *demo_comparisons(HOLDOUT), *ablation_comparisons(), *choice_comparisons()]


def evidence_markdown(comparisons: list[Comparison] | None = None) -> str:
    """The comparisons as one markdown table, with the verdict and a rough count of the subjects that
    would resolve each one inside the noise."""
    comparisons = all_comparisons() if comparisons is None else comparisons
    rows = []
    for c in comparisons:
        need = c.subjects_needed
        decide = ("-" if c.supported else "no effect to resolve" if need is None else
                  f"about {need} subjects" if need <= 1000 else "over 1000 subjects")
        rows.append([c.question, c.data, c.delta.format(signed=True), c.verdict, decide, f"`{c.source}`"])
    return markdown_table(["question", "data", "ΔUF1 [95%, paired]", "verdict", "to resolve it, if it stayed this size",
                           "source"], rows)


def verdict_lines(comparisons: list[Comparison] | None = None) -> list[str]:
    """The verdict in plain words: what the data support, what is inside the noise, what would decide it."""
    comparisons = all_comparisons() if comparisons is None else comparisons
    supported = [c for c in comparisons if c.supported]
    noise = [c for c in comparisons if not c.supported]
    lines = [f"{len(comparisons)} paired comparisons in the committed results; {len(supported)} supported by the data, "
             f"{len(noise)} inside the noise."]
    for c in supported:
        lines.append(f"Supported: {c.question} {c.data}: ΔUF1 {c.delta.signed} ({c.verdict}).")
    for c in noise:
        lines.append(f"Inside the noise: {c.question} {c.data}: ΔUF1 {c.delta.signed}.")
    needs = [c.subjects_needed for c in noise if c.subjects_needed]
    if needs:
        lines.append(f"What would decide them: more subjects. With {noise[0].n_subjects} subjects an interval is about "
                     f"+-{sum((c.delta.high - c.delta.low) / 2 for c in noise) / len(noise):.2f} UF1 wide; at the size "
                     f"they have, the differences inside the noise would need from about {min(needs)} to "
                     + (f"about {max(needs)}" if max(needs) <= 1000 else "over 1000")
                     + " subjects like these (a rough extrapolation, interval width as one over the square root of the "
                       "number of subjects).")
    return lines


def plain_verdict(comparisons: list[Comparison] | None = None) -> str:
    """The verdict as a paragraph of plain words, built from the comparisons (so it stays true when
    the results change)."""
    comparisons = all_comparisons() if comparisons is None else comparisons

    def where(cs):
        return " and ".join(sorted({c.data for c in cs}))

    parts = [c for c in comparisons if c.group.startswith("HMRM's own parts")]
    network = [c for c in comparisons if "STSTNet" in c.question]
    flow = [c for c in comparisons if "better flow" in c.question]
    ours = [c for c in comparisons if c.group.startswith("our own choices")]
    out = []
    shown = [c for c in parts if c.supported]
    out.append(("No part of HMRM is shown to matter on SynthME: every ablation's paired interval contains 0."
                if parts and not shown else
                "Parts of HMRM shown to matter: " + "; ".join(f"{c.question[5:-1]} ({c.delta.signed})" for c in shown)
                + "." if shown else "No ablation of HMRM has been measured."))
    resolved = [c for c in network if c.supported]
    out.append("No comparison between HMRM and STSTNet is resolved, on " + where(network) + "." if not resolved else
               "Resolved comparisons with STSTNet: " + "; ".join(f"{c.question} {c.data}: {c.delta.signed}"
                                                                 for c in resolved) + ".")
    if flow:
        yes = [c for c in flow if c.supported]
        out.append(("Better flow is the measured lever: HMRM on the exact flow beats HMRM on GRU-AOFE's flow on "
                    + where(yes) + (f", while on {where([c for c in flow if not c.supported])} the gain is inside "
                                    "the noise" if len(yes) < len(flow) else "") + ".")
                   if yes else "Not even exact flow is shown to lift HMRM.")
    if ours:
        yes = [c for c in ours if c.supported]
        out.append(("Of our own choices, the data support: " + "; ".join(f"{c.question} {c.data}: {c.delta.signed}"
                                                                        for c in yes) + "." if yes else
                    "None of our own choices undone is shown to matter either."))
    noise = [c for c in comparisons if not c.supported and c.subjects_needed]
    if noise:
        out.append(f"What would decide the rest is more subjects: with {noise[0].n_subjects}, differences of a few "
                   "hundredths of UF1 stay inside the noise; a benchmark with several times the subjects, or the "
                   "licensed data sets, can resolve them.")
    return " ".join(out)


def interval_verdicts(file: str, first_column: str, delta_column: str, label_columns: tuple[str, ...] | None = None,
                      caption: str | None = None) -> list[str]:
    """One line per row of a committed table whose ``delta_column`` holds a paired difference: the
    row's label (its ``label_columns``, by default the first), the difference and the verdict of the
    interval rule. Rows without an interval (a reference row) are skipped."""
    table = read_results(file).table(first_column, caption)
    labels = label_columns or (first_column,)
    lines = []
    for k, row in enumerate(table.cells):
        d = table.value(k, delta_column)
        if not isinstance(d, Interval):
            continue
        label = ", ".join(row[table.column(c)] for c in labels)
        words = "inside the noise" if d.direction is None else f"supported by the data: {d.direction}"
        lines.append(f"{label}: {d.format(signed=True)}, {words}")
    return lines

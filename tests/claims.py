"""Figures in prose, and where they may come from: the machinery behind ``tests/test_claims.py``.

Prose (the README, ``docs/``, the chapters' and solutions' markdown cells) may type a figure that
*looks measured* (a decimal, a percentage, a ratio ``k/n``, a factor ``N x``) only when it can be
traced:

1. it is in a committed results file that the same paragraph (the same cell, in a notebook) names
   (``figures/demo_results.md``, ``benchmarks/results/beyond_apex.md``, the record of the shipped flow
   weights ``hmrm/flow/weights/gru_aofe.json``), as written or rounded from a longer figure there:
   a measured figure in prose always says which table it comes from;
2. it is in ``docs/paper.md``, the record of what the paper reports and specifies;
3. it is a setting, not a measurement: a number literal in the package's code (``hmrm/``, read with
   ``ast``, so docstrings, comments and strings do not count), in ``configs/``, or in a code cell of
   the same notebook or of its chapter / solutions partner;
4. it is on the allow-list ``tests/claims_allowlist.yaml``, each entry with the file it may appear in
   and the reason.

Code spans, fenced code blocks and inline maths (``$...$``: arithmetic, not measurement) are
skipped, and so are unit fractions (``1/4`` resolution) and version numbers
(``2.14.1``) and the block of the README that ``make demo`` writes (a copy of ``figures/demo_results.md``).
"""
from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from functools import lru_cache
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
ALLOWLIST = REPO / "tests" / "claims_allowlist.yaml"

_SIGN = r"[+\-−±]?"
# a decimal (not part of a version such as 2.14.1 or of a longer dotted token), a percentage, a
# factor "3x" / "3 x" / "3×" not followed by a number (that would be a size, 28 x 28), a count k/n
_FIGURE = re.compile(
    r"(?<![\w.])(?P<figure>"
    r"(?P<pct>\d+(?:\.\d+)?)\s?%"
    r"|(?P<factor>\d+(?:\.\d+)?)\s?[x×](?![\w\d]|\s\d)"
    r"|(?P<count>(?!1/)\d+/\d+)(?![\w/.])"
    r"|(?P<dec>\d+\.\d+)(?![\w.]*\d)"
    r")")
_VERSION = re.compile(r"\d+\.\d+\.\d+")


@dataclass(frozen=True)
class Figure:
    file: str          # repository-relative path of the prose
    line: int          # 1-based line in the file (for notebooks: the cell number, 1-based)
    text: str          # the figure as typed (``0.085``, ``28 %``, ``14/16``, ``30x``)
    kind: str          # dec, pct, factor, count
    context: str       # the words around it
    cites: tuple = ()  # the results files its paragraph (or cell) names

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.text!r} in \"...{self.context}...\""


# ----------------------------------------------------------------------------- prose
def _strip_code(text: str) -> str:
    """Fenced blocks, code spans and inline maths blanked (newlines kept, so line numbers stay right)."""
    text = re.sub(r"```.*?```", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    text = re.sub(r"`[^`\n]*`", " ", text)
    text = re.sub(r"\$\$.*?\$\$", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    text = re.sub(r"\$[^$\n]+\$", " ", text)
    text = re.sub(r"<!--.*?-->", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    text = re.sub(r"https?://\S+", " ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)    # link targets
    return text


def _without_demo_block(text: str) -> str:
    begin, end = "<!-- demo-results:begin", "<!-- demo-results:end -->"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        block, tail = rest.split(end, 1)
        return head + "\n" * block.count("\n") + tail
    return text


_CITE = re.compile(r"(?:figures|benchmarks/results)/[\w./-]+?\.(?:md|json|png)|hmrm/flow/weights/gru_aofe\.json")


def cited(text: str) -> tuple:
    """The results files a piece of prose names (``figures/x.md``, ``benchmarks/results/y.md``, ...)."""
    return tuple(sorted({m.group(0).rsplit(".", 1)[0] for m in _CITE.finditer(text)}))


def paragraphs(text: str) -> list[tuple[int, str]]:
    """(first line, text) of each paragraph: blocks between blank lines; a list item starts a new one."""
    out, block, start = [], [], 1
    for n, line in enumerate(text.splitlines(), 1):
        item = re.match(r"\s*(?:[*-]|\d+\.)\s", line)
        if not line.strip() or item:
            if block:
                out.append((start, "\n".join(block)))
            block, start = ([line], n) if item else ([], n + 1)
            continue
        if not block:
            start = n
        block.append(line)
    if block:
        out.append((start, "\n".join(block)))
    return out


def figures_in(text: str, file: str, line_offset: int = 0, cites: tuple | None = None) -> list[Figure]:
    """The measured-looking figures of a piece of prose, each with the results files its paragraph
    names (or ``cites``, for the whole text)."""
    if cites is None:
        found = []
        fenced = re.sub(r"```.*?```", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
        before: tuple = ()
        for start, para in paragraphs(fenced):
            cites = cited(para)
            if para.lstrip().startswith("|"):    # a table takes the sources its introducing paragraph names
                cites = tuple(sorted(set(cites) | set(before)))
            found += figures_in(para, file, line_offset + start - 1, cites)
            before = cites
        return found
    found = []
    for n, line in enumerate(_strip_code(text).splitlines(), 1):
        for version in _VERSION.finditer(line):
            line = line[:version.start()] + " " * len(version.group(0)) + line[version.end():]
        for m in _FIGURE.finditer(line):
            kind = next(k for k in ("pct", "factor", "count", "dec") if m.group(k) is not None)
            context = line[max(0, m.start() - 40):m.end() + 25].strip()
            found.append(Figure(file, n + line_offset, m.group("figure"), kind, context, cites))
    return found


def notebook_cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def prose_files() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")),
            *sorted((REPO / "notebooks").glob("*.ipynb")), *sorted((REPO / "notebooks" / "solutions").glob("*.ipynb")),
            *sorted((REPO / "notebooks" / "jobs").glob("*.ipynb"))]


def prose_figures(path: Path) -> list[Figure]:
    rel = str(path.relative_to(REPO))
    if path.suffix == ".ipynb":
        found = []
        for k, cell in enumerate(notebook_cells(path), 1):
            if cell["cell_type"] == "markdown":
                source = "".join(cell["source"])
                for f in figures_in(source, rel, cites=cited(source)):
                    found.append(Figure(f.file, k, f.text, f.kind, f.context, f.cites))
        return found
    return figures_in(_without_demo_block(path.read_text()), rel)


# ----------------------------------------------------------------------------- sources
def _numbers(text: str) -> list[str]:
    return re.findall(r"\d+(?:\.\d+)?", text.replace(",", ""))


@lru_cache(maxsize=None)
def corpus(names: tuple) -> tuple[str, frozenset]:
    """The text of docs/paper.md and of the named results files (each as markdown and JSON twin, or
    the one file there is), and the numbers in it."""
    files = [REPO / "docs" / "paper.md"]
    for name in names:
        files += [REPO / f"{name}.md", REPO / f"{name}.json"]
    text = "\n".join(p.read_text() for p in files if p.is_file())
    numbers = set(_numbers(text))
    for n in list(numbers):   # 1,519,881 parameters -> 1.52 M; 665.4 MFLOPs -> 0.67 GFLOPs
        if float(n) >= 100:
            for scale in (3, 6, 9):
                numbers.add(str(Decimal(n).scaleb(-scale)))
    return text, frozenset(numbers)


def missing_citations(figures) -> list[str]:
    """Cited results files that do not exist."""
    return sorted({f"{f.file}: {name}" for f in figures for name in f.cites
                   if not (REPO / f"{name}.md").is_file() and not (REPO / f"{name}.json").is_file()
                   and not (REPO / f"{name}.png").is_file()})


def _literals(source: str) -> set[float]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            found.add(float(node.value))
    return found


@lru_cache(maxsize=None)
def setting_literals() -> frozenset:
    """Number literals of the package's code and the numbers of the configs: settings, not measurements."""
    found: set[float] = set()
    for p in (REPO / "hmrm").rglob("*.py"):
        found |= _literals(p.read_text())
    for p in (REPO / "configs").glob("*.yaml"):
        found |= {float(x) for x in _numbers(p.read_text())}
    return frozenset(found)


def partner(path: Path) -> Path | None:
    """A chapter's solutions notebook, or a solutions notebook's chapter (they share settings)."""
    if path.parent.name == "solutions":
        chapter = path.parent.parent / path.name.replace("_solutions", "")
    else:
        chapter = path.parent / "solutions" / path.name.replace(".ipynb", "_solutions.ipynb")
    return chapter if chapter.is_file() else None


@lru_cache(maxsize=None)
def notebook_literals(path: Path) -> frozenset:
    """Number literals of the code cells of a notebook and of its chapter / solutions partner."""
    found: set[float] = set()
    other = partner(path)
    if other is not None:
        found |= _own_literals(other)
    return frozenset(found | _own_literals(path))


@lru_cache(maxsize=None)
def _own_literals(path: Path) -> frozenset:
    found: set[float] = set()
    for cell in notebook_cells(path):
        if cell["cell_type"] == "code":
            src = "\n".join(l for l in "".join(cell["source"]).splitlines() if not l.lstrip().startswith(("%", "!")))
            found |= _literals(src)
    return frozenset(found)


@lru_cache(maxsize=None)
def allowlist() -> dict[tuple[str, str], str]:
    entries = yaml.safe_load(ALLOWLIST.read_text()) or []
    out = {}
    for e in entries:
        if not {"file", "figure", "reason"} <= set(e) or not str(e["reason"]).strip():
            raise ValueError(f"{ALLOWLIST.name}: every entry needs file, figure and a reason: {e}")
        out[(e["file"], str(e["figure"]))] = e["reason"]
    return out


def _rounds_to(figure: str, numbers) -> bool:
    """True when some number of ``numbers`` (strings) has at least the figure's decimals and rounds to it."""
    target = Decimal(figure)
    places = -target.as_tuple().exponent
    quantum = Decimal(1).scaleb(-places)
    for n in numbers:
        d = Decimal(n)
        if -d.as_tuple().exponent < places:
            continue
        if d.quantize(quantum, ROUND_HALF_UP) == target or d.quantize(quantum, ROUND_HALF_EVEN) == target:
            return True
    return False


def _value(fig: Figure) -> str:
    return re.sub(r"[^\d./]", "", fig.text)


def traced(fig: Figure, notebook: Path | None = None) -> bool:
    """Whether a figure of the prose can be traced (the module docstring's four rules)."""
    if (fig.file, fig.text) in allowlist():
        return True
    text, numbers = corpus(fig.cites)
    value = _value(fig)
    if fig.kind == "count":
        k, n = value.split("/")
        return bool(re.search(rf"(?<!\d){k}\s*/\s*{n}(?!\d)", text)) or f"{k} of {n}" in text
    literals = setting_literals() | (notebook_literals(notebook) if notebook else frozenset())
    if fig.kind == "pct":
        as_fraction = Decimal(value) / 100
        if float(value) in literals or float(as_fraction) in literals:
            return True
        if re.search(rf"(?<![\d.]){re.escape(value)}\s?%", text):
            return True
        # a percentage of a fraction in a table (0.71 -> 71 %)
        return _rounds_to(str(as_fraction.normalize()) if "." in value else f"{as_fraction:.2f}", numbers)
    if fig.kind == "factor":
        if float(value) in literals:
            return True
        return bool(re.search(rf"(?<![\d.]){re.escape(value)}\s?[x×]", text)) or _rounds_to(value, numbers)
    # a decimal
    if float(value) in literals:
        return True
    return _rounds_to(value, numbers)


def untraced(path: Path) -> list[Figure]:
    notebook = path if path.suffix == ".ipynb" else None
    return [f for f in prose_figures(path) if not traced(f, notebook)]

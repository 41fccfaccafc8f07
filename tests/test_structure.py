"""The package's structure: no import circle (at import time or at call time) and no import that runs
upward against the layer order written in ``hmrm/__init__.py``'s docstring.

The graph is read from the source (every ``import`` statement, those inside functions included), so a
circle that only closes when a function runs is found too. Importing ``a.b.c`` also runs ``a`` and
``a.b``, so those count as imported (except the importer's own packages, which are already running).
``from pkg import name`` reads ``pkg``'s namespace, so it counts as importing ``pkg`` (and
``pkg.name`` when that is a module).
"""
from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------- the checker
def modules_of(package_dir: Path) -> dict[str, tuple[Path, bool]]:
    """Every module of the package at ``package_dir``: dotted name -> (file, is a package)."""
    out = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return out


def _type_checking_only(tree: ast.Module) -> set[int]:
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", "")) == "TYPE_CHECKING":
            skip |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skip


def import_graph(package_dir: Path) -> tuple[dict[str, set[str]], dict[str, tuple[Path, bool]]]:
    """``module -> modules it imports`` within the package, read from the source (see the module docstring)."""
    mods = modules_of(package_dir)
    top = package_dir.name
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, (path, is_pkg) in mods.items():
        tree = ast.parse(path.read_text(), str(path))
        skip = _type_checking_only(tree)
        own_pkg = name.split(".") if is_pkg else name.split(".")[:-1]
        ancestors = {".".join(name.split(".")[:i]) for i in range(1, len(name.split(".")))} | ({name} if is_pkg else set())
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.split(".")[0] == top]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = own_pkg[:len(own_pkg) - node.level + 1]
                    src = ".".join(base + ([node.module] if node.module else []))
                else:
                    src = node.module or ""
                if src.split(".")[0] != top:
                    continue
                targets = [src] + [f"{src}.{a.name}" for a in node.names if f"{src}.{a.name}" in mods]
            for target in targets:
                while target not in mods:  # ``import a.b.name`` of a non-module name
                    target = target.rsplit(".", 1)[0]
                parts = target.split(".")
                implied = {".".join(parts[:i]) for i in range(1, len(parts))} - ancestors
                graph[name] |= ({target} | implied) - {name}
    return graph, mods


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles: every strongly connected group of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def layer_order(init_file: Path) -> list[str]:
    """The layers of a package docstring's ``Layers`` block, lowest first: the indented lines of its
    literal block that start with a dotted module name."""
    doc = ast.get_docstring(ast.parse(init_file.read_text())) or ""
    if "Layers" not in doc:
        raise AssertionError(f"{init_file}'s docstring has no 'Layers' block")
    block = doc.split("Layers", 1)[1]
    top = init_file.parent.name
    return [line.split()[0] for line in block.splitlines()
            if line.startswith("    ") and line.split() and line.split()[0].split(".")[0] == top]


def layer_of(module: str, layers: list[str]) -> int:
    """The index of the most specific layer holding ``module``; an error for a module in none."""
    best = [(len(u), i) for i, u in enumerate(layers) if module == u or module.startswith(u + ".")]
    if not best:
        raise AssertionError(f"{module} is in no layer of the package docstring: add it to the list")
    return max(best)[1]


def upward_imports(graph: dict[str, set[str]], layers: list[str]) -> list[str]:
    """``a -> b`` for every import of a module ``b`` in a layer listed after ``a``'s."""
    root = layers[0].split(".")[0]
    return sorted(f"{a} ({layers[layer_of(a, layers)]}) -> {b} ({layers[layer_of(b, layers)]})"
                  for a, targets in graph.items() for b in targets
                  if a != root and b != root and layer_of(b, layers) > layer_of(a, layers))


# ---------------------------------------------------------------------------------------- the package
def test_the_package_has_no_import_circle():
    graph, _ = import_graph(ROOT / "hmrm")
    found = circles(graph)
    detail = "\n".join(" <-> ".join(c) + "\n    " + "\n    ".join(f"{a} -> {b}" for a in c for b in sorted(graph[a] & set(c)))
                       for c in found)
    assert not found, f"import circles in hmrm (move the shared piece down a layer):\n{detail}"


def test_no_import_runs_upward_against_the_documented_layers():
    layers = layer_order(ROOT / "hmrm" / "__init__.py")
    assert len(layers) == len(set(layers)) and len(layers) > 5, layers
    graph, mods = import_graph(ROOT / "hmrm")
    for m in mods:
        if m != "hmrm":  # the root package holds only the version and this list
            layer_of(m, layers)  # every other module is in a layer
    up = upward_imports(graph, layers)
    assert not up, "imports that run upward against the layers of hmrm/__init__.py:\n  " + "\n  ".join(up)


FRESH_IMPORTS = textwrap.dedent("""
    import builtins, importlib, importlib.util, sys
    bad, real = [], builtins.__import__
    def watch(name, globals=None, locals=None, fromlist=(), level=0):
        pkg = (globals or {}).get("__package__") or ""
        me = (globals or {}).get("__name__") or ""
        try:
            full = importlib.util.resolve_name("." * level + name, pkg) if level else name
        except ImportError:
            full = name
        for w in [full] + [full + "." + f for f in (fromlist or ()) if f != "*"]:
            spec = getattr(sys.modules.get(w), "__spec__", None)
            if (w.split(".")[0] == "hmrm" and spec is not None and getattr(spec, "_initializing", False)
                    and not (me == w or me.startswith(w + "."))):
                bad.append(f"circle: {me} -> {w}, which is still initialising")
        return real(name, globals, locals, fromlist, level)
    builtins.__import__ = watch
    for m in sys.argv[1:]:
        try:
            importlib.import_module(m)
        except ImportError as exc:  # an optional dependency (Ray, Triton ...) that is not installed is fine
            if not getattr(exc, "name", "") or exc.name.split(".")[0] == "hmrm":
                bad.append(f"failed: {m}: {exc!r}")
    print("\\n".join(sorted(set(bad))))
    sys.exit(1 if bad else 0)
""")


def fresh_import_problems(cwd: Path, modules: list[str]) -> str:
    """Import ``modules`` one after the other in a fresh interpreter started in ``cwd`` that watches
    every import: asking for a module that is still initialising (other than the importer's own
    packages) is an import-time circle, and a module that does not import is reported too."""
    proc = subprocess.run([sys.executable, "-c", FRESH_IMPORTS, *modules], cwd=cwd, capture_output=True, text=True,
                          timeout=600)
    return "" if proc.returncode == 0 else proc.stdout + proc.stderr[-3000:]


def test_every_module_imports_in_a_fresh_interpreter_without_meeting_a_half_initialised_one():
    _, mods = import_graph(ROOT / "hmrm")
    problems = fresh_import_problems(ROOT, sorted(mods))
    assert not problems, problems


def test_the_fresh_interpreter_sees_an_import_time_circle(tmp_path):
    _package(tmp_path, {"__init__.py": "", "low.py": "from hmrm.high import Z\nX = 1\n",
                        "high.py": "import hmrm.low\nZ = 2\n"})
    problems = fresh_import_problems(tmp_path, ["hmrm.low", "hmrm.high"])
    assert "circle: hmrm.high -> hmrm.low, which is still initialising" in problems


# ---------------------------------------------------------------------------------------- the checker checked
def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / "hmrm" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return tmp_path / "hmrm"


LAYERED = {
    "__init__.py": '"""A package.\n\nLayers::\n\n    hmrm.low       the bottom\n    hmrm.mid       the middle\n'
                   '    hmrm.high      the top\n    hmrm.mid.app   an app on top of everything\n"""\n',
    "low.py": "X = 1\n",
    "mid/__init__.py": "from .core import Y\n",
    "mid/core.py": "from ..low import X\nY = X\n",
    "mid/app.py": "from hmrm.high import Z\n",
    "high.py": "def f():\n    from .mid import Y\n    return Y\nZ = 2\n",
}


def test_the_checker_passes_a_clean_package(tmp_path):
    pkg = _package(tmp_path, LAYERED)
    graph, _ = import_graph(pkg)
    assert circles(graph) == []
    assert upward_imports(graph, layer_order(pkg / "__init__.py")) == []
    assert graph["hmrm.high"] == {"hmrm.mid"}
    assert graph["hmrm.mid.app"] == {"hmrm.high"}


def test_the_checker_finds_a_call_time_circle_and_an_upward_import(tmp_path):
    pkg = _package(tmp_path, {**LAYERED, "low.py": "X = 1\ndef g():\n    from hmrm.mid.core import Y\n    return Y\n"})
    graph, _ = import_graph(pkg)
    assert circles(graph) == [["hmrm.low", "hmrm.mid", "hmrm.mid.core"]]
    assert upward_imports(graph, layer_order(pkg / "__init__.py")) == [
        "hmrm.low (hmrm.low) -> hmrm.mid (hmrm.mid)", "hmrm.low (hmrm.low) -> hmrm.mid.core (hmrm.mid)"]


def test_the_checker_counts_a_package_init_run_by_importing_its_module(tmp_path):
    """``from hmrm.mid.core import Y`` runs ``hmrm/mid/__init__.py`` first: a circle through it counts."""
    files = {**LAYERED, "mid/__init__.py": "from .core import Y\nfrom .other import W\n",
             "mid/other.py": "def h():\n    from ..high import Z\n    return Z\nW = 0\n",
             "high.py": "from hmrm.mid.core import Y\nZ = 2\n"}
    graph, _ = import_graph(_package(tmp_path, files))
    assert ["hmrm.high", "hmrm.mid", "hmrm.mid.other"] in circles(graph)


def test_the_checker_sees_a_package_namespace_read_back_into_a_half_initialised_package(tmp_path):
    """``from .. import metrics`` in a module that the package's ``__init__`` imports reads the package
    while it is initialising: a circle, even though ``metrics`` is a module of its own."""
    files = {"__init__.py": '"""P.\n\nLayers::\n\n    hmrm.train   all\n"""\n',
             "train/__init__.py": "from .loso import run\n", "train/metrics.py": "A = 1\n",
             "train/loso.py": "from . import metrics\nrun = metrics.A\n"}
    graph, _ = import_graph(_package(tmp_path, files))
    assert circles(graph) == [["hmrm.train", "hmrm.train.loso"]]


@pytest.mark.parametrize("rel,text,expected", [
    ("low.py", "import hmrm.high\n", "hmrm.low (hmrm.low) -> hmrm.high (hmrm.high)"),
    ("mid/core.py", "from hmrm.mid import app\n", "hmrm.mid.core (hmrm.mid) -> hmrm.mid.app (hmrm.mid.app)"),
])
def test_the_checker_names_the_upward_import(tmp_path, rel, text, expected):
    pkg = _package(tmp_path, {**LAYERED, rel: text})
    graph, _ = import_graph(pkg)
    assert expected in upward_imports(graph, layer_order(pkg / "__init__.py"))

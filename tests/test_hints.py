"""Hints that work: every `hmrm <command> ... --flag` that an error message, a hint or a --help text of
the package spells out names a flag that command's parser has."""
import ast
import re
from pathlib import Path

from hmrm.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
COMMAND = re.compile(r"\bhmrm ([a-z][a-z-]*)((?: +[^\s`'\"]+)*)")


def _parsers() -> dict[str, set[str]]:
    """'loso' -> its option strings; 'flow train' -> those of the sub-command."""
    import argparse

    out = {}
    root = build_parser()
    for action in root._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, parser in action.choices.items():
                out[name] = {o for a in parser._actions for o in a.option_strings}
                for sub in parser._actions:
                    if isinstance(sub, argparse._SubParsersAction):
                        for subname, subparser in sub.choices.items():
                            out[f"{name} {subname}"] = {o for a in subparser._actions for o in a.option_strings}
    return out


def _strings(path: Path):
    """The string literals of a module (the constant parts of f-strings joined, placeholders as X)."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            yield node.lineno, "".join(v.value if isinstance(v, ast.Constant) else "X" for v in node.values)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def _mentions(text: str, parsers: dict):
    for m in COMMAND.finditer(text):
        words = m.group(2).split()
        command = m.group(1)
        if words and f"{command} {words[0]}" in parsers:
            command, words = f"{command} {words[0]}", words[1:]
        flags = [w.split("=")[0].rstrip(".,;:)") for w in words if w.startswith("--")]
        yield command, flags


def test_every_flag_a_message_or_help_names_exists():
    parsers = _parsers()
    texts = [(f"{p.relative_to(REPO)}:{line}", s) for p in sorted((REPO / "hmrm").rglob("*.py")) for line, s in _strings(p)]
    for name, parser_flags in parsers.items():       # the --help texts themselves
        texts.append((f"hmrm {name} --help", " ".join(sorted(parser_flags))))
    wrong = []
    for where, text in texts:
        for command, flags in _mentions(text, parsers):
            if command not in parsers:
                continue   # `hmrm` followed by a word that is no command (prose)
            wrong += [f"{where}: hmrm {command} has no {flag}" for flag in flags if flag not in parsers[command]]
    assert not wrong, "\n".join(wrong)


def test_the_checker_catches_a_flag_that_does_not_exist():
    parsers = _parsers()
    found = dict(_mentions("pass it to `hmrm loso --out DIR` or `hmrm flow train --config X`", parsers))
    assert found == {"loso": ["--out"], "flow train": ["--config"]}
    assert "--out" not in parsers["loso"] and "--run-dir" in parsers["loso"] and "--config" in parsers["flow train"]

"""What the sub-commands share: argument types that refuse a bad value before anything runs, the help
formatter, defaults read from the package, and the option groups of the commands that train folds."""
from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_SYNTHME = Path("data/synthme")
LENIENT_HELP = ("skip annotation rows that cannot be read as written (an empty or unknown emotion) with a warning, and "
                "count them in the summary, instead of stopping at the first")


def count(low: int):
    """An argparse type: an integer >= ``low`` (refused by the parser, before anything is written)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {value}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


def minutes(text: str) -> float:
    """An argparse type: a positive number of minutes."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of minutes > 0, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of minutes > 0, got {text}")
    return value


POSITIVE, NON_NEGATIVE = count(1), count(0)


def fraction(text: str) -> float:
    """An argparse type: a number from 0 to 1 (a probability)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1, got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1 (a probability), got {text}")
    return value


class Help(argparse.ArgumentDefaultsHelpFormatter):
    """Show a default only where there is one worth showing (not None, not a False flag)."""

    def _get_help_string(self, action):
        if action.default in (None, False) or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def default_of(func, name: str):
    """The default of argument ``name`` of ``func``: the command line shows and uses the package's own."""
    import inspect

    return inspect.signature(func).parameters[name].default


def machine_options(g, workers_help: str) -> None:
    """--workers, --threads and --quiet of the commands that train folds (loso, demo)."""
    g.add_argument("--workers", type=POSITIVE, default=None, help=workers_help)
    g.add_argument("--threads", type=POSITIVE, default=None,
                   help="CPU threads for torch outside the folds (each fold trains on one thread)")
    g.add_argument("--quiet", action="store_true", help="no progress bars")


def engine_options(g) -> None:
    """--engine and --address of the commands that can train folds on Ray (loso, reproduce)."""
    from ..train.loso import ENGINES

    g.add_argument("--engine", choices=ENGINES, default=None,
                   help="local: folds on this machine, one at a time (or in --workers processes on a CPU); stacked: "
                   "--stack folds at once as one batched network (for GPUs; the same results up to rounding); ray: "
                   "every fold a Ray task on the cluster at --address (or on a Ray instance started here), writing "
                   "into the same run folder, which must be on a path every machine sees; a lost worker's fold "
                   "continues from its checkpoint; needs the ray extra: pip install -e '.[ray]' (default: local)")
    g.add_argument("--address", default=None,
                   help="with --engine ray: a running cluster's address, HEAD:6379 (`ray start --head` prints it)")
    g.add_argument("--stack", type=POSITIVE, default=None,
                   help="with --engine stacked: folds trained at once (default: as many as 70%% of the free memory "
                   "holds on CUDA, 2 on a CPU)")
    g.add_argument("--verbose", action="store_true", help="with --engine ray: show Ray's own log lines")

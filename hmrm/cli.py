"""The ``hmrm`` command line. ``hmrm --help`` lists the commands; each has its own ``--help``.

The sub-commands live in :mod:`hmrm.commands`, one module per family (data, LOSO, the demo and the
paper's batch, results, experiments, flow); this module assembles their parsers and runs one, turning
the faults a user can fix into a one-paragraph message."""
from __future__ import annotations

import argparse
import errno
import os
import shlex
import sys

from .commands import beyond, data, flow, loso, results, runs


def build_parser() -> argparse.ArgumentParser:
    """The ``hmrm`` parser: one sub-command per ``_add_*`` function below. Choices and defaults are read
    from the package (flow methods, models, ablations, data sets, class schemes, presets, the fields of
    :class:`~hmrm.train.loso.LOSOConfig`), so a new method or option appears here without being typed twice."""
    p = argparse.ArgumentParser(
        prog="hmrm",
        description="HMRM course library: micro-expression recognition, rebuilt and honestly evaluated.",
        epilog="Start with `hmrm doctor` (what works on this machine) and `hmrm synthme` (the embedded data set).",
    )
    p.add_argument("--debug", action="store_true",
                   help="show the full traceback of an error instead of the one-paragraph message")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for add in (data.add_doctor, data.add_facebank, data.add_synthme, data.add_prepare, results.add_efficiency,
                loso.add_loso, runs.add_demo, runs.add_reproduce, results.add_calibrate, results.add_explain,
                beyond.add_beyond, flow.add_flow):
        add(sub)
    return p



_OS_FIXES = {
    errno.EACCES: "permission denied: check the owner and mode of the path (ls -l), or choose another location",
    errno.EPERM: "operation not permitted: check the owner and mode of the path (ls -l), or choose another location",
    errno.ENOSPC: "the disk is full: free some space (or choose a folder on another disk) and run the same command "
                  "again; finished work is kept",
    errno.EDQUOT: "the disk quota is used up: free some space and run the same command again; finished work is kept",
    errno.EROFS: "the file system is read-only: choose a writable location",
    errno.EEXIST: "a file is in the way where a folder is needed: move or delete it, or choose another path",
    errno.ENOTDIR: "a file is in the way where a folder is needed: move or delete it, or choose another path",
    errno.EISDIR: "a folder is where a file is needed: choose a file path, or move the folder away",
    errno.ENOENT: "no such file or folder: check the path (relative paths start from the current folder)",
    errno.ENAMETOOLONG: "the path is too long: choose a shorter one",
}



def describe_os_error(exc: OSError) -> str:
    """One paragraph for a failed file operation: the path, what went wrong, and what to do."""
    paths = " -> ".join(str(p) for p in (exc.filename, exc.filename2) if p is not None)
    what = exc.strerror or str(exc)
    fix = _OS_FIXES.get(exc.errno or -1, "check the path and run the same command again")
    if exc.errno is None and not paths:  # raised by our own code with a full message
        return str(exc)
    return f"cannot use {paths or 'a file'}: {what}. {fix[0].upper() + fix[1:]}."



class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that it stops as Ctrl-C does (queued work dropped, workers
    told to stop, nothing half-written), and exits with 143."""



def _terminate_as_interrupt():
    """Make SIGTERM raise :class:`Terminated` (in the main thread); returns the handler it replaced."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        raise Terminated()

    return signal.signal(signal.SIGTERM, handler)



def main(argv: list[str] | None = None) -> int:
    """Run one ``hmrm`` command. Expected faults (bad input data, a refused option, a file that cannot be
    read or written) end with a one-paragraph message and exit status 2; ``--debug`` shows the traceback."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    where = f"hmrm {args.command}" + (f" {args.subcommand}" if getattr(args, "subcommand", None) else "")
    previous = _terminate_as_interrupt()
    try:
        return _run(args, argv, where)
    finally:
        if previous is not None:
            import signal

            signal.signal(signal.SIGTERM, previous)



def _run(args, argv, where: str) -> int:
    """The body of :func:`main`: run the command, turning expected faults into one-paragraph messages."""
    from .data.records import DataError
    from .face.detect import FaceNotFoundError
    from .options import OptionError

    if getattr(args, "verbose", False):
        from .train.loso.ray_engine import VERBOSE_ENV

        os.environ[VERBOSE_ENV] = "1"  # read where Ray starts, in this process or a notebook's kernel
    try:
        return int(args.func(args) or 0)
    except (DataError, FaceNotFoundError, OptionError, OSError) as exc:
        if args.debug:
            raise
        if isinstance(exc, OSError) and exc.errno is not None:
            print(f"{where}: error: {describe_os_error(exc)} (hmrm --debug {args.command} ... shows where it "
                  "happened.)", file=sys.stderr)
        else:
            print(f"{where}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        if args.debug:
            raise
        again = shlex.join(["hmrm", *(sys.argv[1:] if argv is None else argv)])
        print(f"\n{where}: {'terminated' if isinstance(exc, Terminated) else 'interrupted'}; finished work is kept. "
              f"To continue, run the same command again:\n  {again}", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130


if __name__ == "__main__":
    sys.exit(main())

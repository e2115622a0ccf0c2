"""The ``dotrec`` command line: parse arguments, call the library, print.

Errors from bad input end in one paragraph on standard error and exit
status 2, never a bare traceback (``--debug`` shows it).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import warnings

from dotrec._version import __version__
from dotrec.cli import (
    calibrate,
    compare,
    evaluate,
    explain,
    index,
    inspect,
    quickstart,
    recommend,
    report,
    serve,
    split,
    train,
    tune,
)
from dotrec.cli._common import archive_next_step
from dotrec.exceptions import ArchiveError, DotrecError

__all__ = ["main"]

_COMMANDS = [
    quickstart,
    inspect,
    split,
    train,
    tune,
    evaluate,
    compare,
    report,
    recommend,
    index,
    explain,
    calibrate,
    serve,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dotrec", description="Train, evaluate and serve recommenders from interaction logs."
    )
    parser.add_argument("--version", action="version", version=f"dotrec {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _COMMANDS:
        sub = module.add_parser(commands)
        sub.set_defaults(run=module.run)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"dotrec: warning: {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``dotrec`` command; returns the exit status.

    When standard output is closed early (``dotrec ... | head``), the command
    stops quietly with status 141, as a Unix tool stopped by SIGPIPE does.
    """
    try:
        return _main(sys.argv[1:] if argv is None else list(argv))
    except BrokenPipeError:
        _discard_stdout()
        return _SIGPIPE_STATUS


def _main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    warnings.showwarning = _show_warning
    try:
        status = int(args.run(args) or 0)
        sys.stdout.flush()  # a reader gone before the last lines shows here
        return status
    except KeyboardInterrupt:
        print("dotrec: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        raise
    except (DotrecError, ValueError, KeyError, OSError, ImportError) as err:  # missing extras
        if args.debug:
            raise
        message = _message(err)
        if isinstance(err, ArchiveError):
            message += archive_next_step(err, argv)
        print(f"dotrec: error: {message}", file=sys.stderr, flush=True)
        return 2


def _message(err: Exception) -> str:
    """The error as one line: KeyError unquoted, an OS error as "PATH: what went wrong"."""
    if isinstance(err, KeyError) and err.args:
        return str(err.args[0])
    if isinstance(err, OSError) and err.strerror and err.filename is not None:
        # str() gives "[Errno 13] Permission denied: 'x'"; the number helps no one
        what = err.strerror[:1].lower() + err.strerror[1:]
        also = f" (and {err.filename2})" if err.filename2 is not None else ""
        return f"{err.filename}{also}: {what}"
    return str(err)


_SIGPIPE_STATUS = 128 + getattr(signal, "SIGPIPE", 13)
"""Exit status of a process stopped by SIGPIPE, as shells report it."""


def _discard_stdout() -> None:
    """Send what is left of standard output to the null device.

    Python flushes standard output again on exit, which would fail on the
    closed pipe and print "Exception ignored ... BrokenPipeError"; see the
    note on SIGPIPE in the documentation of the signal module.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no file descriptor (captured output)
        pass


if __name__ == "__main__":
    sys.exit(main())

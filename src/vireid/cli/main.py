"""``vireid`` entry point: dispatches to one module per sub-command.

Each command module defines ``add_parser(subparsers) -> argparse.ArgumentParser`` which registers the
command and sets ``func`` (called with the parsed args, returning an exit status or None).
A ``VireidError`` (bad input) becomes one line on stderr and exit status 2, with no traceback.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import sys
from collections.abc import Sequence

from vireid import __version__
from vireid.errors import VireidError, one_line

# Command modules under vireid.cli, in the order `vireid --help` lists them.
COMMANDS: tuple[str, ...] = ("demo", "synth", "train", "extract", "test", "evaluate", "tsne", "sweep", "index", "search",
                            "export")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vireid",
        description="Visible-infrared person re-identification with Variational Distillation.",
    )
    parser.add_argument("--version", action="version", version=f"vireid {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"vireid.cli.{name}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = args.func(args)
    except VireidError as exc:
        print(f"vireid {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):  # a full or read-only disk: the user's to fix
            raise
        print(f"vireid {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vireid {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(status or 0)


if __name__ == "__main__":
    sys.exit(main())

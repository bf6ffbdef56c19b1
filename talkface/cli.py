"""The `talkface` command line: one entry point, one module per subcommand.

User mistakes (TalkfaceError) become one line on stderr and exit code 2; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
from types import ModuleType

from talkface.errors import TalkfaceError

# Each subcommand module provides `add_arguments(parser)` and `run(args) -> int`, and imports
# its heavy dependencies (torch, models) inside `run`, so a mistake on the command line is
# reported in well under a second.
SUBCOMMANDS = {
    name: f"talkface.commands.{name}"
    for name in (
        "demo",
        "generate",
        "serve",
        "sample",
        "inspect",
        "prepare",
        "ablate",
        "evaluate",
        "export",
        "benchmark",
        "sync",
    )
}


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: every `with` block cleans up (no partial file is left)."""


LIGHTNING_HELP = {
    "fit": "Train a stage from a recipe: talkface fit -c landmark/sample (a packaged name or a YAML file)",
    "validate": "Validate a checkpoint: talkface validate -c CONFIG --ckpt_path CKPT",
    "test": "Test a checkpoint on the test split: talkface test -c CONFIG --ckpt_path CKPT",
    "predict": "Predict with a checkpoint: talkface predict -c CONFIG --ckpt_path CKPT",
}


class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes end like every other user mistake: one line on stderr, exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="talkface",
        description="Talking-face generation through predicted facial landmarks.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, doc in LIGHTNING_HELP.items():  # handled by the Lightning CLI (see main)
        commands.add_parser(name, help=doc, add_help=False)
    for name in SUBCOMMANDS:
        module = _command(name)
        doc = (module.__doc__ or "").strip().splitlines()[0]
        sub = commands.add_parser(name, help=doc, description=doc)
        module.add_arguments(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in LIGHTNING_HELP:
        from talkface.training_cli import run_lightning

        return run_lightning(argv)
    command = argv[0] if argv and argv[0] in SUBCOMMANDS else "talkface"
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    try:
        args = build_parser().parse_args(argv)
        return int(_command(args.command).run(args) or 0)
    except TalkfaceError as error:
        print(f"talkface {command}: error: {error}", file=sys.stderr)
        return 2
    except Terminated:
        print(f"talkface {command}: terminated; nothing was left half-written", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"talkface {command}: interrupted; nothing was left half-written", file=sys.stderr)
        return 130
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def _command(name: str) -> ModuleType:
    return importlib.import_module(SUBCOMMANDS[name])


def _terminate(signum, frame) -> None:
    raise Terminated()


if __name__ == "__main__":
    sys.exit(main())

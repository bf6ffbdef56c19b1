"""The `talkface` command line: one entry point, one module per subcommand.

User mistakes (TalkfaceError) become one line on stderr and exit code 2; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys

from talkface.commands import ablate as ablate_command
from talkface.commands import benchmark as benchmark_command
from talkface.commands import demo as demo_command
from talkface.commands import evaluate as evaluate_command
from talkface.commands import export as export_command
from talkface.commands import generate as generate_command
from talkface.commands import inspect as inspect_command
from talkface.commands import prepare as prepare_command
from talkface.commands import sample as sample_command
from talkface.errors import TalkfaceError

# Each subcommand module provides `add_arguments(parser)` and `run(args) -> int`.
SUBCOMMANDS = {
    "demo": demo_command,
    "generate": generate_command,
    "sample": sample_command,
    "inspect": inspect_command,
    "prepare": prepare_command,
    "ablate": ablate_command,
    "evaluate": evaluate_command,
    "export": export_command,
    "benchmark": benchmark_command,
}


LIGHTNING_HELP = {
    "fit": "Train a stage from a config: talkface fit -c configs/landmark/sample.yaml",
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
    for name, module in SUBCOMMANDS.items():
        doc = (module.__doc__ or "").strip().splitlines()[0]
        sub = commands.add_parser(name, help=doc, description=doc)
        module.add_arguments(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in LIGHTNING_HELP:
        from talkface.training_cli import run_lightning

        return run_lightning(argv)
    args = build_parser().parse_args(argv)
    try:
        return int(SUBCOMMANDS[args.command].run(args) or 0)
    except TalkfaceError as error:
        print(f"talkface {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"talkface {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

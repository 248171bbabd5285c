"""`python -m training.reward score|train|evaluate ...`"""

from __future__ import annotations

import argparse
import sys

from .cli import score as cli_score


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training.reward",
                                     description="SpatialScore reward model: score, train, evaluate.")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)
    cli_score.add_parser(sub)
    for name in ("train", "evaluate"):
        try:
            module = __import__(f"training.reward.cli.{name}", fromlist=["add_parser"])
        except ModuleNotFoundError as exc:
            if exc.name != f"training.reward.cli.{name}":
                raise
            continue
        module.add_parser(sub)
    for command in sub.choices.values():  # --debug also after the command name
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    from ..common.finite import NonFiniteError
    from ..common.images import ImageInputError
    from ..common.os_errors import one_line_errors
    from .config import ScorerFolderError

    args = build_parser().parse_args(argv)
    code, failed = one_line_errors(lambda: args.func(args), args.debug, (
        ScorerFolderError, ImageInputError, ValueError, FileNotFoundError, NonFiniteError, FloatingPointError))
    return failed or code


if __name__ == "__main__":
    sys.exit(main())

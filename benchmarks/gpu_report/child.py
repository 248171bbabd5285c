"""One item of the GPU report, in a process of its own (its peak memory is its own; an out-of-memory or a crash
loses nothing the other items measured):

    python -m benchmarks.gpu_report.child ITEM --shape full|mini --result FILE

Every figure is written to FILE (atomically) as soon as it is measured, so a kill or a crash keeps what was done.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from training.common.atomic import write_json

from .items import ITEMS


class Record:
    """The item's figures so far, rewritten to its result file after each one."""

    def __init__(self, item: str, path: str):
        self.path = path
        self.data = {"item": item, "measured": {}, "info": {}, "parts_failed": {}}
        self._write()

    def measured(self, key: str, value: float) -> None:
        self.data["measured"][key] = float(value)
        self._write()

    def info(self, key: str, value) -> None:
        self.data["info"][key] = value
        self._write()

    def part_failed(self, part: str, reason: str) -> None:
        self.data["parts_failed"][part] = reason
        print(f"{part}: {reason}", file=sys.stderr)
        self._write()

    def _write(self) -> None:
        write_json(self.path, self.data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_report.child")
    parser.add_argument("item", choices=[i.name for i in ITEMS if i.runner])
    parser.add_argument("--shape", choices=["full", "mini"], required=True)
    parser.add_argument("--result", required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is ever downloaded
    item = next(i for i in ITEMS if i.name == args.item)
    record = Record(item.name, args.result)
    importlib.import_module(f"benchmarks.gpu_report.{item.runner}").run(args.shape, record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

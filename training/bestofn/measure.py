"""python -m training.bestofn.measure: replay pruning schedules on a traced run; the command line is
cli/measure.py, the replay replay.py."""

import sys

from .cli.measure import main

if __name__ == "__main__":
    sys.exit(main())

"""python -m training.bestofn: best-of-N that prunes losing candidates while sampling; the command line is
cli/run.py."""

import sys

from .cli.run import main

if __name__ == "__main__":
    sys.exit(main())

"""python -m training.grpo.evaluate: the generator evaluation's command line, cli/evaluate.py."""

import sys

from ..cli.evaluate import main

if __name__ == "__main__":
    sys.exit(main())

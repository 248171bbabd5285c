"""python -m training.grpo.sample_eval: a generator's pixel-oracle rates on held-out prompts; the command line is
cli/sample_eval.py, the figures evaluate/oracle_rates.py."""

import sys

from .cli.sample_eval import main

if __name__ == "__main__":
    sys.exit(main())

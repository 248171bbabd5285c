"""python -m training.grpo.sample: pictures of a prompt file from a generator (and a LoRA); the command line is
cli/sample.py, the sampling sampling.py."""

import sys

from .cli.sample import main

if __name__ == "__main__":
    sys.exit(main())

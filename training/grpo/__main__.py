"""python -m training.grpo: Spatial GRPO of a Flux LoRA against SpatialScore; the command line is cli/train.py."""

import sys

from .cli.train import main

if __name__ == "__main__":
    sys.exit(main())

"""The command lines of Spatial GRPO, each run under its documented name:

    python -m training.grpo              train.py        a GRPO run (config, presets, --resume)
    python -m training.grpo.sample       sample.py       pictures of a prompt file from a generator (and a LoRA)
    python -m training.grpo.sample_eval  sample_eval.py  a generator's pixel-oracle rates on held-out prompts
    python -m training.grpo.evaluate     evaluate.py     a generator with and without LoRAs on a prompt set,
                                                         judged by SpatialScore

The modules at those names (../__main__.py, ../sample.py, ../sample_eval.py, ../evaluate/__main__.py) only run
these; the libraries they drive are beside them in training/grpo.
"""

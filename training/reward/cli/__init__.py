"""The subcommands of `python -m training.reward`: score, train, evaluate (wired in ../__main__.py)."""

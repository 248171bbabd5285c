"""The subcommands of `python -m training.reward`: score, train, evaluate (wired in ../__main__.py); edit.py holds
their edit-pair branches, files.py what score reads and prints."""

"""The command lines of best-of-N, each run under its documented name:

    python -m training.bestofn           run.py      pruned best-of-N of a prompt file (run folder, report)
    python -m training.bestofn.measure   measure.py  replay pruning schedules on a traced run (replay.py)

The modules at those names (../__main__.py, ../measure.py) only run these.
"""

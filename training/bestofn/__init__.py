"""Best-of-N that stops paying for losers: score each candidate's predicted clean image (x0) during sampling and
finish only the promising ones (`python -m training.bestofn`).

`schedule` parses pruning schedules ("2@0.34"), `pruning` is the model-agnostic bookkeeping (who is alive,
who was dropped when with what score) that the headless sampler and the ComfyUI node share, `sampler` runs it on
a FLUX pipeline folder, `config` holds a run's settings, `run` writes a run folder, `report` the report's
records, `replay` replays schedules on a traced run (`python -m training.bestofn.measure`). The command lines
are in cli/.
"""

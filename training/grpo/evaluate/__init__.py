"""Generator evaluation: a model with and without LoRAs on public spatial prompt sets, judged by SpatialScore.

    python -m training.grpo.evaluate --model shapes --lora shapes-grpo --bench shapes-heldout --out eval/

One file per idea: formats.py (each prompt set's file format), benches.py (the shipped sets, prompt_sets/ with
their sources and licences), relations.py (relation words, object counts), variants.py (the base and each LoRA,
sampled from the same noise; a LoRA for another model refused), judge.py (scorer, pairwise judge, whether the
scorer can read the prompts), statistics.py (paired win rates and their intervals), analysis.py (the report's
numbers, shared with the ComfyUI node), report.py and pictures.py (what is written), run.py (the whole
evaluation), oracle_rates.py (the pixel oracle's rates of one generator and LoRA on a prompt list, the shapes world's
held-out judgement: `python -m training.grpo.sample_eval`). The command lines are ../cli/evaluate.py and
../cli/sample_eval.py.
"""

"""Recipes that compose several stages, above all of them: the shapes-gen scorer is trained on pictures of the shapes
generator and on one GRPO round against it (shapes_scorer.py, run as `python -m training.reward.recipes.shapes`)."""

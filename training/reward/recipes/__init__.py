"""Recipes that reproduce shipped scorers from an empty folder (see shapes.py)."""

"""The RL proof in the shapes world, as it was found: the lab journal (journal.md) and the diagnostics it ran."""

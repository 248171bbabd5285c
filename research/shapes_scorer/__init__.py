"""The shapes scorer's investigation: the tiny Qwen2.5-VL path that did not reach its bar (NOTES.md), its recipe
and its run logs."""

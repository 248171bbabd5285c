"""Node logic with no ComfyUI import: testable with plain torch, numpy and PIL."""

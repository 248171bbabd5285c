"""The SpatialScore model families and what builds, loads and saves them: the Qwen2.5-VL scorer (model.py), the
coords backbone (coords_model.py), the reward head, M-RoPE positions, the reward-token row, the processor, the
tiny offline models, and loading.py (create / load / save a scorer folder)."""

"""What the nodes run on ComfyUI's own classes (these modules import `comfy`, so they load only inside ComfyUI or
beside a ComfyUI checkout, as the in-process tests do): the GRPO policy over the user's MODEL, CLIP and VAE
(policy.py; the families it trains, families.py, with one family_*.py a family beyond Flux), the Best-of-N
Sampler's segmented sampling (segments.py), the shipped shapes generator built with ComfyUI's classes
(shapes_generator.py), and the scorer's placement through ComfyUI's model management (models.py). What needs no
ComfyUI is in ../logic/.
"""

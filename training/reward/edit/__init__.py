"""Edit rewards (SpatialReward): score (instruction, source image, edited image) and say where the edit happened.

    config.py       the edit scorer folder (spatialreward.json): kind "coords" (the shipped shapes-edit scorer),
                    "qwen2_5_vl" (both images in one chat, reward token last) or "judge" (a generative VLM)
    regions.py      edit-region boxes: rasterising, boxes from a change map, IoU
    coords_edit.py  the coords backbone extended to two images, with a change map (region grounding)
    qwen_edit.py    the Qwen2.5-VL two-image reward model (LoRA, as SpatialScore)
    judge*.py       the generative judge: JSON template, robust parsing, weighted geometric mean
    pairs.py        edit pairs: a pairs line with a `source` key
    folder.py       create / save / load edit scorers; shipped ones (assets/shapes-edit)
    scorer.py       EditScorer.score(sources, edited, instructions) -> means, stds, boxes, reasoning
    trainer.py      Gaussian Bradley-Terry + region-grounding training, resumable
    evaluate.py     accuracy overall / by edit kind / by mistake, edit-region IoU
"""

CONFIG_FILE = "spatialreward.json"

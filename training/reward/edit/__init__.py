"""Edit rewards (SpatialReward): score (instruction, source image, edited image) and say where the edit happened.

What is about edits lives here; the rest is the single-image reward's own (pairs reader, folder config reader and
writer, coords encoder, folder loading and saving, trainer loop, CLI printer), used as they are:

    config.py       the edit scorer folder (spatialreward.json, read by ../config.FolderConfig): kind "coords" (the
                    shipped shapes-edit scorer), "qwen2_5_vl" (both images in one chat, reward token last) or
                    "judge" (a generative VLM)
    two_images.py   two images per edit: sources matched to edits, the one size both must have, the two-image chat
    regions.py      edit-region boxes: rasterising, boxes from a change map, IoU
    coords_edit.py  the coords backbone extended to two images, with a change map (region grounding)
    qwen_edit.py    the Qwen2.5-VL two-image reward model (LoRA, as SpatialScore)
    judge*.py       the generative judge: JSON template, robust parsing; aggregate.py: weighted geometric mean
    pairs.py        edit pairs: a pairs line with a `source` key (read by ../train/pairs.read_rows)
    folder.py       create / save / load edit scorers; shipped ones (assets/shapes-edit)
    result.py       what an edit scorer says about a batch of edits
    scorer.py       EditScorer.score(sources, edited, instructions) -> means, stds, boxes, reasoning
    trainer.py      EditTask: edit pairs in the reward trainer's loop (../train/trainer.py), with region grounding
    evaluate.py     accuracy overall / by edit kind / by mistake, edit-region IoU
The command lines' edit branches are ../cli/edit.py.
"""

CONFIG_FILE = "spatialreward.json"

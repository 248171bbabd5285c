"""The shapes-edit world: a source scene, one plain-form edit instruction, edited images and a pixel oracle.

    scene.py         edit scenes (coloured shapes in boxes), rendering, changed regions between two scenes
    instructions.py  the four instruction forms (move / recolour / remove / add), written and parsed
    edits.py         the correct edit of an instruction and its five kinds of mistake
    oracle.py        from pixels alone: did (instruction, source, edited) follow the instruction, what else changed
    build.py         `python -m training.dataset build --world shapes-edit`: resumable edit-pair folders
"""

WORLD = "shapes-edit"

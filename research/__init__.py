"""Research records and tools of this project: diagnostics, paths that did not work, run logs and lab journals.

Never shipped (.comfyignore leaves research/ out of the registry archive). Code here may import `training`; nothing
in `training` or `nodes` imports it."""

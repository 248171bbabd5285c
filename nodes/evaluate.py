"""SpatialScore Evaluate: did the LoRA learn space? The loaded Flux with and without a LoRA on a public spatial prompt
set, from the same noise, judged by SpatialScore (and the order-swapped pairwise judge when the scorer is a plain
Qwen2.5-VL); the win rate with its 95% interval as a badge on the node.

A thin V3 node: the numbers and the report are training/grpo/evaluate's (the command line's); sampling goes through
the GRPO node's policy over the user's MODEL / CLIP / VAE; checks and the badge are nodes/logic/evaluate_node.py.
"""

from __future__ import annotations

from pathlib import Path

import comfy.model_management as mm
import comfy.utils
import folder_paths
import torch
from comfy_api.latest import io

from .common import scorer_input, widget_errors, widget_inputs
from .logic.evaluate_node import (
    NO_LORA,
    RUNS_FOLDER,
    WIDGETS,
    EvaluateSettings,
    badge,
    check_settings,
    lora_family_problem,
    lora_fit_problem,
    node_prompt_set,
    patched_model_problem,
    refuse,
    sample_same_noise,
    shipped_lora,
)
from .logic.widget_limits import accept, not_named
from .logic.widgets import widget_values
from .socket_types import CATEGORY

BATCH = 8  # images sampled at once


def _lora_choices() -> list[str]:
    from training.grpo.shipped import LORAS

    return [NO_LORA, *LORAS, *folder_paths.get_filename_list("loras")]


def _lora_path(name: str) -> Path:
    shipped = shipped_lora(name)
    if shipped is not None:
        return shipped
    if name not in folder_paths.get_filename_list("loras"):  # V3 combos are not checked by the server
        raise ValueError(f"lora_name {name!r}: not in models/loras (nor a shipped LoRA)")
    return Path(folder_paths.get_full_path_or_raise("loras", name))


def _report_folder() -> Path:
    root = Path(folder_paths.get_output_directory()) / RUNS_FOLDER
    root.mkdir(parents=True, exist_ok=True)
    taken = {p.name for p in root.iterdir()}
    return root / next(f"eval_{i:05d}" for i in range(1, 100000) if f"eval_{i:05d}" not in taken)


class SpatialScoreEvaluate(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="SpatialScoreEvaluate",
            display_name="SpatialScore Evaluate (LoRA vs base)",
            category=CATEGORY,
            description="Samples a spatial prompt set with the base MODEL and with the LoRA from the same noise, "
                        "scores every picture with SpatialScore and reports how often the LoRA wins, per prompt, "
                        "with a 95% interval; per relation word and number of objects; the prompts it gained and "
                        "lost most on. Writes output/spatialscore_evaluate/eval_N/report.md.",
            is_output_node=True,
            inputs=[
                io.Model.Input("model", tooltip="The base Flux MODEL (without the LoRA)."),
                io.Clip.Input("clip", tooltip="Its text encoders (Flux: CLIP-L + T5)."),
                io.Vae.Input("vae", tooltip="Its VAE."),
                scorer_input(),
                *widget_inputs(WIDGETS, options={"lora_name": _lora_choices()}),
                io.Model.Input("model_with_lora", optional=True,
                               tooltip="The same base MODEL with a LoRA applied (e.g. LoraLoaderModelOnly), "
                                       "evaluated against `model`."),
            ],
            outputs=[
                io.String.Output("report", display_name="report", tooltip="The report (markdown)."),
                io.Image.Output("gains_losses", display_name="gains_losses",
                                tooltip="The prompts the LoRA gained and lost most on: base above, LoRA below, "
                                        "same noise."),
            ],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def validate_inputs(cls, **inputs) -> bool:
        settings = EvaluateSettings(**{w.name: inputs.get(w.name) for w in WIDGETS})
        # ComfyUI checks no limit of an input validate_inputs takes, and repeats a returned string once per input
        return accept(not_named(check_settings(settings), widget_errors(cls, vars(settings))))

    @classmethod
    def execute(cls, model, clip, vae, scorer, model_with_lora=None, **widgets) -> io.NodeOutput:
        from training.grpo.config import FLUX_LORA_TARGETS
        from training.grpo.evaluate.analysis import analyse
        from training.grpo.evaluate.judge import pairwise_judge, vocabulary_problem
        from training.grpo.evaluate.pictures import save_gains_losses
        from training.grpo.evaluate.report import headline, write_report

        from .comfy.policy import ComfyFlowPolicy

        s = EvaluateSettings(**widget_values(WIDGETS, widgets))
        errors = check_settings(s)
        if errors:
            raise ValueError("; ".join(errors))
        multiple = 2 * int(vae.downscale_ratio)
        for name, value in (("width", s.width), ("height", s.height)):
            if value % multiple:
                raise ValueError(f"{name}: {value} is not a multiple of {multiple} (2 x this VAE's downscale)")
        what, items = node_prompt_set(s)
        prompts = [item.prompt for item in items]
        name = getattr(getattr(scorer, "folder", None), "name", "the scorer")
        problem = vocabulary_problem(scorer.scorer, prompts, f"the scorer {name!r}")
        if problem:
            refuse(problem)
        lora = None if s.lora_name == NO_LORA else _lora_path(s.lora_name)
        if lora is None and model_with_lora is None:
            refuse("nothing to compare: choose a lora_name or connect model_with_lora (the base MODEL with a LoRA)")
        if lora is not None and (problem := lora_family_problem(lora, s.lora_name)):
            refuse(problem)
        if model_with_lora is not None and (problem := patched_model_problem(model, model_with_lora)):
            refuse(problem)

        settings = {"num_steps": s.steps, "guidance": s.guidance, "height": s.height, "width": s.width}
        variants = 1 + (lora is not None) + (model_with_lora is not None)
        total = len(prompts) * s.images_per_prompt * variants
        bar = comfy.utils.ProgressBar(total + 1)
        done = [0]

        def step(n: int) -> None:
            done[0] += n
            bar.update_absolute(done[0], total + 1)  # raises on Cancel

        images: dict[str, torch.Tensor] = {}
        with torch.inference_mode(False), torch.no_grad():
            policies = []
            if lora is not None:
                policies.append(_lora_policy(ComfyFlowPolicy, model, clip, vae, lora, s.lora_name))
            else:
                policies.append(("base", ComfyFlowPolicy(model, clip, vae, lora_rank=1, lora_alpha=1.0,
                                                         lora_targets=list(FLUX_LORA_TARGETS)), False))
            if model_with_lora is not None:
                policies.append(("model_with_lora", ComfyFlowPolicy(model_with_lora, clip, vae, lora_rank=1,
                                                                    lora_alpha=1.0,
                                                                    lora_targets=list(FLUX_LORA_TARGETS)), False))
            for label, policy, has_lora in policies:
                runs = {}
                for with_lora in ([False, True] if has_lora else [False]):
                    key = label if with_lora or not has_lora else "base"
                    runs[key] = torch.stack([sample_same_noise(policy, prompts, settings, s.seed + j, BATCH,
                                                               with_lora, step)
                                             for j in range(s.images_per_prompt)], dim=1)  # fmt: skip
                images.update(runs)
                mm.throw_exception_if_processing_interrupted()
        images = {"base": images.pop("base"), **images}

        judge, judge_why = pairwise_judge(getattr(scorer.scorer, "model", None))
        scorer.placement.load(scorer.scorer)
        try:
            report = analyse(items, images, scorer.scorer.score, judge=judge, judge_why=judge_why)
        finally:
            if not scorer.keep_loaded:
                scorer.placement.offload(scorer.scorer)
        bar.update_absolute(total + 1, total + 1)
        out = _report_folder()
        model_kind = type(getattr(model.model, "model_config", model)).__name__
        report = {"prompt_set": what, "model": model_kind, "scorer": scorer.describe(),
                  "seed": s.seed, "settings": settings, **report}  # fmt: skip
        out.mkdir(parents=True, exist_ok=True)
        pictures = save_gains_losses(report, images, out)
        report["pictures"] = [p.name for p in pictures]
        write_report(report, out)
        text = (out / "report.md").read_text(encoding="utf-8")
        grid = _image(pictures[0]) if pictures else images["base"][:1, 0]
        line = f"{headline(report)} (report: output/{RUNS_FOLDER}/{out.name}/report.md)"
        return io.NodeOutput(text, grid, ui={"spatialscore_evaluate": [badge(report)], "text": [line, text]})


def _lora_policy(policy_class, model, clip, vae, path: Path, shown: str):
    """A policy over the base MODEL with the LoRA file's own adapter; the LoRA is checked against the model before
    any sampling (refused with one line when it was made for another model)."""
    from safetensors.torch import load_file

    from training.grpo.shipped import lora_file_spec

    rank, targets = lora_file_spec(path)
    try:
        policy = policy_class(model, clip, vae, lora_rank=rank, lora_alpha=float(rank), lora_targets=targets)
    except ValueError as exc:  # lora_layout: the LoRA's module names are none of this Flux's
        refuse(f"lora_name {shown!r}: made for another model ({exc})")
    state = load_file(str(path))
    problem = lora_fit_problem(policy, state, shown)
    if problem:
        refuse(problem)
    policy.load_lora_state_dict(state)
    return Path(shown).stem if shown.endswith(".safetensors") else shown, policy, True


def _image(path: Path) -> torch.Tensor:
    import numpy as np
    from PIL import Image

    with Image.open(path) as im:
        return torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0)[None]

"""SpatialScore GRPO Train: Spatial GRPO on the user's loaded flow model (Flux, Qwen-Image, SD3.5 or Chroma: MODEL, CLIP,
VAE) against a SpatialScore scorer.

A thin V3 node: the run is training.grpo.trainer.train with a ComfyUI policy (nodes/comfy/policy.py); the
widgets (declared once, WIDGETS), the settings' checks, the LoRA's publication and the chart data are in
nodes/logic/grpo_node.py.
"""

from __future__ import annotations

import logging
from pathlib import Path

import comfy.model_management as mm
import comfy.sd
import comfy.utils
import folder_paths
import torch
from comfy_api.latest import io

from .comfy.models import free_for_sampling
from .common import scorer_input, widget_errors, widget_inputs
from .logic.grpo_node import (
    BAR_PER_STEP,
    WIDGETS,
    HandleScorer,
    NodeSettings,
    bar_value,
    build_config,
    cancelled_text,
    chart_point,
    check_settings,
    check_size_for_vae,
    checkpoint_step,
    curve_image,
    existing_run_problem,
    finished_text,
    lora_metadata,
    phase_text,
    prompt_lines,
    publish_lora,
    run_folder,
    sample_batch_size,
)
from .logic.memory_check import check_grpo
from .logic.widget_limits import accept
from .logic.widgets import widget_values
from .socket_types import CATEGORY

CHART_EVENT = "spatialscore.grpo.progress"
STATUS_EVENT = "spatialscore.grpo.status"  # one line under the chart: the phase in progress, what Cancel saved


def _loras_dir() -> str:
    return folder_paths.get_folder_paths("loras")[0]


def _send(event: str, node_id, data: dict) -> None:
    try:
        from server import PromptServer

        PromptServer.instance.send_sync(event, {"node": str(node_id), **data})
    except Exception as exc:  # noqa: BLE001 - no server (tests, scripts): the chart and its line are only a view
        logging.debug("SpatialScore: %s not sent: %s", event, exc)


def _send_chart(node_id, point: dict) -> None:
    _send(CHART_EVENT, node_id, {"point": point})


def _send_status(node_id, text: str, kind: str) -> None:
    """kind: 'phase' (training), 'saved' (what Cancel left), 'problem' (why the run did not start)."""
    _send(STATUS_EVENT, node_id, {"text": text, "kind": kind})


def _latest_grid(run_dir: Path):
    from PIL import Image

    grids = sorted((run_dir / "samples").glob("step_*.png"))
    return ("JPEG", Image.open(grids[-1]).convert("RGB"), 512) if grids else None


class SpatialScoreGRPOTrain(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="SpatialScoreGRPOTrain",
            display_name="SpatialScore GRPO Train (flow-model LoRA)",
            category=CATEGORY,
            description="Trains a LoRA on the loaded Flux, Qwen-Image, SD3.5 or Chroma with Spatial GRPO: samples "
                        "groups of images per prompt, "
                        "scores them with SpatialScore, and reinforces the better-placed ones. Writes "
                        "models/loras/<lora_name>.safetensors; checkpoints every step, so an interrupted run resumes.",
            is_output_node=True,
            inputs=[
                io.Model.Input("model", tooltip="The Flux, Qwen-Image, SD3.5 (or SD3) or Chroma diffusion model to "
                                                 "train a LoRA for (e.g. from Load Diffusion Model); other models are "
                                                 "refused. It is not changed; the output MODEL carries the LoRA."),
                io.Clip.Input("clip", tooltip="The model's text encoders (Flux: CLIP-L + T5, DualCLIPLoader type flux; "
                                               "Qwen-Image: Qwen2.5-VL, CLIPLoader type qwen_image; SD3.5: CLIP-L + "
                                               "CLIP-G + T5, TripleCLIPLoader or the checkpoint's; Chroma: T5, "
                                               "CLIPLoader type chroma): the prompts are encoded once each."),
                io.Vae.Input("vae", tooltip="The model's VAE: decodes the samples the scorer judges."),
                scorer_input(),
                io.Conditioning.Input("negative", optional=True,
                                      tooltip="Qwen-Image, SD3.5 and Chroma (true CFG, when guidance > 1): the "
                                              "negative prompt's conditioning; without it the prompt \" \" (Qwen-Image) "
                                              "or \"\" (SD3.5, Chroma) is encoded. Flux ignores it (its guidance is "
                                              "distilled)."),
                *widget_inputs(WIDGETS),
            ],
            outputs=[
                io.Model.Output("model_out", display_name="MODEL", tooltip="The input MODEL with the trained LoRA."),
                io.String.Output("lora_file", display_name="lora_name",
                                 tooltip="The LoRA's file name in models/loras (for LoraLoaderModelOnly)."),
                io.Image.Output("reward_curve", display_name="reward_curve",
                                tooltip="Reward mean +- std, kept samples' reward and eval reward per step."),
                io.Image.Output("samples", display_name="eval_samples",
                                tooltip="The evaluation prompts sampled with the trained LoRA (fixed noise)."),
            ],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def validate_inputs(cls, **inputs) -> bool:
        # **inputs: every widget is checked here against its schema limits (ComfyUI then checks none of them); a
        # missing input is ComfyUI's own error
        errors = widget_errors(cls, inputs)
        if not errors and all(w.optional or inputs.get(w.name) is not None for w in WIDGETS):
            errors = check_settings(NodeSettings(**widget_values(WIDGETS, inputs)))
        return accept(errors)

    @classmethod
    def execute(cls, model, clip, vae, scorer, negative=None, **widgets) -> io.NodeOutput:
        from training.grpo.config import SampleConfig
        from training.grpo.eval_step import eval_images
        from training.grpo.trainer import train

        from .comfy.families import TRUE_CFG, comfy_policy, default_lora_targets, family_of, spatial_ratio

        family = family_of(model)  # one line naming the trainable families, before anything runs
        settings = NodeSettings(**widget_values(WIDGETS, widgets))
        errors = check_settings(settings)
        if errors:
            raise ValueError("; ".join(errors))
        check_size_for_vae(settings.width, settings.height, spatial_ratio(vae))
        true_cfg = family in TRUE_CFG and SampleConfig().guidance > 1  # the node samples at the trainer's guidance
        train_rows = check_grpo(model, vae, settings.group_size, sample_batch_size, settings.width, settings.height,
                                settings.sampling_steps, free_for_sampling(), settings.lora_rank,
                                true_cfg=true_cfg)  # fmt: skip
        node_id = cls.hidden.unique_id if cls.hidden is not None else None
        run_dir = run_folder(folder_paths.get_output_directory(), settings.lora_name)
        problem = existing_run_problem(run_dir, settings.lora_name, settings.resume)
        if problem:
            _send_status(node_id, problem, "problem")
            raise ValueError(problem)
        config = build_config(settings, run_dir)
        config.train.batch_size = train_rows  # micro-batch 1 where 2 does not fit: the same update (accumulated)
        prompts = prompt_lines(settings.prompts)
        bar = comfy.utils.ProgressBar(settings.steps * BAR_PER_STEP)
        records: list[dict] = []

        def on_progress(step: int, phase: str, done: int, total: int) -> None:
            _send_status(node_id, phase_text(step, settings.steps, phase, done, total), "phase")
            bar.update_absolute(bar_value(step, phase, done, total))  # raises on Cancel, mid-step

        def on_step(record: dict) -> None:
            records.append(record)
            _send_chart(node_id, chart_point(record))
            # raises on Cancel: the trainer has already checkpointed this step
            bar.update_absolute(record["step"] * BAR_PER_STEP, preview=_latest_grid(run_dir))
            mm.throw_exception_if_processing_interrupted()

        base_name = getattr(getattr(model.model, "model_config", None), "__class__", type(model)).__name__
        scorer_name = scorer.describe() if hasattr(scorer, "describe") else type(scorer).__name__
        with torch.inference_mode(False), torch.enable_grad():
            config.lora.targets = default_lora_targets(family)
            policy = comfy_policy(model, clip, vae, negative=negative, lora_rank=settings.lora_rank,
                                  lora_alpha=settings.lora_alpha, lora_targets=config.lora.targets,
                                  seed=settings.seed)  # fmt: skip
            # the run's config.json records the model as ComfyUI loaded it, not the headless defaults
            config.model.dtype = str(policy.dtype).removeprefix("torch.")
            config.model.gradient_checkpointing = policy.gradient_checkpointing
            try:
                result = train(config, resume=settings.resume, policy=policy, scorer=HandleScorer(scorer),
                               callback=on_step, progress=on_progress)  # fmt: skip
            except mm.InterruptProcessingException:
                saved = _publish_latest_checkpoint(run_dir, settings.lora_name, base_name, scorer_name, prompts,
                                                   config)  # fmt: skip
                _send_status(node_id, cancelled_text(settings.lora_name, saved, settings.steps), "saved")
                raise
            state = policy.lora_state_dict()
            final = next((r["reward_mean"] for r in reversed(result.records) if "reward_mean" in r), None)
            publish_lora(state, _loras_dir(), settings.lora_name,
                         lora_metadata(base_name, scorer_name, prompts, result.step, final, config))
            samples = eval_images(policy, prompts[: config.prompts.num_eval], config)
        from training.grpo.reports import MetricsLog

        all_records = MetricsLog(run_dir / "metrics.jsonl").records()
        curve = curve_image(all_records, run_dir / "reward_curve_node.png")
        trained = comfy.sd.load_lora_for_models(model, None, state, 1.0, 0.0)[0]
        file_name = f"{settings.lora_name}.safetensors"
        chart = [chart_point(r) for r in all_records]
        status = finished_text(file_name, result.step, final)
        return io.NodeOutput(trained, file_name, curve, samples, ui={"spatialscore_grpo": chart, "text": [status]})


def _publish_latest_checkpoint(run_dir: Path, name: str, base_name: str, scorer_name: str, prompts: list[str],
                               config) -> int | None:
    """After an interrupt: the last checkpoint's LoRA becomes models/loras/<name> (whole, or nothing written).
    Returns that checkpoint's step, None when there is none."""
    from safetensors.torch import load_file

    from training.grpo.checkpoint import list_checkpoints

    checkpoints = list_checkpoints(run_dir)
    if not checkpoints or not (checkpoints[-1] / "lora.safetensors").is_file():
        return None
    step = checkpoint_step(checkpoints[-1])
    publish_lora(load_file(str(checkpoints[-1] / "lora.safetensors")), _loras_dir(), name,
                 lora_metadata(base_name, scorer_name, prompts, step, None, config))
    logging.info("SpatialScore GRPO: interrupted after step %d; %s.safetensors is that checkpoint's LoRA", step, name)
    return step

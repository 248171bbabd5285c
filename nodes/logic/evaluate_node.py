"""What the Evaluate node does besides ComfyUI's calls (testable without ComfyUI): its settings and their errors, the
prompt set, the LoRA checks, sampling the variants from the same noise, and the badge.

The numbers are the headless evaluation's (training/grpo/evaluate/analysis.py: the same scores, paired win rates,
pairwise judge, oracle rates and report); the node only samples with the user's MODEL / CLIP / VAE through the GRPO
node's policy (nodes/comfy/policy.py), with the noise the command line gives the same prompt index and seed.
"""

from __future__ import annotations

import contextlib

import torch

# inside ComfyUI the pack is not on sys.path: this puts its `training` package in sys.modules first
from .training_import import import_training
from .widgets import Widget, limits, settings_class

import_training("grpo")
from training.grpo.evaluate.benches import BENCHES, load_bench  # noqa: E402
from training.grpo.evaluate.formats import PromptItem  # noqa: E402
from training.grpo.evaluate.judge import EvaluationInputError  # noqa: E402
from training.grpo.lora import PREFIX  # noqa: E402
from training.grpo.sampling import sample_generators, sample_trajectories  # noqa: E402
from training.grpo.shipped import LORAS, AssetError, lora_file_spec  # noqa: E402

CUSTOM = "custom"
PROMPT_SETS = [*BENCHES, CUSTOM]
NO_LORA = "none"
SIZE_MULTIPLE = 16  # Flux's 2x2 latent patches of a VAE that downsamples 8x (the shapes VAE 4x)
RUNS_FOLDER = "spatialscore_evaluate"
# The node's widgets, declared once: the schema's inputs (after model, clip, vae and scorer), EvaluateSettings, the
# names validate_inputs and execute read and the LIMITS check_settings uses are made from this table.
WIDGETS = (
    Widget("prompt_set", str, PROMPT_SETS[0], options=tuple(PROMPT_SETS),
           tooltip="shapes-heldout: the shapes world (the built-in shapes scorers read it; the pixel oracle joins the "
                   "report). geneval-position, t2i-compbench-spatial, unigenbench-layout, dpg: public sets shipped "
                   "with the pack (need a Qwen2.5-VL scorer). custom: the prompts below."),
    Widget("custom_prompts", str, "", multiline=True, tooltip="With prompt_set 'custom': one prompt a line."),
    Widget("num_prompts", int, 16, min=0, max=100000,
           tooltip="The first N prompts of the set (0: all). Each is sampled once per variant and image."),
    Widget("images_per_prompt", int, 1, min=1, max=64,
           tooltip="Images per prompt and variant; image j has the same noise in every variant."),
    Widget("seed", int, 0, min=0, max=2**31 - 1, control_after_generate=False,
           tooltip="Noise seed: prompt i's image j uses the noise the command line gives it for seed + j."),
    Widget("steps", int, 28, min=1, max=1000, tooltip="Euler (ODE) denoising steps."),
    Widget("guidance", float, 3.5, min=0.0, max=100.0, step=0.1,
           tooltip="Flux guidance (FLUX.1-dev: 3.5; a model without a guidance input ignores it)."),
    Widget("width", int, 1024, min=SIZE_MULTIPLE, max=4096, step=16, tooltip="Picture width in pixels."),
    Widget("height", int, 1024, min=SIZE_MULTIPLE, max=4096, step=16, tooltip="Picture height in pixels."),
    Widget("lora_name", str, NO_LORA, options=(),  # the shipped LoRAs and models/loras: the node lists them
           tooltip="A LoRA written by the GRPO node or `python -m training.grpo` (models/loras, or the shipped "
                   "shapes-grpo or shapes-fast), applied to `model`. For a LoRA in another format, use "
                   "LoraLoaderModelOnly and model_with_lora."),
)
EvaluateSettings = settings_class("EvaluateSettings", WIDGETS, __name__,
                                  "The Evaluate node's widget values, one field per widget.")
# The server does not hold a saved workflow to a widget's min/max (ENVIRONMENT.md): the limits are checked here.
LIMITS = limits(WIDGETS, "images_per_prompt", "steps", "width", "height", "num_prompts")


def check_settings(s: EvaluateSettings) -> list[str]:
    """Every impossible setting, each as one line naming the input."""
    errors = []
    if s.prompt_set not in PROMPT_SETS:
        errors.append(f"prompt_set: {s.prompt_set!r}; choose one of {', '.join(PROMPT_SETS)}")
    elif s.prompt_set == CUSTOM and not custom_lines(s.custom_prompts):
        errors.append("custom_prompts: prompt_set is 'custom' but no prompt is given (one prompt a line)")
    for name, (low, high) in LIMITS.items():
        value = getattr(s, name)
        if not low <= value <= high:
            errors.append(f"{name}: {value}; expected {low} to {high}" + (" (0: all)" if name == "num_prompts" else ""))
    for name, value in (("width", s.width), ("height", s.height)):
        if value % SIZE_MULTIPLE:
            errors.append(f"{name}: {value} is not a multiple of {SIZE_MULTIPLE} (Flux's 2x2 latent patches)")
    if not -1e4 <= s.guidance <= 1e4:
        errors.append(f"guidance: {s.guidance}; expected a finite number")
    return errors


def custom_lines(text: str) -> list[str]:
    return [" ".join(line.split()) for line in (text or "").splitlines() if line.strip()]


def node_prompt_set(s: EvaluateSettings) -> tuple[str, list[PromptItem]]:
    """(a description, the first num_prompts items; 0 = all) of the chosen set."""
    if s.prompt_set == CUSTOM:
        items = [PromptItem(p, str(i)) for i, p in enumerate(custom_lines(s.custom_prompts))]
        what = "custom prompts"
    else:
        items, what = load_bench(s.prompt_set), BENCHES[s.prompt_set].what
    if 0 < s.num_prompts < len(items):
        what += f", the first {s.num_prompts} of {len(items)}"
        items = items[: s.num_prompts]
    return what, items


def shipped_lora(name: str):
    return LORAS.get(name)


def lora_family_problem(path, shown: str) -> str:
    """'' for a FLUX LoRA in diffusers keys (what the pack writes), else why the node cannot apply it by name."""
    try:
        lora_file_spec(path)
    except AssetError:
        return (f"lora_name {shown!r}: not a FLUX LoRA in diffusers keys (transformer.<block>.<module>.lora_A."
                "weight), so it is for another model family or in another key format; load it with "
                "LoraLoaderModelOnly and connect that MODEL to model_with_lora instead")  # fmt: skip
    return ""


def lora_fit_problem(policy, state: dict[str, torch.Tensor], shown: str) -> str:
    """'' when the LoRA's tensors are exactly the policy's adapter (built from the file's rank and targets): every
    one has a place of its size, and every adapted module of this model has its tensors; else one line why not."""
    params = {f"{PREFIX}{n}.weight": p for n, p in policy.named_trainable_parameters().items()}
    problems = []
    for key, tensor in sorted(state.items()):
        target = params.get(key)
        if target is None:
            problems.append(f"{key[len(PREFIX):].rsplit('.lora_', 1)[0]} is not a module of this model")
        elif tuple(target.shape) != tuple(tensor.shape):
            problems.append(f"{key[len(PREFIX):]} is {tuple(tensor.shape)} in the LoRA, {tuple(target.shape)} here")
    missing = sorted(set(params) - set(state))
    if missing:
        problems.append(f"this model has {len(missing)} more adapted tensors than the LoRA (e.g. "
                        f"{missing[0][len(PREFIX):]})")
    if problems:
        return (f"lora_name {shown!r}: made for another model: {len(problems)} problems fitting its {len(state)} "
                f"tensors to this MODEL ({problems[0]})")  # fmt: skip
    return ""


def patched_model_problem(base, with_lora) -> str:
    """'' when `with_lora` is the base MODEL with patches of its own (a LoRA applied), else one line why not."""
    is_clone = getattr(with_lora, "is_clone", None)
    if is_clone is None or not is_clone(base):
        return ("model_with_lora: not the base MODEL with a LoRA (a different model); connect the MODEL output of "
                "a LoRA loader fed by the same model")  # fmt: skip
    own = sum(len(v) for v in getattr(with_lora, "patches", {}).values())
    if own <= sum(len(v) for v in getattr(base, "patches", {}).values()):
        return ("model_with_lora: carries no LoRA weights beyond the base MODEL's (a LoRA whose keys matched none "
                "of this model's weights is applied as nothing: one for another model family?)")  # fmt: skip
    return ""


def sample_same_noise(policy, prompts: list[str], settings: dict, seed: int, batch_size: int, with_lora: bool,
                      progress=None) -> torch.Tensor:  # fmt: skip
    """Images [N, H, W, 3] at noise 0, prompt i from `sample_eval`'s noise for (seed, i), as the command line.

    Batches hold prompts whose text encodes to one length (ComfyUI's T5 pads to 256 tokens, longer prompts are
    longer, and Flux has no text mask), so the batch never changes a picture beyond float noise."""
    for prompt in dict.fromkeys(prompts):
        policy.encode_prompts([prompt])  # cached: now each prompt's length is known
    lengths = [policy.encode_prompts([p]).prompt_embeds.shape[1] for p in prompts]
    sigmas = policy.sigmas(settings["num_steps"], settings["height"], settings["width"])
    out: list[torch.Tensor | None] = [None] * len(prompts)
    context = contextlib.nullcontext() if with_lora else policy.reference()
    with context, torch.no_grad():
        for length in dict.fromkeys(lengths):
            group = [i for i, n in enumerate(lengths) if n == length]
            for first in range(0, len(group), batch_size):
                chunk = group[first:first + batch_size]
                trajectories = sample_trajectories(
                    policy, policy.encode_prompts([prompts[i] for i in chunk]),
                    sample_generators(seed, 0, chunk, stream="eval"), sigmas, [0.0] * settings["num_steps"],
                    guidance=settings["guidance"], height=settings["height"], width=settings["width"])  # fmt: skip
                for i, image in zip(chunk, policy.decode(trajectories.latents[:, -1]), strict=True):
                    out[i] = image
                if progress is not None:
                    progress(len(chunk))
    return torch.stack(out)


def badge(report: dict) -> dict:
    """The node's badge: the first LoRA against the base by the scorer (and the judge and the oracle when there)."""
    pair = next(p for p in report["pairs"] if p["a"] == "base")
    s = pair["scorer"]
    out = {"label": f"{pair['b']} vs {pair['a']}", "win_rate": s["win_rate"], "low": s["low"], "high": s["high"],
           "prompts": s["prompts"], "mean_gain": s["mean_gain"]}  # fmt: skip
    if "win_rate" in pair["judge"]:
        out["judge"] = {k: pair["judge"][k] for k in ("win_rate", "low", "high")}
    if "oracle_all_ok" in pair:
        out["oracle"] = {"a": pair["oracle_all_ok"]["a_rate"], "b": pair["oracle_all_ok"]["b_rate"]}
    return out


def refuse(message: str) -> None:
    raise EvaluationInputError(message)

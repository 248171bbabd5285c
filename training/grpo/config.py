"""The GRPO run configuration: dataclasses, TOML loading and command-line overrides.

Every field lives here, with its default and its meaning. A run is: defaults <- a TOML file (a shipped preset or
the user's) <- `--section.field value` flags. Unknown fields and wrong types are refused while loading; everything
else a user can get wrong (a group that does not split into micro-batches, top_k > G/2, a missing model folder)
is checked by validation.py, all problems at once, before any model is loaded. The TOML / override machinery
shared with the other stages is training/common/config_loading.py.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from ..common.config_loading import ConfigSchema
from .validation import ConfigError, check_paths, check_world, validate

CONFIG_DIR = Path(__file__).parent / "configs"
PRESETS = {"flux_dev_spatial": CONFIG_DIR / "flux_dev_spatial.toml", "tiny": CONFIG_DIR / "tiny.toml",
           "shapes": CONFIG_DIR / "shapes.toml", "shapes_fast": CONFIG_DIR / "shapes_fast.toml",
           "tiny_qwen_image": CONFIG_DIR / "tiny_qwen_image.toml",
           "qwen_image_spatial": CONFIG_DIR / "qwen_image_spatial.toml"}
TINY = "@tiny"  # a model path meaning "build a tiny random model of the real architecture" (tests, demos)
TINY_QWEN_IMAGE = "@tiny_qwen_image"  # the same for a tiny QwenImagePipeline (training/common/tiny_qwen_image.py)
TINY_MODELS = (TINY, TINY_QWEN_IMAGE)

FLUX_LORA_TARGETS = [
    # double-stream blocks (transformer_blocks.N.*): image and text attention, image and text feed-forward
    "attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0",
    "attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj", "attn.to_add_out",
    "ff.net.0.proj", "ff.net.2", "ff_context.net.0.proj", "ff_context.net.2",
    # single-stream blocks (single_transformer_blocks.N.*): attention and the fused MLP in / out projections
    "proj_mlp", "proj_out",
]  # fmt: skip


@dataclass
class ModelConfig:
    path: str = ""  # a FluxPipeline folder (model_index.json), local_files_only; "shapes" (shipped); "@tiny" (tests)
    dtype: str = "bfloat16"  # transformer, VAE and text encoder weights; LoRA weights always train in float32
    # How the transformer's frozen block weights are stored: "default" (in `dtype`), "fp8_e4m3fn" or "fp8_e5m2"
    # (ComfyUI's UNETLoader names), cast to `dtype` layer by layer where used (diffusers' layerwise casting hooks,
    # chosen because the model's forward, peft LoRA and checkpointing run unchanged; weight_storage.py). Halves a
    # bf16 FLUX.1-dev (22.2 -> 11.1 GiB); the LoRA, its gradients and AdamW stay fp32; computation stays in `dtype`.
    weight_dtype: str = "default"
    device: str = "auto"  # "auto": the GPU accelerate assigns to this process (the CPU without GPUs); or "cpu"
    gradient_checkpointing: bool = True
    offload_text_encoders: bool = True  # keep CLIP/T5 on the CPU, on the device only while encoding new prompts
    # Phases apart: the transformer (and its LoRA) goes to the CPU while CLIP/T5 encode new prompts (with
    # offload_text_encoders) and while the scorer scores, so that neither T5-XXL (9.1 GiB) nor the 7B scorer (15.5
    # GiB) shares the card with it (24 GB cards with weight_dtype fp8: docs/memory_plan.md). Costs two host-device
    # copies of the transformer per reward phase (11 GiB in fp8: about 1 s over PCIe 4, against ~130 s a step).
    offload_transformer: bool = False
    vae_batch_size: int = 4  # decode latents in slices of this many images
    # T5 tokens. 0 (auto): the length the model declares (a shipped generator's spatialscore_generator.json), else
    # the smallest multiple of 64 that holds the run's longest prompt, at most 512. Why not FluxPipeline's 512:
    # T5 and the transformer's joint attention pay for every padding token, and 77-token spatial prompts in 512
    # slots spend most of each forward on padding (about 4x the text compute, and 1024 -> 1152 joint tokens
    # instead of 1536 at 512x512). The padding changes FLUX.1-dev's output slightly (T5 runs without a mask);
    # sampling, training and export all use the same length, so the policy GRPO trains is the policy it samples.
    max_sequence_length: int = 0
    # Shard the transformer's frozen weights over the processes with FSDP (torch fully_shard; sharding.py): for a
    # policy that does not fit one card beside its activations (Qwen-Image, 41 GB). The LoRA stays replicated.
    fsdp: bool = False


@dataclass
class RewardConfig:
    # a SpatialScore folder (spatialscore.json), a Qwen2.5-VL folder (zero-shot), a shipped scorer ("shapes"),
    # "@tiny", or "oracle:shapes": the shapes world's pixel oracle as the reward (an upper bound for ablations)
    path: str = ""
    device: str = "auto"  # "auto": the policy's device; or e.g. "cpu", "cuda:1"
    dtype: str = "bfloat16"
    batch_size: int = 8
    std_penalty: float = 0.0  # reward = mean - std_penalty * std of the scorer's Gaussian
    keep_loaded: bool = True  # False: move the scorer off the accelerator after every reward phase


@dataclass
class PromptConfig:
    train_file: str = ""  # .txt (one prompt a line) or .jsonl (a "prompt" field a line)
    eval_file: str = ""  # fixed evaluation prompts for sample grids; default: the first num_eval train prompts
    num_eval: int = 4  # eval prompts used: the first N of eval_file (0: no evaluation)
    per_step: int = 1  # P: prompts (groups of G samples) per GRPO step, over all processes


@dataclass
class SampleConfig:
    group_size: int = 24  # G
    num_steps: int = 6
    height: int = 512
    width: int = 512
    guidance: float = 3.5  # Flux-dev's distilled guidance, an embedding: one forward per step
    # Qwen-Image (no guidance embedding) uses `guidance` as true CFG's scale, on when > 1, against this negative
    # prompt: two forwards per step, in sampling and in the recomputed log-probs. Flux ignores it.
    negative_prompt: str = " "
    noise_level: float = 0.9  # a in std_t = a * sqrt(sigma / (1 - sigma))
    sde_type: str = "sde"  # "sde" (Flow-GRPO) or "cps" (coefficients-preserving sampling)
    batch_size: int = 8  # per-device sampling micro-batch; must divide group_size
    ode_outside_window: bool = False  # deterministic (noise 0) steps where no timestep is trained
    eval_noise_level: float = 0.0  # sample grids use the ODE by default
    # every step at noise 0 (the ODE): only for train.algorithm nft / awm, which need no log-probs (DiffusionNFT's
    # config/nft.py samples with sample.deterministic = True)
    deterministic: bool = False


@dataclass
class TrainConfig:
    steps: int = 300  # GRPO steps (P groups sampled, scored and trained on)
    top_k: int = 6  # keep the top_k and bottom_k samples of each group; 0 keeps all
    adv_std: str = "group"  # "group" or "global" standard deviation for the advantages
    adv_clip: float = 5.0
    clip_range: float = 1e-4  # PPO ratio clip; log-probs are per-element means, so ratios stay near 1
    # KL weight, to the same transformer with the LoRA disabled. The KL is the exact one between the step's two
    # Gaussians, mean((mu - mu_ref)^2 / (2 std^2)) with std = std_t * sqrt(-dt) the whole step's std (loss.py);
    # Flow-GRPO divides by std_t^2 only, so at 6 steps (-dt 0.1-0.25) this KL is 4-10x Flow-GRPO's at the same
    # beta. Default 0: Flow-GRPO's FLUX configs use no KL, and the paper states a KL penalty without its weight.
    beta: float = 0.0
    learning_rate: float = 3e-4
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    weight_decay: float = 1e-4
    adam_eps: float = 1e-8
    max_grad_norm: float = 1.0
    batch_size: int = 2  # per-device training micro-batch
    updates_per_step: int = 1  # optimizer steps per GRPO step: the kept samples are split into this many chunks
    timestep_fraction: float = 1.0  # train on the first int(fraction * num_steps) steps (truncated, as Flow-GRPO)
    timestep_window: list[int] = field(default_factory=list)  # [start, end) step indices; overrides the fraction
    seed: int = 0
    # "flow_grpo" (Flow-GRPO, arXiv 2505.05470: the PPO ratio of the SDE steps' log-probs, loss.py), "nft"
    # (DiffusionNFT, arXiv 2509.16117: the flow-matching loss on implicit positive / negative policies, nft_loss.py)
    # or "awm" (Advantage Weighted Matching, arXiv 2509.25050: the flow-matching loss times the advantage,
    # awm_loss.py). nft and awm train on the clean samples with fresh noise at the sigmas of the trained steps
    # (forward_rl.py); the prompts, sampling, rewards, advantages (top_k, adv_std, adv_clip), LoRA, EMA and
    # checkpoints are shared. `beta` is then their KL weight on the velocities, mean((v - v_ref)^2), as in both codes.
    algorithm: str = "flow_grpo"
    # DiffusionNFT's mixing beta of v+- = v_old +- beta (v_theta - v_old) (NVlabs/DiffusionNFT config/nft.py:
    # config.beta = 1.0, 0.1 for OCR). Its KL weight there is train.beta = 1e-4 and adv_clip_max = 5 (config/base.py).
    nft_beta: float = 1.0
    # AWM's per-sample matching weight: "uniform" or "t" (Flow-Factory trainers/awm.py: awm_weighting, default
    # "Uniform"; kl_beta default 0)
    awm_weighting: str = "uniform"
    # EMA of the LoRA weights for evaluation and export (0: off). Flow-GRPO's FLUX runs keep one; ema.py says why.
    ema_decay: float = 0.0
    # the decay of update n is min(ema_decay, (1 + n) / (10 + n)), as Flow-GRPO's EMA (flow_grpo/ema.py,
    # get_current_decay); off by default, so the shipped `shapes` run is unchanged (ema.py says what it fixes)
    ema_warmup: bool = False
    # Stop after the step in which this many minutes of this run have passed (0: off); the stop is a normal last
    # step (evaluation, checkpoint, export). For comparisons at equal compute (the ablations of research/shapes_grpo/journal.md).
    time_budget_minutes: float = 0.0


@dataclass
class LoraConfig:
    rank: int = 32
    alpha: float = 32.0  # the exported file folds alpha / rank into lora_B, so every loader sees the same delta
    targets: list[str] = field(default_factory=lambda: list(FLUX_LORA_TARGETS))  # module names inside each block
    init_from: str = ""  # optional .safetensors LoRA (diffusers keys) to start from


@dataclass
class OutputConfig:
    dir: str = "runs/grpo"
    checkpoint_every: int = 10  # steps; 0: only at the end
    keep_checkpoints: int = 2
    eval_every: int = 10  # sample grid of the eval prompts every N steps; 0: only at the start and the end
    # "shapes": judge the eval samples with the shapes world's pixel oracle (metrics only, never the reward)
    oracle: str = ""


@dataclass
class GRPOConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    prompts: PromptConfig = field(default_factory=PromptConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    lora: LoraConfig = field(default_factory=LoraConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def trained_steps(self) -> list[int]:
        """The sampling-step indices the loss trains on."""
        n = self.sample.num_steps
        if self.train.timestep_window:
            start, end = self.train.timestep_window
            return list(range(start, end))
        return list(range(max(1, int(self.train.timestep_fraction * n + 1e-9))))


# ---------------------------------------------------------------------------------------------------- loading

SCHEMA = ConfigSchema(
    root=GRPOConfig,
    error=ConfigError,
    path_fields={"model": ("path",), "reward": ("path",), "prompts": ("train_file", "eval_file"), "lora": ("init_from",)},
)


def load_config(
    path: str | Path | None = None, preset: str | None = None, overrides: dict[str, object] | None = None
) -> GRPOConfig:
    """Defaults <- preset or TOML file <- overrides {"section.field": value}; then `validate`."""
    config = SCHEMA.load(path, preset, PRESETS, overrides)
    validate(config)
    return config


__all__ = ["ConfigError", "GRPOConfig", "check_paths", "check_world", "load_config", "validate", "PRESETS", "TINY",
           "TINY_MODELS", "TINY_QWEN_IMAGE"]

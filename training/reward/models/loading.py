"""Load, create and save SpatialScore models, from local folders only.

Three kinds of folder are accepted wherever a scorer is asked for:
- a trained scorer folder (spatialscore.json, see ../config.py), on Qwen2.5-VL or on the coords backbone;
- a plain Qwen2.5-VL checkpoint folder (config.json of model_type qwen2_5_vl): zero-shot mode;
- the name of a scorer shipped with the package (see `shipped_scorers`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ...common.atomic import atomic_dir
from ...common.os_errors import os_errors_name
from ..config import (
    ADAPTER_DIR,
    CONFIG_FILE,
    DEFAULT_ZERO_SHOT_USER,
    HEAD_FILE,
    MODEL_DIR,
    PROCESSOR_DIR,
    HeadConfig,
    LoraSettings,
    ScorerConfig,
    ScorerFolderError,
    Template,
)
from .head import RewardHead
from .model import SpatialScoreModel, text_decoder_layers

ASSETS = Path(__file__).parents[1] / "assets"
QWEN_VL_TYPES = ("qwen2_5_vl",)


def shipped_folders(config_file: str = CONFIG_FILE) -> dict[str, Path]:
    """Folders that ship inside the package (../assets/<name>/) holding `config_file`, by name."""
    if not ASSETS.is_dir():
        return {}
    return {p.name: p for p in sorted(ASSETS.iterdir()) if (p / config_file).is_file()}


def shipped_scorers() -> dict[str, Path]:
    """Scorers that ship inside the package, by name (e.g. "shapes")."""
    return shipped_folders(CONFIG_FILE)


def find_folder(name_or_path: str | os.PathLike, shipped: dict[str, Path], not_found: str) -> Path:
    """A shipped name (unless a path of that name exists) -> its folder; anything else is a path that must exist.
    `not_found` is the error, formatted with {path} and {names} (the shipped names)."""
    if isinstance(name_or_path, str) and name_or_path in shipped and not Path(name_or_path).exists():
        return shipped[name_or_path]
    path = Path(os.path.expanduser(str(name_or_path)))
    if not path.exists():
        raise ScorerFolderError(not_found.format(path=path, names=", ".join(shipped) or "none"))
    return path


def resolve_model_path(name_or_path: str | os.PathLike) -> Path:
    path = find_folder(name_or_path, shipped_scorers(),
                       "model folder not found: {path} (shipped scorer names: {names})")
    if not path.is_dir():
        raise ScorerFolderError(f"model path is not a folder: {path}")
    return path


def folder_kind(path: Path) -> str:
    """"scorer", "base" (a Qwen2.5-VL checkpoint) or an error naming what is wrong with the folder."""
    if (path / CONFIG_FILE).is_file():
        return "scorer"
    cfg = path / "config.json"
    if cfg.is_file():
        try:
            model_type = json.loads(cfg.read_text(encoding="utf-8")).get("model_type")
        except json.JSONDecodeError as exc:
            raise ScorerFolderError(f"{cfg}: not valid JSON ({exc})") from exc
        if model_type in QWEN_VL_TYPES:
            return "base"
        raise ScorerFolderError(
            f"{path} holds a {model_type!r} model; expected a SpatialScore folder ({CONFIG_FILE}) "
            f"or a Qwen2.5-VL checkpoint (config.json with model_type 'qwen2_5_vl')"
        )
    if (path / "model_index.json").is_file():
        raise ScorerFolderError(f"{path} is a diffusers pipeline, not a SpatialScore or Qwen2.5-VL folder")
    raise ScorerFolderError(
        f"not a scorer folder: {path} has neither {CONFIG_FILE} (a trained scorer) nor config.json "
        f"(a Qwen2.5-VL checkpoint for zero-shot scoring)"
    )


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


def _refuse_pickles(folder: Path, needed: str) -> None:
    """Only safetensors are read (README): a pickled weight file is refused by name, never unpickled."""
    if not folder.is_dir():
        return
    pickled = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickled and not (folder / needed).is_file():
        raise ScorerFolderError(f"{folder / pickled[0]}: pickled weights are refused (they can run code when "
                                f"loaded); convert them to {needed}")


def read_weights(file: Path) -> dict[str, torch.Tensor]:
    """A .safetensors file's tensors; a corrupt, truncated or empty file, or NaN / infinite weights, is a
    ScorerFolderError naming the file."""
    from safetensors import SafetensorError

    try:
        tensors = load_file(str(file))
    except (SafetensorError, OSError) as exc:
        raise ScorerFolderError(f"{file}: not a readable .safetensors file (corrupt, truncated or empty: "
                                f"{exc})") from exc
    bad = next((k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()), None)
    if bad is not None:
        raise ScorerFolderError(f"{file}: tensor {bad!r} holds NaN or infinite values; the scorer is unusable")
    return tensors


def _check_header(file: Path) -> None:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(file), framework="pt") as f:
            f.keys()
    except (SafetensorError, OSError) as exc:
        raise ScorerFolderError(f"{file}: not a readable .safetensors file (corrupt, truncated or empty: "
                                f"{exc})") from exc


def check_scorer_folder(path: Path) -> str:
    """What a scorer folder is ("scorer" or "base"), checked without loading a model: its JSON, the files its
    kind needs, and every .safetensors header. Raises ScorerFolderError naming the first problem."""
    kind = folder_kind(path)
    if kind == "base":
        if not any(path.glob("*.safetensors")):
            raise ScorerFolderError(f"Qwen2.5-VL folder {path} has no .safetensors weights (only safetensors "
                                    "are read)")
    else:
        config = ScorerConfig.read(path)
        if config.backbone == "coords":
            from .coords_model import BACKBONE_FILE

            needed = [HEAD_FILE, BACKBONE_FILE]
        else:
            needed = [HEAD_FILE, PROCESSOR_DIR] + ([MODEL_DIR] if config.weights == "full" else [ADAPTER_DIR])
        missing = [n for n in needed if not (path / n).exists()]
        if missing:
            raise ScorerFolderError(f"scorer folder {path} is missing {', '.join(missing)}")
        if config.weights == "lora" and config.backbone != "coords":
            _refuse_pickles(path / ADAPTER_DIR, "adapter_model.safetensors")
    for file in sorted(path.rglob("*.safetensors")):
        _check_header(file)
    return kind


def load_vlm(path: Path, dtype: torch.dtype, attn: str):
    from safetensors import SafetensorError
    from transformers import Qwen2_5_VLForConditionalGeneration

    if not (path / "config.json").is_file():
        raise ScorerFolderError(f"Qwen2.5-VL folder {path} is missing config.json")
    if not any(path.glob("*.safetensors")):
        raise ScorerFolderError(f"Qwen2.5-VL folder {path} has no .safetensors weights (only safetensors are read)")
    try:
        return Qwen2_5_VLForConditionalGeneration.from_pretrained(
            path, local_files_only=True, dtype=dtype, attn_implementation=attn, use_safetensors=True
        )
    except (SafetensorError, OSError) as exc:
        raise ScorerFolderError(f"Qwen2.5-VL folder {path}: weights unreadable (corrupt, truncated or empty "
                                f".safetensors: {exc})") from exc


def load_processor(path: Path, config: ScorerConfig):
    from .processor import SpatialProcessor

    if not (path / "tokenizer_config.json").is_file() and not (path / "tokenizer.json").is_file():
        raise ScorerFolderError(f"{path} has no tokenizer files (tokenizer.json / tokenizer_config.json)")
    processor = SpatialProcessor.from_pretrained(path, local_files_only=True)
    processor.image_processor.size = {"shortest_edge": config.min_pixels, "longest_edge": config.max_pixels}
    return processor


def default_dtype(device: torch.device) -> torch.dtype:
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def load_model(name_or_path: str | os.PathLike, device: str | torch.device | None = None,
               dtype: torch.dtype | None = None, attn: str = "sdpa", merge_lora: bool = True,
               base_model: str | os.PathLike | None = None, zero_shot_config: ScorerConfig | None = None
               ) -> SpatialScoreModel:
    """Load a scorer folder (reward mode) or a Qwen2.5-VL folder (zero-shot mode), eval mode, on `device`."""
    path = resolve_model_path(name_or_path)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = dtype or default_dtype(device)
    kind = folder_kind(path)
    if kind == "base":
        config = zero_shot_config or ScorerConfig(weights="full", lora=None,
                                                  template=Template(user=DEFAULT_ZERO_SHOT_USER))
        vlm = load_vlm(path, dtype, attn)
        model = SpatialScoreModel(vlm, load_processor(path, config), config, mode="zero-shot")
    else:
        config = ScorerConfig.read(path)
        model = _load_coords(path, config) if config.backbone == "coords" else _load_vlm_scorer(
            path, config, dtype, attn, merge_lora, base_model)
    model.source = str(path)
    return model.to(device).eval()


def _load_vlm_scorer(path: Path, config: ScorerConfig, dtype: torch.dtype, attn: str, merge_lora: bool,
                     base_model: str | os.PathLike | None) -> SpatialScoreModel:
    for needed in (HEAD_FILE, PROCESSOR_DIR):
        if not (path / needed).exists():
            raise ScorerFolderError(f"scorer folder {path} is missing {needed}")
    if config.weights == "lora":
        _refuse_pickles(path / ADAPTER_DIR, "adapter_model.safetensors")  # before anything is loaded
    processor = load_processor(path / PROCESSOR_DIR, config)
    vlm = load_vlm_weights(path, config, processor, dtype, attn, merge_lora=merge_lora, base_model=base_model)
    head = RewardHead(_text_hidden(vlm), config.head)
    head.load_state_dict(read_weights(path / HEAD_FILE))
    return SpatialScoreModel(vlm, processor, config, mode="reward", head=head)


def load_vlm_weights(path: Path, config, processor, dtype: torch.dtype, attn: str = "sdpa", merge_lora: bool = True,
                     base_model: str | os.PathLike | None = None, what: str = "scorer",
                     config_file: str = CONFIG_FILE):
    """The Qwen2.5-VL of a trained folder (a scorer, or an edit scorer): model/ (weights "full"), or base_model with
    the LoRA of adapter/ (merged, or kept trainable with merge_lora=False). Each file is checked, and named when
    missing, before anything loads."""
    if config.weights == "full":
        if not (path / MODEL_DIR).is_dir():
            raise ScorerFolderError(f"{what} folder {path} is missing {MODEL_DIR}/ (weights='full')")
        return load_vlm(path / MODEL_DIR, dtype, attn)
    base = Path(base_model) if base_model else config.resolve_base(path)
    if not base.is_dir():
        hint = "; pass base_model= / --base-model to point elsewhere" if what == "scorer" else ""
        raise ScorerFolderError(f"base model of {what} {path} not found: {base} (from base_model in "
                                f"{path / config_file}{hint})")
    if not (path / ADAPTER_DIR / "adapter_config.json").is_file():
        raise ScorerFolderError(f"{what} folder {path} is missing {ADAPTER_DIR}/adapter_config.json")
    _refuse_pickles(path / ADAPTER_DIR, "adapter_model.safetensors")
    if not (path / ADAPTER_DIR / "adapter_model.safetensors").is_file():
        raise ScorerFolderError(f"{what} folder {path} is missing {ADAPTER_DIR}/adapter_model.safetensors")
    read_weights(path / ADAPTER_DIR / "adapter_model.safetensors")
    vlm = load_vlm(base, dtype, attn)
    fit_embeddings(vlm, len(processor.tokenizer))
    from peft import PeftModel

    vlm = PeftModel.from_pretrained(vlm, path / ADAPTER_DIR, is_trainable=not merge_lora)
    if merge_lora:
        return vlm.merge_and_unload()
    from .token_row import use_one_row_override

    use_one_row_override(vlm)
    return vlm


def _load_coords(path: Path, config: ScorerConfig):
    from .coords_model import CoordsScorerModel

    return load_coords_folder(path, lambda: CoordsScorerModel(config), "scorer")


def load_coords_folder(path: Path, make_model, what: str, config_file: str = CONFIG_FILE):
    """A coords-backbone model (`make_model()`, from the folder's config) with the folder's backbone and head
    weights; a missing file, a malformed 'coords' section or mis-shaped weights is a ScorerFolderError naming it."""
    from .coords_model import BACKBONE_FILE

    for needed in (HEAD_FILE, BACKBONE_FILE):
        if not (path / needed).is_file():
            raise ScorerFolderError(f"{what} folder {path} is missing {needed}")
    try:
        model = make_model()
    except (TypeError, ValueError) as exc:
        raise ScorerFolderError(f"{path / config_file}: malformed 'coords' section ({exc})") from exc
    for module, file in ((model.backbone, BACKBONE_FILE), (model.head, HEAD_FILE)):
        try:
            module.load_state_dict(read_weights(path / file))
        except RuntimeError as exc:  # missing / unexpected / mis-shaped tensors
            raise ScorerFolderError(f"{path / file} does not match the config's architecture: {exc}") from exc
    return model


def create_coords_model(coords, head: HeadConfig, device: str | torch.device = "cpu", seed: int = 0):
    """A fresh, trainable scorer on the coords backbone (every weight trains; no base model)."""
    from .coords_model import CoordsScorerModel

    config = ScorerConfig(weights="full", lora=None, head=head, backbone="coords", coords=coords.to_dict())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CoordsScorerModel(config)
    model.source = "coords"
    return model.to(device)


def _text_hidden(vlm) -> int:
    cfg = vlm.get_base_model().config if hasattr(vlm, "get_base_model") else vlm.config
    return cfg.text_config.hidden_size


def fit_embeddings(vlm, n_tokens: int) -> None:
    """Grow the embeddings when the tokenizer outgrew them; never shrink (Qwen pads its vocab to 152064)."""
    rows = vlm.get_input_embeddings().weight.shape[0]
    if n_tokens > rows:
        vlm.resize_token_embeddings(n_tokens, mean_resizing=False)
        # resize draws the new rows from torch's global RNG: give them the old rows' mean instead, so two
        # identical runs export identical files (the untied lm_head row is never trained or read by the head)
        with torch.no_grad():
            tables = (vlm.get_input_embeddings(), vlm.get_output_embeddings())
            for emb in {id(e): e for e in tables if e is not None}.values():  # once when tied
                emb.weight[rows:] = emb.weight[:rows].float().mean(0).to(emb.weight.dtype)


def add_reward_token(vlm, processor, token: str) -> int:
    """Add the reward token to the tokenizer, give it the mean embedding, return its id."""
    from tokenizers import AddedToken

    tokenizer = processor.tokenizer
    if token not in tokenizer.get_vocab():
        tokenizer.add_tokens([AddedToken(token, special=True, normalized=False)], special_tokens=True)
    token_id = tokenizer.convert_tokens_to_ids(token)
    fit_embeddings(vlm, len(tokenizer))
    emb = vlm.get_input_embeddings().weight
    with torch.no_grad():
        emb[token_id] = emb[: min(token_id, emb.shape[0])].float().mean(0).to(emb.dtype)
    return token_id


def lora_target_regex(targets: list[str]) -> str:
    """Match only text-decoder projections: the vision tower's MLP shares names like gate_proj."""
    names = "|".join(sorted(set(targets)))
    return rf".*language_model\.layers\.\d+\.(?:self_attn|mlp)\.(?:{names})"


def create_model(base: str | os.PathLike, config: ScorerConfig, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32, attn: str = "sdpa", seed: int = 0) -> SpatialScoreModel:
    """A fresh, trainable SpatialScore on a Qwen2.5-VL base: reward token, new head, LoRA or full training.

    With LoRA, only the adapters, the reward token's embedding row and the head are trainable.
    """
    base = resolve_model_path(base)
    if folder_kind(base) != "base":
        raise ScorerFolderError(f"{base}: a base model must be a plain Qwen2.5-VL folder, not a scorer")
    config.base_model = str(base.resolve())
    vlm = load_vlm(base, dtype, attn)
    processor = load_processor(base, config)
    model = make_trainable(vlm, processor, config, seed=seed)
    model.source = str(base)
    return model.to(device)


def make_trainable(vlm, processor, config: ScorerConfig, seed: int = 0) -> SpatialScoreModel:
    """The trainable scorer on an already built Qwen2.5-VL (from a folder, or on fake tensors in
    benchmarks.dryrun): reward token, LoRA (or every weight) and a new head."""
    token_id = add_reward_token(vlm, processor, config.reward_token)
    if config.weights == "lora":
        from peft import LoraConfig, get_peft_model

        from .token_row import use_one_row_override

        lora: LoraSettings = config.lora
        peft_config = LoraConfig(
            r=lora.rank, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
            target_modules=lora_target_regex(lora.targets),
            trainable_token_indices={"embed_tokens": [token_id]},
        )
        vlm = get_peft_model(vlm, peft_config)
        use_one_row_override(vlm)  # peft's own forward copies the whole embedding matrix per call
    else:
        for p in vlm.parameters():
            p.requires_grad_(True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = RewardHead(_text_hidden(vlm), config.head)
    return SpatialScoreModel(vlm, processor, config, mode="reward", head=head)


def save_tensors(module: torch.nn.Module, file: Path, what: str = "scorer weights") -> None:
    """A module's state as fp32 CPU tensors in one .safetensors file; never non-finite ones."""
    from ...common.finite import require_finite_weights

    state = {k: v.detach().float().cpu().contiguous() for k, v in module.state_dict().items()}
    require_finite_weights(state.items(), f"{what} ({file.name})")
    save_file(state, str(file))


def save_vlm_parts(model, folder: Path) -> None:
    """A Qwen2.5-VL model's processor and weights into a folder being written: adapter/ (LoRA) or model/ (full)."""
    model.processor.save_pretrained(folder / PROCESSOR_DIR)
    if model.config.weights == "lora":
        model.vlm.save_pretrained(folder / ADAPTER_DIR, safe_serialization=True)
    else:
        vlm = model.vlm.get_base_model() if hasattr(model.vlm, "get_base_model") else model.vlm
        vlm.save_pretrained(folder / MODEL_DIR, safe_serialization=True)


def save_model(model: SpatialScoreModel, folder: str | os.PathLike) -> Path:
    """Write a scorer folder atomically: a reader sees the old folder or the complete new one."""
    if model.mode != "reward":
        raise ValueError("only reward-mode models are saved as scorers (zero-shot needs no folder)")
    folder = Path(folder)
    from ...common.finite import require_finite_weights

    require_finite_weights(model.named_parameters(), f"scorer {folder.name}")  # a NaN scorer is never written
    with os_errors_name(folder), atomic_dir(folder) as tmp:  # a full disk: one line naming the folder
        if model.config.backbone == "coords":
            from .coords_model import BACKBONE_FILE

            save_tensors(model.backbone, tmp / BACKBONE_FILE)
        else:
            save_vlm_parts(model, tmp)
        save_tensors(model.head, tmp / HEAD_FILE)
        model.config.write(tmp)
    return folder


__all__ = [
    "check_scorer_folder", "create_coords_model", "create_model", "find_folder", "fit_embeddings", "folder_kind",
    "load_coords_folder", "load_model", "load_processor", "load_vlm", "load_vlm_weights", "read_weights",
    "resolve_model_path", "save_model", "save_tensors", "save_vlm_parts", "shipped_folders", "shipped_scorers",
    "text_decoder_layers",
]

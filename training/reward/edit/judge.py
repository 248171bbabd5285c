"""The generative judge: a local Qwen2.5-VL / Qwen3-VL chat model asked for SpatialReward's JSON, then aggregated.

Pass 1 (semantic): system + user turn with the instruction and both images (JudgeSettings.template); the model
answers with edit regions (boxes in 0-1000), short reasoning, instruction success and over-editing (0-10).
Pass 2 (quality, optional): the edited image alone (quality_template); naturalness and artifacts (0-10).
The answers are parsed robustly (judge_parse.py) and combined by the weighted geometric mean (aggregate.py).

The templates live in the judge folder's spatialreward.json under "judge", so a user can put in the wording their
model was trained with; the pack's own wording is the default below. A judge folder needs no weights of its own:
    {"format": "spatialreward", "version": 1, "kind": "judge", "base_model": "/models/SpatialReward-8B",
     "judge": {"template": {...}, "quality_template": {...} or null, "aggregation": {...}, "max_new_tokens": 512}}
A plain local Qwen2.5-VL / Qwen3-VL folder given as an edit model is used as a judge with these defaults.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..config import ScorerFolderError
from .aggregate import Aggregation, aggregate
from .config import EditScorerConfig, EditTemplate
from .judge_parse import parse_judge_output
from .result import EditScoreResult
from .two_images import INSTRUCTION_SLOT, interleave, render_edit_chat

JUDGE_TYPES = ("qwen2_5_vl", "qwen3_vl")
SEMANTIC_USER = (
    "You are given a source image and an edited image, and the editing instruction.\n"
    "Instruction: {instruction}\nSource image: {source}\nEdited image: {edited}\n"
    "First find every region where the edited image differs from the source, as boxes [x0, y0, x1, y1] in 0-1000 "
    "coordinates of the edited image. Then compare the images region by region and judge the edit.\n"
    "Answer with JSON only: {\"edit_regions\": [{\"box\": [x0, y0, x1, y1], \"label\": \"what changed\"}], "
    "\"reasoning\": \"one or two sentences\", \"instruction_success\": 0-10, \"over_editing\": 0-10}\n"
    "instruction_success: 10 = the instruction is fully carried out. over_editing: 10 = nothing else changed, "
    "0 = far too much changed."
)
QUALITY_USER = (
    "Image: {edited}\nRate this image's perceptual quality. Answer with JSON only: {\"reasoning\": \"one "
    "sentence\", \"naturalness\": 0-10, \"artifacts\": 0-10}\nnaturalness: 10 = looks entirely natural. "
    "artifacts: 10 = no artifacts, 0 = heavy artifacts."
)
JUDGE_SYSTEM = "You are an expert evaluator of image edits."


@dataclass
class QualityTemplate:
    system: str = JUDGE_SYSTEM
    user: str = QUALITY_USER

    def __post_init__(self):
        if self.user.count("{edited}") != 1:
            raise ValueError(f"judge quality_template.user must contain {{edited}} exactly once, got {self.user!r}")


@dataclass
class JudgeSettings:
    template: EditTemplate = field(default_factory=lambda: EditTemplate(JUDGE_SYSTEM, SEMANTIC_USER))
    quality_template: QualityTemplate | None = field(default_factory=QualityTemplate)
    aggregation: Aggregation = field(default_factory=Aggregation)
    max_new_tokens: int = 512
    fallback_score: float = 0.0  # the reward of an answer whose semantic scores cannot be read

    @classmethod
    def from_dict(cls, data: dict | None) -> JudgeSettings:
        data = dict(data or {})
        known = {"template", "quality_template", "aggregation", "max_new_tokens", "fallback_score"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"judge: unknown fields {unknown}; known: {', '.join(sorted(known))}")
        out = cls()
        if "template" in data:
            out.template = EditTemplate(**data["template"])
        if "quality_template" in data:
            out.quality_template = QualityTemplate(**data["quality_template"]) if data["quality_template"] else None
        out.aggregation = Aggregation.from_dict(data.get("aggregation"))
        out.max_new_tokens = int(data.get("max_new_tokens", out.max_new_tokens))
        out.fallback_score = float(data.get("fallback_score", out.fallback_score))
        if out.max_new_tokens < 1:
            raise ValueError("judge: max_new_tokens must be >= 1")
        return out

    def to_dict(self) -> dict:
        return {"template": asdict(self.template),
                "quality_template": asdict(self.quality_template) if self.quality_template else None,
                "aggregation": asdict(self.aggregation), "max_new_tokens": self.max_new_tokens,
                "fallback_score": self.fallback_score}


def model_type(folder: Path) -> str | None:
    try:
        return json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError):
        return None


def load_chat_model(folder: Path, dtype: torch.dtype, device):
    """(model, processor) of a local Qwen2.5-VL or Qwen3-VL chat model; safetensors only, no hub."""
    kind = model_type(folder)
    if kind not in JUDGE_TYPES:
        raise ScorerFolderError(f"judge model {folder}: expected a local Qwen2.5-VL or Qwen3-VL folder (config.json "
                                f"model_type one of {', '.join(JUDGE_TYPES)}), got {kind!r}")
    if not any(folder.glob("*.safetensors")):
        raise ScorerFolderError(f"judge model {folder} has no .safetensors weights (only safetensors are read)")
    if kind == "qwen2_5_vl":
        from transformers import Qwen2_5_VLForConditionalGeneration as Model

        from ..models.processor import SpatialProcessor as Processor
    else:
        from transformers import Qwen3VLForConditionalGeneration as Model

        from .qwen3 import Qwen3Processor as Processor
    model = Model.from_pretrained(folder, local_files_only=True, dtype=dtype, use_safetensors=True)
    processor = Processor.from_pretrained(folder, local_files_only=True)
    return model.to(device).eval(), processor


class GenerativeJudge:
    kind = "judge"
    mode = "judge"

    def __init__(self, model, processor, config: EditScorerConfig, settings: JudgeSettings | None = None):
        self.model, self.processor, self.config = model, processor, config
        self.settings = settings or JudgeSettings.from_dict(config.judge)
        self.chat, self.order = render_edit_chat(processor, self.settings.template)
        self.source = ""

    @classmethod
    def from_folder(cls, path: Path, config: EditScorerConfig, device=None, dtype=None) -> GenerativeJudge:
        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        dtype = dtype or (torch.bfloat16 if device.type == "cuda" else torch.float32)
        base = config.resolve_base(path) if config.base_model else path
        if not base.is_dir():
            raise ScorerFolderError(f"judge {path}: base_model folder not found: {base}")
        try:
            settings = JudgeSettings.from_dict(config.judge)
        except (TypeError, ValueError) as exc:
            raise ScorerFolderError(f"{path}: {exc}") from exc
        model, processor = load_chat_model(base, dtype, device)
        return cls(model, processor, config, settings)

    @torch.inference_mode()
    def _generate(self, text: str, images: list) -> str:
        batch = self.processor(text=[text], images=images, return_tensors="pt")
        device = next(self.model.parameters()).device
        batch = {k: v.to(device) for k, v in batch.items()}
        out = self.model.generate(**batch, max_new_tokens=self.settings.max_new_tokens, do_sample=False)
        return self.processor.tokenizer.decode(out[0, batch["input_ids"].shape[1]:], skip_special_tokens=True)

    def _quality_chat(self) -> str:
        t = self.settings.quality_template
        before, after = t.user.split("{edited}")
        content = [p for p in ({"type": "text", "text": before}, {"type": "image"}, {"type": "text", "text": after})
                   if p["type"] == "image" or p["text"]]
        return self.processor.apply_chat_template([{"role": "system", "content": t.system},
                                                   {"role": "user", "content": content}],
                                                  tokenize=False, add_generation_prompt=True)

    def judge_edits(self, sources, edited, instructions, progress=None) -> EditScoreResult:
        s = self.settings
        means, regions, reasons, details = [], [], [], []
        quality_chat = self._quality_chat() if s.quality_template else None
        for i, (src, ed, text) in enumerate(zip(sources, edited, instructions, strict=True)):
            raw = self._generate(self.chat.replace(INSTRUCTION_SLOT, text), interleave(self.order, [src], [ed]))
            answer = parse_judge_output(raw, s.aggregation.score_max)
            scores = dict(answer.scores)
            if quality_chat is not None:
                q = parse_judge_output(self._generate(quality_chat, [ed]), s.aggregation.score_max)
                scores.update({k: v for k, v in q.scores.items() if k in ("naturalness", "artifacts")})
            reward = aggregate(scores, s.aggregation)
            means.append(s.fallback_score if reward is None else reward)
            regions.append(answer.regions)
            reasons.append(answer.reasoning or raw.strip())
            details.append({"scores": scores, "parsed": answer.ok, "problems": answer.problems, "raw": raw})
            if progress is not None:
                progress(i + 1, len(edited))
        return EditScoreResult(torch.tensor(means, dtype=torch.float32), torch.zeros(len(means)), regions, "judge",
                               reasons, details)

    def release(self) -> None:
        self.model.to("cpu")
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def write_judge_folder(out, base_model: str, settings: JudgeSettings | None = None, notes: dict | None = None) -> Path:
    """A judge folder: spatialreward.json pointing at a local chat model, with the templates and aggregation."""
    from ...common.atomic import atomic_dir

    config = EditScorerConfig(kind="judge", base_model=str(base_model),
                              judge=(settings or JudgeSettings()).to_dict(), notes=notes or {})
    with atomic_dir(Path(out)) as tmp:
        config.write(tmp)
    return Path(out)

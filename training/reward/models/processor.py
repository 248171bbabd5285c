"""The Qwen2.5-VL processor without its video half.

transformers' Qwen2_5_VLProcessor type-checks a video processor that needs torchvision; scoring never sees video,
so this subclass takes only the image processor, tokenizer and chat template, and is used to save and reload.
"""

from __future__ import annotations

from transformers import Qwen2_5_VLProcessor
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil


class SpatialProcessor(Qwen2_5_VLProcessor):
    attributes = ["image_processor", "tokenizer"]

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        super().__init__(image_processor=image_processor, tokenizer=tokenizer, video_processor=None,
                         chat_template=chat_template, **kwargs)


def make_image_processor(min_pixels: int, max_pixels: int) -> Qwen2VLImageProcessorPil:
    return Qwen2VLImageProcessorPil(min_pixels=min_pixels, max_pixels=max_pixels)

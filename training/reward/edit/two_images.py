"""Two images per edit: the sources matched to the edited images, the one size both must have, and the two-image
chat (the instruction once, both images in the template's order) that the Qwen edit model and the judge read."""

from __future__ import annotations

from .config import EditTemplate

INSTRUCTION_SLOT = "\x00SPATIALREWARD_INSTRUCTION\x00"  # where the instruction goes in a rendered chat


def match_sources(sources: list, n_edited: int) -> list:
    if n_edited == 0:
        raise ValueError("edited images: the batch is empty")
    if len(sources) == 1:
        return sources * n_edited
    if len(sources) != n_edited:
        raise ValueError(f"source images: a batch of {len(sources)} matches neither 1 nor the {n_edited} edited "
                         "images; give one source for all, or one per edited image")
    return sources


def size_mismatch(source, edited, source_name: str = "its source", edited_name: str = "the edited image") -> str | None:
    """Why an edit pair cannot be scored, if its two PIL images differ in size; else None.

    Why refuse rather than resize: the edit scorers compare the two images place by place, and a resized source
    moves every shape in it, so a correct edit scores like a wrong one (a shapes-edit move padded from 64x64 to
    64x80 scored -5.83 instead of -2.27).
    """
    if source.size == edited.size:
        return None
    return (f"{edited_name} is {edited.width}x{edited.height} but {source_name} is {source.width}x{source.height} "
            "(width x height): an edit keeps the source's size, so the two are not an edit pair; give the source "
            "the edited image was made from, or resize one of them to the other's size first")


def check_same_sizes(sources: list, edited: list, source_names: list[str] | None = None,
                     edited_names: list[str] | None = None) -> None:
    """ValueError naming the first edited image whose size differs from its source's (sources already matched
    one per edited image)."""
    for i, (src, img) in enumerate(zip(sources, edited, strict=True)):
        problem = size_mismatch(src, img, f"the source {source_names[i]}" if source_names else "its source",
                                edited_names[i] if edited_names else f"edited image {i}")
        if problem is not None:
            raise ValueError(problem)


def render_edit_chat(processor, template: EditTemplate, suffix: str = "") -> tuple[str, list[str]]:
    """The chat with INSTRUCTION_SLOT for the instruction, and the order of its images ("source" / "edited")."""
    parts = template.user_content(INSTRUCTION_SLOT)
    order = [p["role"] for p in parts if p["type"] == "image"]
    content = [{"type": "image"} if p["type"] == "image" else p for p in parts]
    messages = [{"role": "system", "content": template.system}, {"role": "user", "content": content}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) + suffix
    if text.count(INSTRUCTION_SLOT) != 1 or text.count(processor.image_token) != 2:
        raise ValueError("the chat template must render the instruction once and both images")
    return text, order


def interleave(order: list[str], sources, edited) -> list:
    """The images of a batch of edits in the chat's order, edit after edit."""
    images = []
    for s, e in zip(sources, edited, strict=True):
        images += [s if role == "source" else e for role in order]
    return images

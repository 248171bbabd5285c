"""Turn the prompt text of a node into one prompt per image.

The prompt box holds either one prompt for the whole batch or one prompt per image, one per line. A count that
fits neither is an error that says both numbers: silently reusing or dropping prompts would score images against
the wrong text.
"""

from __future__ import annotations

PROMPT_MODES = ("auto", "same for all", "one per line")


class PromptCountError(ValueError):
    """The number of prompts does not match the number of images."""


def split_prompt_lines(text: str) -> list[str]:
    """Non-empty, stripped lines of `text` (blank lines and trailing newlines are ignored)."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def resolve_prompts(text: str, n_images: int, mode: str = "auto") -> list[str]:
    """One prompt per image, from the node's prompt text.

    auto: one non-empty line is used for every image; n lines for n images are used in order.
    same for all: the whole text (lines joined by spaces) is one prompt for every image, for long prompts
        that wrap over several lines.
    one per line: exactly one line per image, even for a batch of one.
    """
    if not isinstance(text, str):
        raise TypeError(f"prompt: expected text, got {type(text).__name__}")
    if mode not in PROMPT_MODES:
        raise ValueError(f"prompt_mode: expected one of {', '.join(PROMPT_MODES)}, got {mode!r}")
    if n_images < 1:
        raise ValueError(f"images: expected at least one image, got a batch of {n_images}")
    lines = split_prompt_lines(text)
    if not lines:
        raise ValueError("prompt: empty; give the text the images should show (one line for all images, "
                         "or one line per image)")
    if mode == "same for all":
        return [" ".join(lines)] * n_images
    if mode == "auto" and len(lines) == 1:
        return lines * n_images
    if len(lines) != n_images:
        hint = ("give one line for all images, or exactly one line per image"
                if mode == "auto" else "give exactly one line per image")
        raise PromptCountError(
            f"prompt: {len(lines)} prompt lines for a batch of {n_images} images; {hint} "
            f"(or set prompt_mode to 'same for all' for one prompt written over several lines)")
    return lines

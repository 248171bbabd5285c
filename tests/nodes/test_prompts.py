import pytest

from nodes.logic.prompts import PromptCountError, resolve_prompts, split_prompt_lines


def test_one_line_is_used_for_every_image():
    assert resolve_prompts("a red circle left of a blue square\n", 3) == ["a red circle left of a blue square"] * 3


def test_one_line_per_image_in_order_blank_lines_ignored():
    text = "first prompt\n\n  second prompt  \nthird prompt\n\n"
    assert resolve_prompts(text, 3) == ["first prompt", "second prompt", "third prompt"]


def test_count_mismatch_names_both_counts():
    with pytest.raises(PromptCountError) as err:
        resolve_prompts("one\ntwo\nthree", 8)
    msg = str(err.value)
    assert "3 prompt lines" in msg and "8 images" in msg and "same for all" in msg


def test_same_for_all_joins_wrapped_lines():
    assert resolve_prompts("a cat on the left\nof a dog", 2, "same for all") == ["a cat on the left of a dog"] * 2


def test_one_per_line_is_strict_even_for_one_line():
    assert resolve_prompts("only\n", 1, "one per line") == ["only"]
    with pytest.raises(PromptCountError):
        resolve_prompts("only", 2, "one per line")


@pytest.mark.parametrize("text", ["", "   \n\n  "])
def test_empty_prompt_is_refused(text):
    with pytest.raises(ValueError, match="prompt: empty"):
        resolve_prompts(text, 2)


def test_bad_mode_and_bad_batch():
    with pytest.raises(ValueError, match="prompt_mode"):
        resolve_prompts("x", 1, "sometimes")
    with pytest.raises(ValueError, match="at least one image"):
        resolve_prompts("x", 0)
    with pytest.raises(TypeError):
        resolve_prompts(None, 1)


def test_split_handles_windows_newlines():
    assert split_prompt_lines("a\r\nb\r\n") == ["a", "b"]

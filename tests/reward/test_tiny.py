import subprocess
import sys

from training.reward.models.tiny import SPECIAL_TOKENS, build_tiny_tokenizer

PROMPT = "a red circle to the left of a blue square, and a green triangle above the blue square"


def test_tokenizer_is_deterministic_across_processes():
    code = (
        "from training.reward.models.tiny import build_tiny_tokenizer;"
        f"print(build_tiny_tokenizer()({PROMPT!r})['input_ids'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(build_tiny_tokenizer()(PROMPT)["input_ids"])


def test_tokenizer_has_qwen_special_tokens_and_short_words():
    tok = build_tiny_tokenizer()
    for t in SPECIAL_TOKENS:
        ids = tok.encode(t, add_special_tokens=False)
        assert len(ids) == 1, t
    words = tok.tokenize(PROMPT)
    assert "Ġcircle" in words and "Ġleft" in words
    assert tok.decode(tok.encode(PROMPT)) == PROMPT

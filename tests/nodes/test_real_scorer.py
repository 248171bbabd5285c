"""The node logic on the real scorer code path: a tiny random SpatialScore and a tiny zero-shot Qwen2.5-VL,
written to folders and loaded back through the Loader's code (training.reward.load_scorer)."""

import pytest
import torch

from nodes.logic.discovery import ScorerChoiceError, resolve_scorer
from nodes.logic.loading import find_moved_base, load_handle
from nodes.logic.prompts import PromptCountError
from nodes.logic.ranking import rank, take_latent, take_mask
from nodes.logic.scoring import score_images

PROMPT = "a red circle left of a blue square"


@pytest.fixture(scope="module")
def model_root(tmp_path_factory):
    tiny = pytest.importorskip("training.reward.models.tiny")
    root = tmp_path_factory.mktemp("spatialscore_models")
    tiny.save_tiny_scorer(root / "tiny_scorer", seed=0)
    tiny.save_tiny_qwen25vl(root / "Qwen" / "tiny-qwen2.5-vl", seed=1)
    return root


def candidates(n=8, size=56):
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, size, size, 3, generator=g)


def test_loader_scores_a_batch_of_8_and_reranks_with_latents_and_masks(model_root, tmp_path):
    handle = load_handle("tiny_scorer", [model_root], batch_size=3, builtin_dir=tmp_path / "no_builtin")
    assert handle.mode == "reward"
    images = candidates()
    progress = []
    table = score_images(handle, images, PROMPT, progress=lambda d, t: progress.append(d))
    assert table.mean.shape == (8,) and torch.isfinite(table.mean).all() and (table.std > 0).all()
    assert progress == [3, 6, 8]
    assert len(set(table.mean.tolist())) == 8  # distinct images, distinct scores

    r = rank(table.mean, table.std, top_k=5)
    assert torch.all(r.mean[:-1] >= r.mean[1:])
    assert r.mean.tolist() == table.mean[r.indices].tolist()
    assert r.indices[0] == int(table.mean.argmax())
    latent = {"samples": torch.arange(8.0).view(8, 1, 1, 1).expand(8, 16, 7, 7).clone()}
    assert take_latent(latent, r.indices, 8)["samples"][:, 0, 0, 0].tolist() == r.indices.float().tolist()
    masks = torch.arange(8.0).view(8, 1, 1).expand(8, 56, 56)
    assert take_mask(masks, r.indices, 8)[:, 0, 0].tolist() == r.indices.float().tolist()

    # absolute scores: an image scored in a different batch gets the same score
    again = score_images(handle, images[r.indices[:2]], PROMPT)
    assert again.mean.tolist() == pytest.approx(r.mean[:2].tolist(), abs=1e-4)


def test_prompt_count_mismatch_on_the_real_scorer(model_root, tmp_path):
    handle = load_handle("tiny_scorer", [model_root], builtin_dir=tmp_path)
    with pytest.raises(PromptCountError, match="2 prompt lines for a batch of 8 images"):
        score_images(handle, candidates(), "one\ntwo")


def test_zero_shot_qwen_folder(model_root, tmp_path):
    handle = load_handle("Qwen/tiny-qwen2.5-vl", [model_root], builtin_dir=tmp_path)
    assert handle.mode == "zero-shot"
    table = score_images(handle, candidates(2), "left\nright")
    assert table.mode == "zero-shot" and torch.isfinite(table.mean).all()
    assert table.std.tolist() == [0.0, 0.0]


def test_loader_errors_name_the_folder(model_root, tmp_path):
    (model_root / "empty_dir").mkdir(exist_ok=True)
    with pytest.raises(ScorerChoiceError, match="empty_dir"):
        load_handle("empty_dir", [model_root], builtin_dir=tmp_path)
    with pytest.raises(ValueError, match="batch_size"):
        load_handle("tiny_scorer", [model_root], batch_size=0, builtin_dir=tmp_path)


def test_lora_scorer_finds_its_base_under_the_same_name_when_moved(tmp_path):
    tiny = pytest.importorskip("training.reward.models.tiny")
    import shutil

    trained_on = tmp_path / "trainer_machine" / "tiny-base"
    root = tmp_path / "models"
    tiny.save_tiny_scorer(root / "lora_scorer", seed=0, weights="lora", base_dir=trained_on)
    assert find_moved_base(resolve_scorer("lora_scorer", [root], tmp_path), [root], tmp_path) is None  # path exists
    shutil.move(str(trained_on), str(root / "Qwen" / "tiny-base"))  # the user's layout
    folder = resolve_scorer("lora_scorer", [root], tmp_path)
    assert find_moved_base(folder, [root], tmp_path) == root / "Qwen" / "tiny-base"
    handle = load_handle("lora_scorer", [root], builtin_dir=tmp_path)
    assert handle.mode == "reward"
    assert torch.isfinite(score_images(handle, candidates(2), PROMPT).mean).all()
    shutil.rmtree(root / "Qwen")
    with pytest.raises(Exception, match="base model"):  # the scorer's own error names the missing base
        load_handle("lora_scorer", [root], builtin_dir=tmp_path)

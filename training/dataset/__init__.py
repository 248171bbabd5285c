"""SpatialReward dataset: scene graphs, prompts, perturbations, images (shapes world or diffusers generators),
verification, and a resumable manifest. Command line: `python -m training.dataset build|check|stats`."""

from .build import BuildError
from .build import build as build_dataset  # not `build`: that name is the submodule
from .config import BuildConfig, ConfigError
from .manifest import ManifestError, load_manifest
from .oracle import PromptParseError, find_objects, judge, parse_prompt
from .perturb import Perturbation
from .prompts import plain_prompt, render
from .scene import Relation, Scene, SceneObject, sample_scene
from .shapes_render import render_shapes
from .worlds import GENERAL, SHAPES, get_world

__all__ = [
    "GENERAL", "SHAPES", "BuildConfig", "BuildError", "ConfigError", "ManifestError", "Perturbation",
    "PromptParseError", "Relation", "Scene", "SceneObject", "build_dataset", "find_objects", "get_world",
    "judge", "load_manifest", "parse_prompt", "plain_prompt", "render", "render_shapes", "sample_scene",
]

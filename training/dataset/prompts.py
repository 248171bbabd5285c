"""Turn a scene graph into a prompt: the plain form, short variants, and long multi-sentence descriptions.

A prompt and its perturbed twin are rendered with the same `PromptChoices` (template, phrase variant per
relation slot, openings), so they differ only in the changed relations, as minimal pairs should.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .scene import Relation, Scene, SceneObject
from .worlds import GENERAL_CATEGORIES, SHAPE_CATEGORIES

# The first phrase of each list is the plain form, the one the shapes oracle reads.
PHRASES = {
    "left_of": ("to the left of", "on the left side of", "left of"),
    "right_of": ("to the right of", "on the right side of", "right of"),
    "above": ("above", "positioned above", "higher up than"),
    "below": ("below", "positioned below", "lower down than"),
    "next_to": ("next to", "beside", "right beside"),
    "between": ("between {0} and {1}", "in between {0} and {1}", "right between {0} and {1}"),
    "in_front_of": ("in front of", "placed in front of", "closer to the camera than"),
    "behind": ("behind", "in back of", "farther from the camera than"),
    "on_top_of": ("on top of", "resting on", "sitting on top of"),
    "under": ("under", "underneath", "beneath"),
    "inside": ("inside", "placed inside", "tucked inside"),
    "partly_hidden_behind": ("partly hidden behind", "partially hidden behind", "half hidden behind"),
}
NUMBERS = {2: "two", 3: "three"}
STYLES_SHORT = ("plain", "sentences", "there_is", "setting")
STYLES_LONG = ("long",)
OPENINGS = ("A photo of {setting}.", "A detailed picture of {setting}.", "An illustration of {setting}.",
            "A wide shot of {setting}.")
CONNECTORS = ("", "Also, ", "Meanwhile, ", "In addition, ", "Notably, ")
CLOSINGS = ("", "Soft natural light, high detail.", "Sharp focus, realistic colors.", "Everything is clearly visible.")


@dataclass(frozen=True)
class PromptChoices:
    style: str
    variants: tuple[int, ...]  # phrase variant per relation slot (taken modulo the phrase count)
    opening: int = 0
    closing: int = 0
    connectors: tuple[int, ...] = ()

    def to_dict(self) -> dict:
        return {"style": self.style, "variants": list(self.variants), "opening": self.opening,
                "closing": self.closing, "connectors": list(self.connectors)}


PLAIN = PromptChoices("plain", ())


def sample_choices(rng: random.Random, n_relations: int, styles: tuple[str, ...], vary_phrases: bool = True):
    style = rng.choice(styles)
    variants = tuple(rng.randrange(3) if vary_phrases else 0 for _ in range(n_relations + 3))
    connectors = tuple(rng.randrange(len(CONNECTORS)) for _ in range(n_relations + 3))
    return PromptChoices(style, variants, rng.randrange(len(OPENINGS)), rng.randrange(len(CLOSINGS)), connectors)


def _article(word: str) -> str:
    return "an" if word[0].lower() in "aeiou" else "a"


def noun_phrase(obj: SceneObject, definite: bool) -> str:
    words = [w for w in (obj.size, obj.color, obj.material) if w]
    if obj.count > 1:
        noun = _plural(obj.category)
        head = " ".join([*words, noun])
        return f"the {head}" if definite else f"{NUMBERS.get(obj.count, str(obj.count))} {head}"
    head = " ".join([*words, obj.category])
    return f"the {head}" if definite else f"{_article(head)} {head}"


def _plural(category: str) -> str:
    for c in GENERAL_CATEGORIES + SHAPE_CATEGORIES:
        if c.name == category:
            return c.plural
    return category + "s"


class _Mentions:
    """Indefinite article on an object's first mention in the text, definite afterwards."""

    def __init__(self, scene: Scene):
        self.scene = scene
        self.seen: set[str] = set()

    def __call__(self, object_id: str) -> str:
        phrase = noun_phrase(self.scene.obj(object_id), definite=object_id in self.seen)
        self.seen.add(object_id)
        return phrase


def _clause(scene: Scene, rel: Relation, mention: _Mentions, variant: int, verb: bool) -> str:
    subject = mention(rel.subject)
    phrases = PHRASES[rel.predicate]
    phrase = phrases[variant % len(phrases)]
    if rel.predicate == "between":
        tail = phrase.format(mention(rel.objects[0]), mention(rel.objects[1]))
    else:
        tail = f"{phrase} {mention(rel.objects[0])}"
    if verb:
        be = "are" if scene.obj(rel.subject).count > 1 else "is"
        return f"{subject} {be} {tail}"
    return f"{subject} {tail}"


def _join(clauses: list[str]) -> str:
    if len(clauses) == 1:
        return clauses[0]
    return ", ".join(clauses[:-1]) + ", and " + clauses[-1]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def render(scene: Scene, choices: PromptChoices = PLAIN) -> str:
    """The prompt for `scene` in the template and phrase variants of `choices`."""
    mention = _Mentions(scene)
    rels = scene.relations
    v = [choices.variants[i] if i < len(choices.variants) else 0 for i in range(len(rels))]
    setting = scene.setting or "a plain background"
    if choices.style == "plain":
        return _join([_clause(scene, r, mention, v[i], verb=False) for i, r in enumerate(rels)])
    if choices.style == "setting":
        return f"In {setting}, " + _join([_clause(scene, r, mention, v[i], verb=False) for i, r in enumerate(rels)])
    if choices.style == "there_is":
        first = _clause(scene, rels[0], mention, v[0], verb=False)
        rest = [_clause(scene, r, mention, v[i + 1], verb=True) for i, r in enumerate(rels[1:])]
        return " ".join([f"There is {first}."] + [_cap(c) + "." for c in rest])
    if choices.style == "sentences":
        return " ".join(_cap(_clause(scene, r, mention, v[i], verb=True)) + "." for i, r in enumerate(rels))
    if choices.style == "long":
        return _render_long(scene, choices, mention, v, setting)
    raise ValueError(f"unknown prompt style {choices.style!r}; expected one of {STYLES_SHORT + STYLES_LONG}")


def _render_long(scene: Scene, choices: PromptChoices, mention: _Mentions, v: list[int], setting: str) -> str:
    intro_mention = _Mentions(scene)
    listed = [intro_mention(o.id) for o in scene.objects]
    listing = listed[0] if len(listed) == 1 else ", ".join(listed[:-1]) + " and " + listed[-1]
    parts = [OPENINGS[choices.opening % len(OPENINGS)].format(setting=setting),
             f"The scene contains {listing}."]
    mention.seen |= {o.id for o in scene.objects}  # everything was introduced: definite from here on
    for i, r in enumerate(scene.relations):
        k = choices.connectors[i] if i < len(choices.connectors) else 0
        connector = CONNECTORS[k % len(CONNECTORS)] if i > 0 else ""
        clause = _clause(scene, r, mention, v[i], verb=True)
        parts.append(_cap(connector + clause) + ".")
    closing = CLOSINGS[choices.closing % len(CLOSINGS)]
    if closing:
        parts.append(closing)
    return " ".join(parts)


def relation_text(scene: Scene, rel: Relation) -> str:
    """One relation on its own, in the plain form ("a red circle to the left of a blue square")."""
    return _clause(scene, rel, _Mentions(scene), 0, verb=False)


def plain_prompt(scene: Scene) -> str:
    return render(scene, PLAIN)

"""The shapes generator's T5 text encoder, pretrained on the prompt language before flow matching, then frozen.

FLUX.1 conditions on a T5 that was pretrained on text and is frozen. The first shapes recipe instead trained its
small T5 from scratch together with the transformer, and it came out a bag of words: the transformer gives text
tokens no position (FLUX's text ids are all 0), and the T5 outputs of "a red circle to the left of a blue square"
and of its role-swapped twin are the same set of vectors to 0.03% (research/shapes_grpo/shapes_order_probe.py), so
no transformer, and no LoRA on it, can tell which object a relation is about.

This stage trains the T5 alone on the training prompts (never a held-out text) with three objectives:
- masked-token prediction, the BERT/T5 pretraining task: 15% of the tokens are replaced by <unk> and predicted
  from the output through the tied input embeddings;
- each output token predicts its own position (a linear probe over the T5 length, dropped afterwards), which puts
  word order into every token's output;
- each colour and shape word predicts its object's roles in the whole prompt (a linear probe, dropped afterwards):
  8 bits, subject or object of left of / right of / above / below in any clause. This is what parsing the sentence
  gives (who is left of whom), the grammatical knowledge a pretrained T5-XXL brings to FLUX.1; the labels come from
  parsing the prompt text (`parse_prompt`), never from a picture or a layout.
- with `--objective objects` (the default), each colour and shape word also predicts its whole object: its colour
  and its shape (two more unit-norm probes). "circle" in "a red circle ..." then carries "red", and "red" carries
  "circle", as a pretrained T5 contextualises attributes, so a picture region that the transformer matches to one
  word of an object reads the rest of that object from the same place (colour-shape binding in one attention
  hop). Labels again come from the prompt text alone.
A run of 2026-12-02 (commit 4a63780) found word order alone is not enough: with only the first two objectives the
twins' token sets differ by 7.6% of a token's norm and the transformer never learned to bind roles
(research/shapes_grpo/journal.md).

    python -m training.grpo.recipes.shapes_text_pretrain --generator shapes --out runs/text_encoder [--steps 1000]
        [--objective objects|roles|order]
"""

from __future__ import annotations

from pathlib import Path

import torch

MASK_RATE = 0.15
UNK_ID = 2  # the word-level tokenizer's <unk>: the mask token
PAD_ID = 0


ROLES = tuple((predicate, role) for predicate in ("left_of", "right_of", "above", "below") for role in ("subject", "object"))


def _object_words(tokens: list[str], length: int):
    """(index, colour) of every colour and shape word among the first `length` tokens: a shape word belongs to the
    colour word before it; objects are told apart by colour, as the oracle does."""
    from ...dataset.oracle import COLORS, SHAPES

    color = None
    for i, token in enumerate(tokens[:length]):
        word = token.lstrip("\u2581")
        if word in COLORS:
            color = word
        elif not (word in SHAPES and color is not None):
            color = None
            continue
        yield i, color


def role_targets(tokens: list[str], prompt: str, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token role bits [length, 8] and which tokens carry them [length] (the colour and shape words).

    Prompts the shapes parser cannot read get no role targets."""
    from ...dataset.oracle import PromptParseError, parse_prompt

    bits, where = torch.zeros(length, len(ROLES)), torch.zeros(length, dtype=torch.bool)
    try:
        relations = parse_prompt(prompt)
    except PromptParseError:
        return bits, where
    roles: dict[str, set[int]] = {}
    for r in relations:
        roles.setdefault(r.subject[0], set()).add(ROLES.index((r.predicate, "subject")))
        roles.setdefault(r.object[0], set()).add(ROLES.index((r.predicate, "object")))
    for i, color in _object_words(tokens, length):
        for k in roles.get(color, ()):
            bits[i, k] = 1.0
        where[i] = True
    return bits, where


IGNORE = -100  # cross_entropy's ignore_index: tokens that are not a colour or shape word


def identity_targets(tokens: list[str], prompt: str, length: int) -> torch.Tensor:
    """Per-token [length, 2]: the colour index and shape index (oracle.COLORS, oracle.SHAPES) of the object that a
    colour or shape word belongs to, IGNORE elsewhere and for prompts the shapes parser cannot read."""
    from ...dataset.oracle import COLORS, SHAPES, PromptParseError, parse_prompt

    out = torch.full((length, 2), IGNORE, dtype=torch.long)
    try:
        shape_of = {c: s for r in parse_prompt(prompt) for c, s in (r.subject, r.object)}
    except PromptParseError:
        return out
    for i, color in _object_words(tokens, length):
        out[i, 0], out[i, 1] = COLORS.index(color), SHAPES.index(shape_of[color])
    return out


def _per_prompt(targets, tokenizer, ids: torch.Tensor, prompts: list[str]) -> list:
    """`targets(tokens, prompt, length)` for every row of token ids [N, L] and its prompt."""
    return [targets(tokenizer.convert_ids_to_tokens(row), p, ids.shape[1])
            for row, p in zip(ids.tolist(), prompts, strict=True)]  # fmt: skip


def identity_target_batch(tokenizer, ids: torch.Tensor, prompts: list[str]) -> torch.Tensor:
    """identity_targets of every prompt, stacked: [N, L, 2]."""
    return torch.stack(_per_prompt(identity_targets, tokenizer, ids, prompts))


def role_target_batch(tokenizer, ids: torch.Tensor, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """role_targets of every prompt, stacked: bits [N, L, 8] and which tokens carry them [N, L]."""
    targets = _per_prompt(role_targets, tokenizer, ids, prompts)
    return torch.stack([b for b, _ in targets]), torch.stack([w for _, w in targets])


class RoleProbe(torch.nn.Module):
    """A linear probe with unit-norm rows and a fixed `scale`: a confident role bit needs a large component of the
    token along its row, so the roles take a real share of each token's norm instead of a whisper that a linear
    probe can still read (the word-order T5 of commit 4a63780: role-swapped twins 7.6% apart)."""

    def __init__(self, width: int, bits: int, scale: float):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(bits, width) * 0.02)
        self.bias = torch.nn.Parameter(torch.zeros(bits))
        self.scale = scale

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.scale * hidden @ torch.nn.functional.normalize(self.weight, dim=-1).T + self.bias


def text_losses(t5, heads: dict[str, torch.nn.Module], ids: torch.Tensor, g: torch.Generator,
                roles: tuple[torch.Tensor, torch.Tensor] | None = None,
                identity: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The pretraining losses on a batch of token ids [B, L] (padded with PAD_ID); `roles` = role_targets stacked,
    `identity` = identity_targets stacked (with heads "colour" and "shape")."""
    words = ids != PAD_ID
    masked = (torch.rand(ids.shape, generator=g) < MASK_RATE) & words
    inputs = torch.where(masked, torch.full_like(ids, UNK_ID), ids)
    hidden = t5(inputs)[0]  # [B, L, D]
    logits = (hidden * t5.config.d_model**-0.5) @ t5.shared.weight.T  # tied output embeddings, scaled as T5's head
    mlm = torch.nn.functional.cross_entropy(logits[masked], ids[masked]) if masked.any() else hidden.sum() * 0
    positions = torch.arange(ids.shape[1]).expand_as(ids)
    where = torch.nn.functional.cross_entropy(heads["position"](hidden[words]), positions[words])
    losses = {"mlm": mlm, "position": where}
    if roles is not None:
        bits, carry = roles
        carry = carry & ~masked  # a masked word's roles are a guess; its neighbours' are not
        losses["roles"] = torch.nn.functional.binary_cross_entropy_with_logits(heads["roles"](hidden[carry]),
                                                                               bits[carry])  # fmt: skip
    if identity is not None:
        target = identity.masked_fill(masked.unsqueeze(-1), IGNORE)  # as for roles: a masked word's object is a guess
        carry = target[..., 0] != IGNORE
        losses["identity"] = (torch.nn.functional.cross_entropy(heads["colour"](hidden[carry]), target[carry][:, 0])
                              + torch.nn.functional.cross_entropy(heads["shape"](hidden[carry]), target[carry][:, 1]))
    return losses


def pretrain_text_encoder(out: Path, t5, ids: torch.Tensor, *, steps: int, batch: int = 128, lr: float = 1e-3,
                          seed: int = 0, roles: tuple[torch.Tensor, torch.Tensor] | None = None,
                          role_weight: float = 4.0, role_scale: float = 1.0, identity: torch.Tensor | None = None,
                          identity_weight: float = 2.0):
    """Train (or resume) `t5` under `out` on the token ids [N, L] (and role targets [N, L, 8], [N, L], identity
    targets [N, L, 2]); returns it frozen, in eval mode."""
    from ...dataset.oracle import COLORS, SHAPES
    from .shapes_fit import fit

    torch.manual_seed(seed)
    heads = {"position": torch.nn.Linear(t5.config.d_model, ids.shape[1])}
    if roles is not None:
        heads["roles"] = RoleProbe(t5.config.d_model, len(ROLES), role_scale)
    if identity is not None:  # unit-norm rows too, at the role probe's scale: the object takes a real share
        heads["colour"] = RoleProbe(t5.config.d_model, len(COLORS), role_scale)
        heads["shape"] = RoleProbe(t5.config.d_model, len(SHAPES), role_scale)
    for head in heads.values():
        torch.nn.init.normal_(head.weight, std=0.02)
        torch.nn.init.zeros_(head.bias)
    params = {f"t5.{n}": p for n, p in t5.named_parameters()}
    for key, head in heads.items():
        params.update({f"{key}_head.{n}": p for n, p in head.named_parameters()})
    t5.train()

    def loss_at(step: int, rank: int = 0, world: int = 1) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed * 1_000_003 + step * 64 + rank)
        index = torch.randint(len(ids), (batch // world,), generator=g)
        batch_roles = None if roles is None else (roles[0][index], roles[1][index])
        losses = text_losses(t5, heads, ids[index], g, batch_roles, None if identity is None else identity[index])
        return (losses["mlm"] + losses["position"] + role_weight * losses.get("roles", 0.0)
                + identity_weight * losses.get("identity", 0.0))

    weights = fit(out, params, loss_at, steps=steps, lr=lr, warmup=100, decay_from=steps // 2, desc="text encoder",
                  checkpoint_every=250)  # fmt: skip
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(weights[name])
    if roles is not None:
        print(f"text encoder: object words with every role bit right {role_accuracy(t5, heads['roles'], ids, roles):.4f}", flush=True)
    if identity is not None:
        print(f"text encoder: object words that name their object's colour and shape "
              f"{identity_accuracy(t5, heads, ids, identity):.4f}", flush=True)
    return t5.eval().requires_grad_(False)


@torch.no_grad()
def role_accuracy(t5, head: torch.nn.Module, ids: torch.Tensor, roles, n: int = 2048) -> float:
    """Fraction of object words whose 8 role bits the probe gets all right, on the first `n` prompts, unmasked
    (per bit it would flatter: most bits are 0)."""
    bits, carry = roles[0][:n], roles[1][:n]
    hidden = t5.eval()(ids[:n])[0]
    return ((head(hidden[carry]) > 0).float() == bits[carry]).all(dim=-1).float().mean().item()


@torch.no_grad()
def identity_accuracy(t5, heads: dict[str, torch.nn.Module], ids: torch.Tensor, identity: torch.Tensor,
                      n: int = 2048) -> float:
    """Fraction of colour and shape words whose probes name both their object's colour and shape (first `n`)."""
    target = identity[:n]
    carry = target[..., 0] != IGNORE
    hidden = t5.eval()(ids[:n])[0][carry]
    right = (heads["colour"](hidden).argmax(-1) == target[carry][:, 0]) & (heads["shape"](hidden).argmax(-1) == target[carry][:, 1])
    return right.float().mean().item()


def main(argv: list[str] | None = None) -> int:
    import argparse

    from diffusers import FluxPipeline
    from transformers import T5EncoderModel

    from ...common.atomic import atomic_dir, usual_permissions
    from ...dataset.prompts import plain_prompt
    from ..shapes_generator import TEXT_LENGTH
    from ..shipped import resolve_generator
    from .shapes_data import PRETRAIN_SEED, heldout_prompts, training_scenes

    parser = argparse.ArgumentParser(prog="python -m training.grpo.recipes.shapes_text_pretrain", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--generator", default="shapes", help="the pipeline whose T5 config and tokenizer to use")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--pool", type=int, default=30_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--role-scale", type=float, default=1.0, help="the role probe's fixed logit scale")
    parser.add_argument("--objective", choices=("objects", "roles", "order"), default="objects",
                        help="objects: masked tokens + positions + each object word's roles, colour and shape "
                             "(default); roles: without colour and shape (the T5 of commit 77ca4b3); order: masked "
                             "tokens and positions only (that of commit 4a63780)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    source = FluxPipeline.from_pretrained(resolve_generator(args.generator), local_files_only=True)
    torch.manual_seed(args.seed)
    t5 = T5EncoderModel(source.text_encoder_2.config)  # from scratch: only the architecture is reused
    prompts = [plain_prompt(s) for s in training_scenes(args.pool, PRETRAIN_SEED, heldout_prompts())]
    ids = source.tokenizer_2(prompts, padding="max_length", max_length=TEXT_LENGTH, truncation=True,
                             return_tensors="pt").input_ids  # fmt: skip
    roles = role_target_batch(source.tokenizer_2, ids, prompts) if args.objective != "order" else None
    identity = identity_target_batch(source.tokenizer_2, ids, prompts) if args.objective == "objects" else None
    t5 = pretrain_text_encoder(args.out / "text_pretrain", t5, ids, steps=args.steps, seed=args.seed, roles=roles,
                               role_scale=args.role_scale, identity=identity)
    with atomic_dir(args.out / "text_encoder_2") as tmp:
        t5.save_pretrained(tmp, safe_serialization=True)
        usual_permissions(tmp)
    print(f"text encoder: {args.out / 'text_encoder_2'}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Optional paraphrasing of template prompts by a language model; the scene graph stays the truth.

Two backends: a local transformers causal LM folder (greedy decoding, so it is deterministic) or an
OpenAI-compatible chat endpoint (vLLM, Ollama, llama.cpp server...) at temperature 0. A paraphrase is used only
if both prompts of a pair survive a faithfulness check (every object's colour and noun, a keyword of every
relation); otherwise the pair keeps its template prompts, so a sloppy model can never corrupt a pair.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .scene import Scene

INSTRUCTION = (
    "Rewrite this image description in fluent, natural English. Keep every object with its colour, size, "
    "material and number, keep every spatial relation exactly as stated, add nothing, and answer with the "
    "rewritten description only.\n\nDescription: {text}"
)
KEYWORDS = {
    "left_of": ("left",), "right_of": ("right",), "above": ("above", "over", "higher"),
    "below": ("below", "beneath", "under", "lower"), "next_to": ("next", "beside", "by"),
    "between": ("between",), "in_front_of": ("front", "closer", "before"), "behind": ("behind", "back", "farther"),
    "on_top_of": ("on", "top", "atop", "resting", "sitting"), "under": ("under", "beneath", "below"),
    "inside": ("inside", "in", "within"), "partly_hidden_behind": ("hidden", "behind", "obscured", "partially"),
}


class ParaphraseError(RuntimeError):
    """The language model could not be loaded or reached."""


def faithful(text: str, scene: Scene) -> bool:
    """Does `text` still mention every object (colour + noun) and a keyword of every relation?"""
    words = set(re.findall(r"[a-z]+", text.lower()))
    if not words:
        return False
    for obj in scene.objects:
        noun = obj.category.split()[-1]
        if obj.color not in words or not ({noun, noun + "s", noun + "es"} & words or noun[:-1] + "ves" in words):
            return False
    return all(any(k in words for k in KEYWORDS[r.predicate]) for r in scene.relations)


def _clean(text: str) -> str:
    text = text.strip().strip('"').strip()
    return text.split("\n\n")[0].strip()


class LocalParaphraser:
    def __init__(self, folder: str | os.PathLike, device: str = "auto", max_new_tokens: int | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from .generators import resolve_device

        folder = Path(folder)
        if not (folder / "config.json").is_file():
            raise ParaphraseError(f"paraphrase model folder not found or has no config.json: {folder} "
                                  "(expected a local transformers causal LM folder)")
        self.device = resolve_device(device)
        dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
            self.model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, dtype=dtype)
        except Exception as exc:
            raise ParaphraseError(f"cannot load paraphrase model {folder}: {type(exc).__name__}: {exc}") from exc
        self.model.to(self.device).eval()
        self.max_new_tokens = max_new_tokens  # None: twice the request's length, at most 384

    def __call__(self, text: str) -> str:
        import torch

        request = INSTRUCTION.format(text=text)
        if getattr(self.tokenizer, "chat_template", None):
            ids = self.tokenizer.apply_chat_template([{"role": "user", "content": request}], add_generation_prompt=True,
                                                     return_tensors="pt", return_dict=True)["input_ids"]
        else:
            ids = self.tokenizer(request + "\nRewritten:", return_tensors="pt")["input_ids"]
        ids = ids.to(self.device)
        with torch.inference_mode():
            out = self.model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                      max_new_tokens=self.max_new_tokens or min(384, 2 * ids.shape[1] + 32),
                                      pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id)
        return _clean(self.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True))

    def release(self) -> None:
        self.model = None


class _GuardedRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect without leaking the API key: the Authorization header goes only to the origin that was
    asked (scheme, host and port), and an https -> http downgrade is refused outright."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        old, new = urllib.parse.urlsplit(req.full_url), urllib.parse.urlsplit(newurl)
        if old.scheme == "https" and new.scheme != "https":
            raise urllib.error.HTTPError(newurl, code, f"refused a redirect from https to {new.scheme}: "
                                                       f"{req.full_url} -> {newurl}", headers, fp)
        new_req = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new_req is not None and (old.scheme, old.hostname, old.port) != (new.scheme, new.hostname, new.port):
            for name in list(new_req.headers):
                if name.lower() in ("authorization", "cookie"):
                    del new_req.headers[name]
            new_req.unredirected_hdrs.pop("Authorization", None)
        return new_req


_OPENER = urllib.request.build_opener(_GuardedRedirects)


class EndpointParaphraser:
    def __init__(self, url: str, model: str = "default", api_key: str | None = None, timeout: float = 120.0):
        url = url.rstrip("/")
        self.url = url if url.endswith("/chat/completions") else url + "/chat/completions"
        self.model = model
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "")
        self.timeout = timeout

    def __call__(self, text: str) -> str:
        body = {"model": self.model, "temperature": 0, "seed": 0, "max_tokens": 400,
                "messages": [{"role": "user", "content": INSTRUCTION.format(text=text)}]}
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(self.url, json.dumps(body).encode(), headers, method="POST")
        try:
            with _OPENER.open(req, timeout=self.timeout) as resp:
                reply = json.loads(resp.read())
            return _clean(reply["choices"][0]["message"]["content"])
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise ParaphraseError(f"paraphrase endpoint {self.url} unreachable: {exc}") from exc
        except (KeyError, IndexError, TypeError, json.JSONDecodeError) as exc:
            raise ParaphraseError(f"paraphrase endpoint {self.url} gave no chat completion: {exc!r}") from exc


def paraphrase_pair(paraphraser, prompt: str, perturbed: str, scene: Scene, perturbed_scene: Scene):
    """(prompt, perturbed prompt, True) rewritten, or the originals and False when either rewrite is unfaithful."""
    a, b = paraphraser(prompt), paraphraser(perturbed)
    if a and b and a != b and faithful(a, scene) and faithful(b, perturbed_scene):
        return a, b, True
    return prompt, perturbed, False

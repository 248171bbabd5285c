"""Turn a chunk of planned pairs into images on disk and manifest rows (or drop records).

Shapes world without generators: render exactly, check with the oracle. With generators: optional paraphrase,
then each generator in turn makes its scenes' images in batches (one model on the accelerator at a time unless
keep_loaded), then the oracle (shapes prompts) and/or a scorer verify, then rows. Images already on disk are
reused: they are named after what made them, so a resumed build never regenerates finished work.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from tqdm import tqdm

from .config import BuildConfig
from .oracle import find_objects
from .plan import PairPlan, ScenePlan
from .prompts import relation_text
from .shapes_render import render_shapes
from .verify import oracle_check_chosen, oracle_check_rejected, scorer_margins


def _digest(*parts) -> str:
    return hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=6).hexdigest()


def save_png_atomic(img, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    img.save(tmp, format="PNG")
    os.replace(tmp, path)


def make_row(cfg: BuildConfig, sp: ScenePlan, pp: PairPlan, chosen: str, rejected: str, generator: str,
             prompt: str, perturbed: str, verification: dict, paraphrased: bool | None) -> dict:
    changes = pp.perturbation.changes
    row = {
        "id": pp.id, "scene_id": sp.id, "split": sp.split, "world": cfg.world,
        "prompt": prompt, "perturbed_prompt": perturbed, "chosen": chosen, "rejected": rejected,
        "perturbations": len(changes),
        "changed": [{"index": c.index, "op": c.op, "before": c.before.to_dict(), "after": c.after.to_dict(),
                     "before_text": relation_text(sp.scene, c.before),
                     "after_text": relation_text(pp.perturbation.scene, c.after)} for c in changes],
        "relation_types": [c.before.predicate for c in changes],
        "generator": generator, "seeds": dict(pp.seeds), "prompt_style": sp.choices.style,
        "plain_prompt": sp.plain, "perturbed_plain_prompt": pp.plain_perturbed,
        "scene": sp.scene.to_dict(), "perturbed_scene": pp.perturbation.scene.to_dict(),
        "verification": verification,
    }
    if paraphrased is not None:
        row["paraphrased"] = paraphrased
    return row


class ChunkWorker:
    def __init__(self, cfg: BuildConfig, out: Path, log=print, load_scorer=None):
        """`load_scorer(name, device=...)`: what loads cfg.verify_scorer (training.reward.load_scorer, handed down
        by the caller: the dataset stage does not import the reward's)."""
        from .generators import ModelSlot

        self.cfg, self.out, self.log, self.load_scorer = cfg, out, log, load_scorer
        self.slot = ModelSlot(cfg.keep_loaded)
        self.bar = None
        self._paraphrases: dict[str, str] = {}

    def open_progress(self, total: int, initial: int) -> None:
        self.bar = tqdm(total=total, initial=initial, desc="pairs", unit="pair", disable=not self.cfg.progress,
                        dynamic_ncols=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.slot.clear()

    def _dir(self, sp: ScenePlan) -> Path:
        return self.out / "images" / f"{sp.index // 1000:04d}"

    def _rel(self, path: Path) -> str:
        return path.relative_to(self.out).as_posix()

    def run(self, chunk: list[tuple[ScenePlan, PairPlan]]) -> tuple[list[dict], list[dict]]:
        return self._run_generators(chunk) if self.cfg.generators else self._run_shapes(chunk)

    # ------------------------------------------------------------ shapes world, rendered
    def _run_shapes(self, chunk):
        size = self.cfg.image_size
        rows, drops, scenes = [], [], {}
        for (sp, pp), (prompt, perturbed, para) in zip(chunk, self._prompts(chunk), strict=True):
            if sp.index not in scenes:
                img = render_shapes(sp.scene, size)
                path = self._dir(sp) / f"{sp.id}_c{_digest(json.dumps(sp.scene.to_dict()), size)}.png"
                colors = sorted({o.color for o in sp.scene.objects})
                scenes[sp.index] = [img, path, oracle_check_chosen(find_objects(img, colors), sp), False, colors]
            img, path, chosen_ok, written, colors = scenes[sp.index]
            rimg = render_shapes(pp.perturbation.scene, size)
            verdict = {"oracle": {"chosen": chosen_ok, "rejected": oracle_check_rejected(find_objects(rimg, colors), sp, pp)}}
            if self.cfg.verify_oracle and not all(verdict["oracle"].values()):
                drops.append({"id": pp.id, "reason": "oracle", "verification": verdict})
                continue
            if not written:
                save_png_atomic(img, path)
                scenes[sp.index][3] = True
            rpath = self._dir(sp) / f"{pp.id}_r{_digest(json.dumps(pp.perturbation.scene.to_dict()), size)}.png"
            save_png_atomic(rimg, rpath)
            rows.append(make_row(self.cfg, sp, pp, self._rel(path), self._rel(rpath), "shapes", prompt, perturbed,
                                 verdict, para))
            self.bar.update(1)
        return rows, drops

    # ------------------------------------------------------------ generators
    def _paraphraser(self):
        from .paraphrase import EndpointParaphraser, LocalParaphraser

        cfg = self.cfg
        if cfg.paraphrase_url:
            return EndpointParaphraser(cfg.paraphrase_url, cfg.paraphrase_api_model)
        return self.slot.get("paraphraser", lambda: LocalParaphraser(cfg.paraphrase_model, cfg.device))

    def _paraphrase(self, para, text: str) -> str:
        if text not in self._paraphrases:
            self._paraphrases[text] = para(text)
        return self._paraphrases[text]

    def _prompts(self, chunk) -> list[tuple[str, str, bool | None]]:
        """The (prompt, perturbed prompt, paraphrased?) each pair is generated and stored with."""
        from .paraphrase import faithful

        if not (self.cfg.paraphrase_model or self.cfg.paraphrase_url):
            return [(pp.prompt, pp.perturbed_prompt, None) for _, pp in chunk]
        para = self._paraphraser()
        out = []
        for sp, pp in tqdm(chunk, desc="paraphrase", leave=False, disable=not self.cfg.progress):
            a = self._paraphrase(para, pp.prompt)
            b = self._paraphrase(para, pp.perturbed_prompt)
            ok = a != b and faithful(a, sp.scene) and faithful(b, pp.perturbation.scene)
            out.append((a, b, True) if ok else (pp.prompt, pp.perturbed_prompt, False))
        return out

    def _run_generators(self, chunk):
        from .generators import Generator

        cfg = self.cfg
        names = cfg.generator_names
        prompts = self._prompts(chunk)
        paths, jobs = [], {}  # jobs: generator index -> {path: (prompt, seed)}
        for (sp, pp), (prompt, perturbed, _) in zip(chunk, prompts, strict=True):
            g = sp.generator
            cpath = self._dir(sp) / f"{sp.id}_c{_digest(names[g], pp.seeds['chosen'], cfg.height, cfg.width, prompt)}.png"
            rpath = self._dir(sp) / f"{pp.id}_r{_digest(names[g], pp.seeds['rejected'], cfg.height, cfg.width, perturbed)}.png"
            paths.append((cpath, rpath))
            for path, text, seed in ((cpath, prompt, pp.seeds["chosen"]), (rpath, perturbed, pp.seeds["rejected"])):
                if not (path.exists() and path.stat().st_size > 0):
                    jobs.setdefault(g, {})[path] = (text, seed)
        n_images = sum(len(j) for j in jobs.values())
        with tqdm(total=n_images, desc="images", unit="img", leave=False, disable=not cfg.progress) as ibar:
            for g in sorted(jobs):
                gen = self.slot.get(f"generator:{g}", lambda g=g: Generator(cfg.generators[g], names[g], cfg.device,
                                                                             cfg.pipeline_kwargs))
                items = list(jobs[g].items())
                for i in range(0, len(items), cfg.batch_size):
                    batch = items[i:i + cfg.batch_size]
                    images = gen([t for _, (t, _) in batch], [s for _, (_, s) in batch], cfg.height, cfg.width,
                                 cfg.steps, cfg.guidance)
                    for (path, _), img in zip(batch, images, strict=True):
                        save_png_atomic(img, path)
                    ibar.update(len(batch))
        verdicts = self._verify(chunk, prompts, paths)
        rows, drops = [], []
        for (sp, pp), (prompt, perturbed, para), (cpath, rpath), verdict in zip(chunk, prompts, paths, verdicts,
                                                                                 strict=True):
            failed = []
            if "oracle" in verdict and cfg.verify_oracle and not all(verdict["oracle"].values()):
                failed.append("oracle")
            if "scorer" in verdict and not verdict["scorer"]["margin"] > cfg.verify_margin:
                failed.append("scorer")
            if failed:
                drops.append({"id": pp.id, "reason": "+".join(failed), "verification": verdict})
                continue
            rows.append(make_row(cfg, sp, pp, self._rel(cpath), self._rel(rpath), names[sp.generator], prompt,
                                 perturbed, verdict, para))
        self.bar.update(len(rows))
        return rows, drops

    def _verify(self, chunk, prompts, paths) -> list[dict]:
        cfg = self.cfg
        verdicts: list[dict] = [{} for _ in chunk]
        if cfg.world == "shapes":
            for v, (sp, pp), (cpath, rpath) in zip(verdicts, chunk, paths, strict=True):
                v["oracle"] = {"chosen": oracle_check_chosen(find_objects(cpath), sp),
                               "rejected": oracle_check_rejected(find_objects(rpath), sp, pp)}
        if cfg.verify_scorer:
            scorer = self.slot.get("scorer", lambda: self.load_scorer(
                cfg.verify_scorer, device=None if cfg.device == "auto" else cfg.device))
            margins = scorer_margins(scorer, [str(c) for c, _ in paths], [str(r) for _, r in paths],
                                     [p for p, _, _ in prompts])
            for v, m in zip(verdicts, margins, strict=True):
                v["scorer"] = m
        return verdicts

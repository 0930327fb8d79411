"""Walk the method's plan (:mod:`lintx.method`): find each model in the store or train it, parents first.

For a missing model, :func:`get_or_train` walks its :func:`lintx.method.lineage` in order. Each model not in
the store is trained under a lock on its name from all of its starts at once (vmapped,
:func:`lintx.train.train`): the trained models it grows from and embeds (:func:`warm_start`) and its
random starts. Then:

- **acceptance**: a training that diverges, or whose best candidate fails the held-out check on the seed's
  validation sequences (:func:`lintx.selection.held_out_problem`: a model can train to a good loss and still explode on one
  sequence in 100,000), is retried with the learning rate divided by ``RETRY_LR_DIVISOR``, up to
  ``MAX_RETRIES`` times;
- **selection**: the checkpoint is the candidate with the lowest loss on the seed's selection sequences, or
  an untrained start if one is lower there (:func:`against_starts`); if every training diverged, the best
  warm start is kept (:func:`kept_start`). A model without warm starts that diverges is recorded as failed
  in the store and reported, not retrained.

The sidecar records how the checkpoint was chosen (``retries``, ``validation_loss``, ``start``,
``start_losses``, ``kept_start``). The validation and selection sequences, and the scores on them, are
:mod:`lintx.selection`'s.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

import jax
import numpy as np

from lintx import store
from lintx.checkpoint import Checkpoint, DivergedError, finite_or_none, from_training
from lintx.method import (MAX_RETRIES, RETRY_LR_DIVISOR, START_STRIDE, Profile,
                          falling_rule, get_profile, names, parents, random_starts, recipe)
from lintx.model import Model, ModelConfig, to_full
from lintx.tasks import Noise
from lintx.selection import held_out_loss, held_out_problem, scorer, selection_blocks, selection_loss, selection_scores, stack_scores
from lintx.recipe import TrainConfig
from lintx.train import TrainResult, check_seed, embed, grow, random_init, train, unstack

def start_seeds(seed: int, starts: int) -> tuple[int, ...]:
    """The training seeds of a seed's candidates: the seed itself, then ``seed + k * START_STRIDE``."""
    return tuple(check_seed(seed) + k * START_STRIDE for k in range(starts))


def _wsd(prof: Profile, cfg: ModelConfig, noise: Noise, seed: int, init: list) -> tuple[dict, Optional[list]]:
    """How a wsd budget's training judges its cooled copies (``look`` and ``falling`` of
    :func:`lintx.train.train`): by their :func:`selection_scores` on the seed's selection blocks, drawn once,
    under the method's rule given the scores of the starts ``init``; and those scores. Nothing for another
    schedule."""
    if prof.budget.schedule != "wsd":
        return {}, None
    blocks = selection_blocks(noise, seed, cfg.d, cfg.n)
    scores = selection_scores([Model(cfg, p) for p in init], blocks)
    return ({"look": lambda params: stack_scores(cfg, blocks, params),
             "falling": falling_rule(prof.budget, scores)}, scores.tolist())


def selection_losses(cfg: ModelConfig, noise: Noise, seed: int, result: TrainResult, score=selection_loss) -> np.ndarray:
    """``score`` (:func:`scorer`) of each candidate in ``result``; ``inf`` for one that diverged. A wsd
    training looked at each already: the look of the copy it kept (its lowest)."""
    if result.looks is not None:
        with np.errstate(invalid="ignore"):
            kept = np.fmin.reduce(result.looks, axis=1)
        return np.where(result.diverged | ~np.isfinite(kept), np.inf, kept)
    out = np.full(len(result.seeds), np.inf)
    for i in range(len(result.seeds)):
        if not result.diverged[i]:
            out[i] = score(Model(cfg, unstack(result, i)), noise, seed)
    return out


def best_candidate(cfg: ModelConfig, noise: Noise, tc: TrainConfig, seed: int, result: TrainResult, score=selection_loss) -> Checkpoint:
    """The checkpoint of ``seed`` from a training of its candidates: the one with the lowest selection loss
    (:func:`selection_losses`); with one, that one. Raises ``DivergedError`` if all diverged."""
    if len(result.seeds) == 1:
        return from_training(cfg, noise, tc, result, 0)
    losses = selection_losses(cfg, noise, seed, result, score)
    i = int(np.argmin(losses))
    ckpt = from_training(cfg, noise, tc, result, i)  # DivergedError if every candidate diverged
    meta = {**ckpt.meta, "seed": seed, "start": i, "start_seed": result.seeds[i],
            "selection_losses": finite_or_none(losses)}
    return dataclasses.replace(ckpt, meta=meta)


def against_starts(ckpt: Checkpoint, init: list, seed: int, score=selection_loss, losses: Optional[list] = None) -> Checkpoint:
    """``ckpt``, or the untrained start in ``init`` (raw parameters of ``ckpt.cfg``) with a lower loss on the
    seed's selection sequences, so training never makes a model worse than where it started there. The
    sidecar records the starts' losses (``start_losses``) and, if one was kept, which (``kept_start``, its
    index in ``init``; ``start`` says which start the trained candidate came from)."""
    known = ckpt.meta.get("selection_losses")  # computed already where several candidates trained
    looks = [x for x in ckpt.meta.get("looks") or () if x is not None]  # a wsd training scored its kept copy: its lowest look
    trained = known[ckpt.meta["start"]] if known else min(looks, default=np.inf) if "looks" in ckpt.meta else score(ckpt.model, ckpt.noise, seed)
    trained = np.inf if trained is None else trained
    losses = [score(Model(ckpt.cfg, params), ckpt.noise, seed) for params in init] if losses is None else losses
    meta = {**ckpt.meta, "trained_selection_loss": float(trained) if np.isfinite(trained) else None,
            "start_losses": finite_or_none(losses)}
    i = int(np.argmin(losses))
    if not losses[i] < trained:
        return dataclasses.replace(ckpt, meta=meta)
    P, Q = (np.asarray(m).astype(ckpt.P.dtype) for m in to_full(ckpt.cfg, init[i]))
    return dataclasses.replace(ckpt, P=P, Q=Q, meta={**meta, "kept_start": i})


def kept_start(cfg: ModelConfig, noise: Noise, tc: TrainConfig, seed: int, warm: list, problem: str, retries: int,
               validation_num: int, score=selection_loss, losses: Optional[list] = None) -> Checkpoint:
    """The checkpoint of a model whose every training diverged (``problem``, after ``retries``): the warm start
    in ``warm`` (raw parameters: the grown model, the embedded one) with the lowest loss on the seed's
    selection sequences. Those are trained models already accepted, so the method never loses what a start
    already has. Its ``final_loss`` is that selection loss (there was no training to take it from); the
    sidecar says why (``trained``) and which start was kept (``kept_start``, its ``start_losses``: ``losses``
    where the starts were scored already)."""
    losses = [score(Model(cfg, params), noise, seed) for params in warm] if losses is None else list(losses)
    i = int(np.argmin(losses))
    P, Q = (np.asarray(m, np.float32) for m in to_full(cfg, warm[i]))
    final = selection_loss(Model(cfg, warm[i]), noise, seed) if score is not selection_loss else losses[i]
    meta = {"seed": seed, "train": tc.to_json(), "steps": tc.steps, "final_loss": float(final), "skipped_steps": 0,
            "retries": retries, "kept_start": i, "start_losses": finite_or_none(losses),
            "trained": f"every candidate diverged: {problem}"}
    ckpt = Checkpoint(cfg, noise, P, Q, meta)
    return dataclasses.replace(ckpt, meta={**meta, "validation_loss": held_out_loss(ckpt, validation_num)})


def warm_start(cfg: ModelConfig, noise: Noise, parent: Checkpoint, seed: int, tc: TrainConfig) -> dict:
    """Starting parameters of ``cfg`` from a trained ``parent``: grown by one layer or embedded."""
    if parent.cfg.variant == cfg.variant and parent.cfg.layers == cfg.layers - 1:
        return grow(cfg, noise, parent.model.params, seed, tc)
    return embed(cfg, parent.cfg, parent.model.params)


def precision(tc: TrainConfig):
    """The JAX setting a recipe trains under (a context manager): 64-bit off for the method's float32
    recipes whatever the process's setting (on for a float64 :class:`TrainConfig`, which benchmarks use).
    Evaluation stays outside it, in float32, as Table 1's."""
    return jax.enable_x64(tc.dtype == "float64")


def num_candidates(prof: Profile, cfg: ModelConfig, noise: Noise) -> int:
    """How many trainings of ``cfg`` on ``noise`` one seed costs: its warm starts and its random starts."""
    return sum(p is not None for p in parents(prof.budget, cfg, noise)) + random_starts(prof.budget, cfg, noise)


def _accepted(prof: Profile, cfg: ModelConfig, noise: Noise, seed: int, tc: TrainConfig, init: list, callback, wsd: dict) -> tuple:
    """The candidates of ``(cfg, noise, seed)`` through acceptance: trained together from ``init`` with ``tc``,
    the best held-out checked, and retried at a lower learning rate while it diverges. Returns
    ``(checkpoint or None, problem or None, validation loss, retries, the last TrainResult, the last recipe)``;
    the checkpoint's meta has ``retries`` and ``validation_loss``."""
    for retry in range(MAX_RETRIES + 1):
        try:
            with precision(tc):  # training and gathering the weights; the held-out check is float32
                result = train(cfg, noise, tc, seeds=start_seeds(seed, len(init)), callback=callback, init=init, **wsd)
                ckpt = best_candidate(cfg, noise, tc, seed, result, scorer(prof))  # raises DivergedError if training diverged
            validation_loss = held_out_loss(ckpt, prof.validation_num)
            problem = held_out_problem(ckpt, validation_loss)
            problem = problem and problem + "; not saving it"
        except DivergedError as e:
            problem, validation_loss = str(e), None
        if problem is None:
            return dataclasses.replace(ckpt, meta={**ckpt.meta, "retries": retry, "validation_loss": validation_loss}), None, validation_loss, retry, result, tc
        if retry < MAX_RETRIES:
            tc = dataclasses.replace(tc, lr=tc.lr / RETRY_LR_DIVISOR)
    return None, problem, validation_loss, retry, result, tc


def _fit(prof: Profile, cfg: ModelConfig, noise: Noise, seed: int, paths: dict, get: Callable[[ModelConfig], Checkpoint],
         callback, log) -> Checkpoint:
    """The checkpoint of one model whose parents are in the store (``get`` loads them; ``paths`` holds the
    lineage's files): found, or trained under a lock on its name and put."""
    path = paths[cfg]
    path.parent.mkdir(parents=True, exist_ok=True)
    with store.locked(path):
        if store.is_trained(path):  # trained by another process while we waited
            return store.load_as(path, cfg, noise, seed)
        store.raise_if_failed(path)
        tc = recipe(prof.budget, cfg, noise)
        starts = [get(p) for p in parents(prof.budget, cfg, noise) if p is not None]
        random = start_seeds(seed, len(starts) + random_starts(prof.budget, cfg, noise))[len(starts):]
        with precision(tc):  # the starts are drawn as training would draw them
            warm = [warm_start(cfg, noise, p, seed, tc) for p in starts]
            init = [*warm, *(random_init(cfg, noise, tc, s) for s in random)]
        start = time.perf_counter()
        wsd, scores = _wsd(prof, cfg, noise, seed, init)
        ckpt, problem, validation_loss, retry, result, tc = _accepted(prof, cfg, noise, seed, tc, init, callback, wsd)
        if ckpt is not None:
            ckpt = against_starts(ckpt, init, seed, scorer(prof), scores)
        elif warm:  # every training diverged: the best warm start
            ckpt, problem = kept_start(cfg, noise, tc, seed, warm, problem, retry, prof.validation_num, scorer(prof),
                                       scores and scores[:len(warm)]), None
        if problem is not None:
            store.record_failure(path, {"error": problem, "retries": retry, "train": tc.to_json(), "validation_loss": validation_loss,
                                        "final_loss": float(np.min(result.final_loss)), "skipped_steps": int(np.min(result.skipped_steps)),
                                        "seconds": round(time.perf_counter() - start, 2)})
            raise DivergedError(problem)
        meta = {**ckpt.meta, "profile": prof.name, "validation_num": prof.validation_num}
        for field, p in zip(("grown_from", "embedded_from"), parents(prof.budget, cfg, noise)):
            if p is not None:
                meta[field] = paths[p].name
        ckpt = store.put(path, dataclasses.replace(ckpt, meta=meta))
        if log is not None:
            log({"checkpoint": path.name, "profile": prof.name, "seconds": round(time.perf_counter() - start, 2),
                 "final_loss": ckpt.meta["final_loss"], "validation_loss": ckpt.meta["validation_loss"], "retries": ckpt.meta["retries"],
                 "steps": ckpt.meta["steps"], "starts": len(init), "start": ckpt.meta.get("start", 0),
                 "kept_start": ckpt.meta.get("kept_start"), **_looks_of(result)})
        return ckpt


def _looks_of(result: TrainResult) -> dict:
    """What a wsd training measured, per candidate, for the training log: its looks (None where it was not
    looked at) and its restarts. Nothing for another schedule."""
    if result is None or result.looks is None:
        return {}
    return {"looks": [finite_or_none(row) for row in result.looks],
            "restarts": [int(r) for r in result.restarts]}


def get_or_train(data_dir, profile: str | Profile, cfg: ModelConfig, noise: Noise, seed: int,
                 callback: Optional[Callable[[int, object], None]] = None, log: Optional[Callable[[dict], None]] = None) -> Checkpoint:
    """The checkpoint of ``(profile, cfg, noise, seed)``: loaded from ``data_dir``, or trained and saved
    after every model it starts from (:func:`lintx.method.lineage`), which are found or trained first.

    ``callback(steps_done, chunk_losses)`` sees the training's progress; ``log(record)`` receives one dict
    per model trained (name, seconds, final loss, retries, the candidates and the one kept).
    """
    prof = get_profile(profile)
    path = store.checkpoint_path(data_dir, prof, cfg, noise, seed)
    if store.is_trained(path):
        return store.load_as(path, cfg, noise, seed)
    store.raise_if_failed(path)
    paths = _paths(data_dir, prof, cfg, noise, seed)
    loaded: dict[ModelConfig, Checkpoint] = {}

    def get(c: ModelConfig) -> Checkpoint:
        if c not in loaded:
            loaded[c] = store.load_as(paths[c], c, noise, seed)
        return loaded[c]

    for c, p in paths.items():  # the lineage, parents first
        if not store.is_trained(p):
            loaded[c] = _fit(prof, c, noise, seed, paths, get, callback, log)
    return get(cfg)


def _paths(data_dir, prof: Profile, cfg: ModelConfig, noise: Noise, seed: int) -> dict:
    """Where the checkpoints of ``cfg``'s lineage are kept, parents first."""
    return {c: Path(data_dir) / prof.name / n for c, n in names(prof, cfg, noise, seed).items()}


def recorded_failure(data_dir, profile: str | Profile, cfg: ModelConfig, noise: Noise, seed: int):
    """The divergence record that keeps ``(profile, cfg, noise, seed)`` from being trained: its own, or that of
    a model it starts from that is not trained; None if there is none."""
    prof = get_profile(profile)
    paths = _paths(data_dir, prof, cfg, noise, seed)
    if store.is_trained(paths[cfg]):
        return None
    for path in paths.values():
        if not store.is_trained(path) and store.failure_path(path).exists():
            return store.failure_path(path)
    return None


def checkpoints(data_dir, profile: str | Profile, cfg: ModelConfig, noise, seeds: Sequence[int], train_missing: bool = True,
                extra_seeds: Sequence[int] = ()) -> list[tuple[int, Path]]:
    """``(seed, path)`` of each seed's checkpoint in ``data_dir``; a missing one is trained (and cached)
    if ``train_missing``, else left out. ``extra_seeds`` are used where ``data_dir`` has them and never
    trained (the shipped cache has 5 seeds at ``sigma_max = 5``; a figure asks for seed 0 and uses the
    others where they exist). A model whose training diverged after every retry is left out."""
    found = []
    for s in [*seeds, *(s for s in extra_seeds if s not in seeds)]:
        path = store.checkpoint_path(data_dir, profile, cfg, noise, s)
        if not store.is_trained(path):
            if not train_missing or s not in seeds or recorded_failure(data_dir, profile, cfg, noise, s) is not None:
                continue
            try:
                get_or_train(data_dir, profile, cfg, noise, s)
            except DivergedError:  # recorded by the store; reported as missing
                continue
        found.append((s, path))
    return found

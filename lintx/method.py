"""The training method: one rule for every model, of the study and of any other setting.

    Every model is trained by normalised Adam (:mod:`lintx.train`) from the best of its starts:
    1. a 1-layer model from a random start;
    2. an L-layer model (L >= 2) grown from the trained (L-1)-layer model of its variant (a new last layer
       drawn near zero, so it starts where the shallower model ended);
    3. DIAG and FULL also from the trained model of the variant they contain (GD++ in DIAG, DIAG in FULL),
       embedded exactly at the same depth (a second candidate, trained alike).
    4. Each candidate trains at a held rate (a short warm-up to ``lr``), at a batch that grows with the
       square root of the parameters per layer (:func:`batch`). After ``phase`` held steps, and after each
       doubling of them up to ``steps``, a copy is cooled to rate 0 over ``cooldown`` steps (scaled alike)
       and scored on the seed's held-out selection sequences (:mod:`lintx.schedule`).
    5. A candidate trains on while its cooled copies still fall by ``plateau`` a doubling and that fall,
       repeated, could take it below the model's best (:func:`still_falling`): so each model's length
       follows from its own loss, by one rule, and compute goes where the loss still falls.
    6. The checkpoint is the best cooled copy or start on the selection sequences, so a model is never
       worse there than the shallower model or the simpler variant it contains (the nesting of Sec. 5).
       A candidate whose cooled copy diverged starts again from its start at a third of its rate, twice,
       while the others train on; if it still diverges, the best start is kept.
    Under the plain ``cosine`` schedule (``Budget()``'s defaults) each candidate
    trains ``steps`` steps, a 10% warm-up then a cosine decay, and the last step competes.

Nothing here names a noise setting, a depth or a variant-depth pair: the plan is a function of the
architecture (its depth and the variant it contains) and of the budget. The noise enters only through the
parameter normalisation of :func:`lintx.train.param_scales` (its ``E[sigma^2]``). The named profiles are
budgets of this method (:data:`PROFILES`); ``docs/method.md`` states it, and ``benchmarks/RESULTS.md``
("One method for every model") holds the development runs on settings outside Table 1 that chose the
default budget.

This module plans and names; it reads and writes no files. :mod:`lintx.fit` walks the plan, and
:mod:`lintx.store` keeps what it trains under :func:`name`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import numbers
from typing import Optional

import numpy as np

from lintx.model import ModelConfig
from lintx.schedule import look_steps
from lintx.tasks import Noise
from lintx.recipe import TrainConfig
from lintx.train import check_seed
from lintx.versions import NUMERICS

# the variant each one contains (Sec. 5: GD++ is DIAG with q_y = 0, DIAG is FULL with diagonal P, Q)
CONTAINS = {"full": "diag", "diag": "gdpp"}

# Acceptance (lintx.fit): a candidate that diverges is retried with the learning rate divided by
# RETRY_LR_DIVISOR, up to MAX_RETRIES times. A trained model fails the held-out check if its loss on
# ``Profile.validation_num`` fresh sequences exceeds VALIDATION_FACTOR times its final training loss plus
# VALIDATION_SLACK (a floor, so near-noiseless models are not failed for a 1e-6 wobble). Candidates and
# starts compete on SELECTION_NUM sequences of the seed's selection stream; random start k of seed s
# trains with seed s + k * START_STRIDE.
MAX_RETRIES = 2
RETRY_LR_DIVISOR = 3
VALIDATION_FACTOR = 1.5
VALIDATION_SLACK = 1e-3
SELECTION_NUM = 50_000
SELECTION_BLOCKS = 5  # wsd: the selection sequences are drawn and scored in this many blocks
START_STRIDE = 1_000_000


@dataclasses.dataclass(frozen=True)
class Budget:
    """How much compute each candidate of each model gets. Frozen: a mistyped field is an error.

    The defaults are the method's plain recipe: 1000 steps a candidate at a cosine schedule, batch 512. The
    shipped profile (:data:`DEFAULT`) sets ``schedule="wsd"`` and its ``phase``, ``cooldown`` and
    ``plateau``, so that ``steps`` is a cap and each candidate's length is measured
    (``benchmarks/RESULTS.md``, "One method for every model").
    ``warm_starts=False`` trains every model from random starts only (the paper's protocol);
    ``scale_batch=False`` keeps ``batch`` for every architecture.
    """

    steps: int = 1000  # Adam steps per candidate
    batch: int = 512
    lr: float = 2e-2
    warmup: float = 0.1
    b2: float = 0.99
    init_std: float = 0.01  # a random start and a grown layer, in normalised parameters
    random_starts: int = 0  # random starts trained beside the warm ones, for every model
    chunk: int = 100
    schedule: str = "cosine"
    clip: float = 1.0
    normalise: bool = True
    warm_starts: bool = True
    scale_batch: bool = True
    warm_lr: Optional[float] = None  # the learning rate of a model with a warm start (None: lr)
    plateau: float = 0.02  # schedule "wsd": the least relative fall of a cooled copy's loss for which training goes on
    phase: int = 0  # schedule "wsd": held steps between two looks at a cooled copy (``steps``: the most held steps)
    cooldown: int = 0  # schedule "wsd": steps of a copy's cool-down before it is looked at

    def __post_init__(self):
        for name, least in (("steps", 1), ("batch", 1), ("chunk", 1), ("random_starts", 0), ("phase", 0), ("cooldown", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < least:
                raise ValueError(f"Budget.{name} must be an integer >= {least}, got {v!r}")
        for name in ("warm_starts", "scale_batch"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"Budget.{name} must be a bool, got {getattr(self, name)!r}")
        TrainConfig(**self._train_fields())  # the rest is checked where it is used
        if isinstance(self.plateau, bool) or not isinstance(self.plateau, numbers.Real) or not 0 <= self.plateau < 1:
            raise ValueError(f"Budget.plateau must be a number in [0, 1), got {self.plateau!r}")
        if self.warm_lr is not None:
            try:
                TrainConfig(**{**self._train_fields(), "lr": self.warm_lr})
            except (TypeError, ValueError) as e:
                raise ValueError(f"Budget.warm_lr must be None or a learning rate > 0, got {self.warm_lr!r}") from e

    def _train_fields(self) -> dict:
        return dict(steps=self.steps, batch=self.batch, lr=self.lr, warmup=self.warmup, b2=self.b2, init_std=self.init_std,
                    chunk=min(self.chunk, self.steps), schedule=self.schedule, clip=self.clip, normalise=self.normalise,
                    **({"phase": self.phase, "cooldown": self.cooldown, "restarts": MAX_RETRIES, "restart_divisor": RETRY_LR_DIVISOR}
                       if self.schedule == "wsd" else {}))


@dataclasses.dataclass(frozen=True)
class Profile:
    """A named budget of the method: how many seeds the study trains, and the held-out check's size."""

    name: str
    budget: Budget
    seeds: int
    description: str
    validation_num: int = 50_000  # sequences a new model is checked on before it is saved (lintx.fit)

    def __post_init__(self):
        if not isinstance(self.budget, Budget):
            raise TypeError(f"profile {self.name!r}: budget must be a Budget, got {type(self.budget).__name__}")
        for name in ("seeds", "validation_num"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"profile {self.name!r}: {name} must be an integer >= 1, got {v!r}")


SHIPPED = Profile("brisk", Budget(steps=3200, schedule="wsd", phase=200, cooldown=50, chunk=50, plateau=0.05), 5,
                  "the method with its length by rule (the shipped study): the rate held, a cooled copy looked at after 200 held steps "
                  "and each doubling, cooled over a quarter of them, each candidate training on while its copies fall 5% a doubling and its "
                  "fall could still take it below the model's best, at most 3200 held steps")
PROFILES = {p.name: p for p in (
    SHIPPED,
    Profile("quick", dataclasses.replace(SHIPPED.budget, steps=400, batch=256), 1,
            "the shipped rule at an eighth of its cap and half its batch, one seed: looks after 200 and 400 held steps, so every "
            "candidate trains 400; about 45 minutes for the grid and figures on two cores (smoke runs, a first look)", 10_000),
    Profile("paper", Budget(steps=200_000, batch=2048, lr=1e-4, warmup=0.0, b2=0.999, init_std=0.01, chunk=1000, schedule="constant",
                            clip=0.0, normalise=False, warm_starts=False, scale_batch=False), 5,
            "the paper's protocol verbatim (Sec. 6, App. B): Adam 1e-4 on raw parameters, batch 2048, 200,000 steps, a random start"),
    Profile("tiny", Budget(steps=20, batch=64, lr=1e-2, chunk=10), 1, "tests only: 20 steps at batch 64, meaningless numbers", 2_000),
)}
DEFAULT = SHIPPED.name  # the shipped profile: what data/ holds, what `make figures` and every command default to


def get_profile(name: str | Profile) -> Profile:
    """The profile named ``name`` (a :class:`Profile` is returned as it is)."""
    if isinstance(name, Profile):
        return name
    if name not in PROFILES:
        raise ValueError(f"unknown training profile {name!r}; expected one of {sorted(PROFILES)}")
    return PROFILES[name]


def batch(budget: Budget, cfg: ModelConfig) -> int:
    """Sequences per step: ``budget.batch`` times a multiplier, the square root of the parameters per layer
    over 64 rounded to a power of two, at least 1: 1 for DIAG and GD++ (4 and 3 parameters a layer), 2 for FULL at ``d = 10``
    (242), 1 at ``d = 5`` (72). A layer with more parameters needs more sequences for the same gradient
    signal (``benchmarks/RESULTS.md``, "FULL with 1-4 layers": FULL gained 7-11% from batch 512 to 2048,
    DIAG nothing)."""
    if not budget.scale_batch:
        return budget.batch
    per_layer = sum(int(np.prod(s[1:])) for s in cfg.param_shapes().values())
    return budget.batch * 2 ** max(0, round(np.log2(np.sqrt(per_layer / 64))))


def recipe(budget: Budget, cfg: ModelConfig, noise: Noise) -> TrainConfig:
    """The recipe of every candidate of every model: the budget as a :class:`TrainConfig` (float32;
    :mod:`lintx.train`), at the batch of :func:`batch`, and at ``budget.warm_lr`` where it is set and the
    model has a warm start."""
    lr = budget.warm_lr if budget.warm_lr is not None and parents(budget, cfg, noise) != (None, None) else budget.lr
    return TrainConfig(**{**budget._train_fields(), "batch": batch(budget, cfg), "lr": lr})


def still_falling(looks: np.ndarray, starts: np.ndarray, plateau: float, doublings_left: int) -> np.ndarray:
    """The wsd schedule's rule, per candidate of one model (:func:`lintx.train.train` trains them together
    and drops those it stops): which candidates train on. ``looks`` ``(S, k)``: the scores of the cooled
    copies so far of the model's ``S`` candidates (:func:`lintx.selection.selection_score`: the adjusted selection
    loss, what is left to gain above the oracle; NaN where a candidate was not looked at); ``starts``
    ``(S,)``: the scores of their untrained starts; ``doublings_left``: the looks the budget still allows.

    Every candidate trains on after its first look (a doubling to leave its start's basin: a start can rise
    before it falls to a better minimum, as DIAG with 4 layers embedded from GD++ does). After that, a
    candidate trains on while both hold, for its newest copy ``v``:
    - it falls: ``v`` is below the candidate's lowest earlier copy by ``plateau`` times that copy's size
      (not its start: a grown model's first copies are above the parent it starts from, and it falls
      below it only later);
    - it can still matter: its last fall ``f`` (from that copy to ``v``), repeated for every doubling left,
      takes it below the model's best so far (every start and copy, ``v`` included) by ``plateau`` times its
      size. A model's loss falls about as much per doubling of its steps, so this stops a candidate that
      falls but stays above a better one (FULL above the DIAG model it contains) and never one that leads.
    So a start that training makes worse (the exact embedding of a smaller variant, a critical point of the
    larger one's extra parameters) stops once its fall cannot bring it below the model's best, and a grown
    model trains as long as it gains.
    Nothing names a setting, depth or variant."""
    looks, starts = np.asarray(looks, np.float64), np.asarray(starts, np.float64)
    if looks.shape[1] == 1:
        return np.isfinite(looks[:, 0]) & (doublings_left > 0)
    finite = lambda x: np.where(np.isfinite(x), x, np.inf)
    v = finite(looks[:, -1])
    before = np.min(finite(looks[:, :-1]), axis=1)
    best = min(np.min(finite(starts)), np.min(finite(looks)))
    with np.errstate(invalid="ignore"):  # inf - inf where a start or a copy is not finite
        falls = np.isfinite(v) & (~np.isfinite(before) | (v < before - plateau * np.abs(before)))
        fall = np.where(np.isfinite(before), before - v, np.inf)
        matters = (v - doublings_left * fall < best - plateau * abs(best)) if doublings_left else np.zeros(len(v), bool)
    return falls & matters


def falling_rule(budget: Budget, starts: np.ndarray):
    """:func:`still_falling` of a model with these ``starts`` at ``budget.plateau``, as
    :func:`lintx.train.train` asks for it: ``falling(looks) -> (S,) bool``. After ``k`` looks the next would
    come after ``phase * 2**k`` held steps; the doublings left are the looks of
    :func:`lintx.schedule.look_steps` not yet made."""
    def falling(looks: np.ndarray) -> np.ndarray:
        left = len(look_steps(budget.phase, budget.steps)) - np.shape(looks)[1]
        return still_falling(looks, starts, budget.plateau, max(left, 0))
    return falling


def grown_from(cfg: ModelConfig, noise: Noise) -> Optional[ModelConfig]:
    """The model an L-layer model is grown from: its (L-1)-layer version (None for one layer)."""
    return dataclasses.replace(cfg, layers=cfg.layers - 1) if cfg.layers >= 2 else None


def embedded_from(cfg: ModelConfig) -> Optional[ModelConfig]:
    """The model of the variant ``cfg`` contains, at its depth (None for GD++, which contains none)."""
    return dataclasses.replace(cfg, variant=CONTAINS[cfg.variant]) if cfg.variant in CONTAINS else None


def parents(budget: Budget, cfg: ModelConfig, noise: Noise) -> tuple[Optional[ModelConfig], Optional[ModelConfig]]:
    """The warm starts of ``cfg``: ``(grown from, embedded from)``, each None where there is none (both
    without ``budget.warm_starts``)."""
    if not budget.warm_starts:
        return None, None
    return grown_from(cfg, noise), embedded_from(cfg)


def random_starts(budget: Budget, cfg: ModelConfig, noise: Noise) -> int:
    """Random starts of every model: ``budget.random_starts``, and one where there is no warm start (GD++ with
    one layer, and every model without ``budget.warm_starts``)."""
    return max(budget.random_starts, 1 if parents(budget, cfg, noise) == (None, None) else 0)


def lineage(budget: Budget, cfg: ModelConfig, noise: Noise) -> list[ModelConfig]:
    """``cfg`` and every model it starts from, each after the models it starts from (the order to train them)."""
    out: list[ModelConfig] = []

    def visit(c: ModelConfig) -> None:
        for p in parents(budget, c, noise):
            if p is not None and p not in out:
                visit(p)
        out.append(c)

    visit(cfg)
    return out


def acceptance(prof: Profile) -> dict:
    """How a trained candidate is accepted (:mod:`lintx.fit`): the retries and the held-out check."""
    return {"max_retries": MAX_RETRIES, "retry_lr_divisor": RETRY_LR_DIVISOR, "validation_factor": VALIDATION_FACTOR,
            "validation_slack": VALIDATION_SLACK, "validation_num": prof.validation_num}


def key(prof: Profile, cfg: ModelConfig, noise: Noise, seed: int) -> dict:
    """Everything that determines the checkpoint of ``(prof, cfg, noise, seed)``: the model, the noise, the
    recipe, the seed, :data:`lintx.versions.NUMERICS`, the acceptance, the starts and the names of the
    checkpoints it starts from. The layout of this dict names every shipped checkpoint; a change to it
    renames them all (``tests/test_golden.py``)."""
    return _key(prof, cfg, noise, seed, {})


def name(prof: Profile, cfg: ModelConfig, noise: Noise, seed: int) -> str:
    """The checkpoint's file name: the model, the noise's label, the seed and a hash of :func:`key`."""
    return _name(prof, cfg, noise, seed, {})


def names(prof: Profile, cfg: ModelConfig, noise: Noise, seed: int) -> dict[ModelConfig, str]:
    """:func:`name` of ``cfg`` and of every model in its :func:`lineage`, computed once each."""
    memo: dict[ModelConfig, str] = {}
    return {c: _name(prof, c, noise, seed, memo) for c in lineage(prof.budget, cfg, noise)}


def _key(prof: Profile, cfg: ModelConfig, noise: Noise, seed: int, memo: dict) -> dict:
    grown, embedded = parents(prof.budget, cfg, noise)
    k = random_starts(prof.budget, cfg, noise)
    out = {"model": dataclasses.asdict(cfg), "noise": noise.to_json(), "train": recipe(prof.budget, cfg, noise).to_json(),
           "seed": check_seed(seed), "numerics": NUMERICS, "acceptance": acceptance(prof)}
    if grown is not None:
        out["grown_from"] = _name(prof, grown, noise, seed, memo)
    if k != 1:
        out["starts"] = {"starts": k, "stride": START_STRIDE, "selection_num": SELECTION_NUM}
    if prof.budget.schedule == "wsd":
        out["wsd"] = {"plateau": prof.budget.plateau, "selection_num": SELECTION_NUM, "blocks": SELECTION_BLOCKS,
                      "look": "the adjusted selection loss of each cooled copy, over every selection sequence",
                      "goes on": "each candidate after its first look, then while its new copy is below its lowest earlier copy by plateau x its size, and its last "
                                  "fall, repeated for the doublings left, takes it below the model's best by as much",
                      "restarts": "a candidate whose cooled copy diverged starts again from its start at a lower rate, its looks before not counted"}
    if embedded is not None:
        out["embedded_from"] = {"name": _name(prof, embedded, noise, seed, memo), "selection_num": SELECTION_NUM,
                                "random_starts": k, "stride": START_STRIDE}
    return out


def _name(prof: Profile, cfg: ModelConfig, noise: Noise, seed: int, memo: dict) -> str:
    if cfg not in memo:  # the names of a lineage share their ancestors: each is hashed once
        h = hashlib.sha256(json.dumps(_key(prof, cfg, noise, seed, memo), sort_keys=True).encode()).hexdigest()[:10]
        memo[cfg] = f"{cfg.variant}-L{cfg.layers}-H{cfg.heads}-{noise.label}-s{seed}-{h}.npz"
    return memo[cfg]

"""The training method: one rule for every model, of the study and of any other setting.

    Every model is trained by normalised Adam (:mod:`lintx.train`) from the best of its starts:
    1. a 1-layer model from a random start;
    2. an L-layer model (L >= 2) grown from the trained (L-1)-layer model of its variant (a new last layer
       drawn near zero, so it starts where the shallower model ended);
    3. DIAG and FULL also from the trained model of the variant they contain (GD++ in DIAG, DIAG in FULL),
       embedded exactly at the same depth (a second candidate, trained alike).
    Each candidate trains ``steps`` Adam steps, a 10% warm-up to ``lr`` then a cosine decay, at a batch
    that grows with the square root of the parameters per layer (:func:`batch`). The checkpoint is the
    candidate with the lowest loss on the seed's held-out selection sequences, the untrained starts
    included, so a model is never worse there than the shallower model or the simpler variant it contains
    (the nesting of Sec. 5). Candidates that diverge are retried at a third of the rate, twice; if they
    still diverge, the best start is kept.

Nothing here names a noise setting, a depth or a variant-depth pair: the plan is a function of the
architecture (its depth and the variant it contains) and of the budget. The noise enters only through the
parameter normalisation of :func:`lintx.train.param_scales` (its ``E[sigma^2]``). The profile ``grow``
(:mod:`lintx.profiles`) is this method at the default :class:`Budget`; ``docs/method.md`` states it, and
``benchmarks/RESULTS.md`` ("One method for every model") holds the development runs on settings outside
Table 1 that chose the budget.
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Optional

import numpy as np

from lintx.model import ModelConfig
from lintx.tasks import Noise
from lintx.train import TrainConfig

# the variant each one contains (Sec. 5: GD++ is DIAG with q_y = 0, DIAG is FULL with diagonal P, Q)
CONTAINS = {"full": "diag", "diag": "gdpp"}


@dataclasses.dataclass(frozen=True)
class Budget:
    """How much compute each candidate of each model gets. Frozen: a mistyped field is an error.

    The defaults are the ``grow`` profile: ``python -m lintx train --profile grow --workers 2``, about 10
    CPU-minutes a noise setting and seed on this project's CPU (``benchmarks/RESULTS.md``, "The study with
    the method, first columns", which also gives its Table 1 cells so far).
    """

    steps: int = 1000  # Adam steps per candidate
    batch: int = 512
    lr: float = 2e-2
    warmup: float = 0.1
    b2: float = 0.99
    init_std: float = 0.01  # a random start and a grown layer, in normalised parameters
    random_starts: int = 0  # random starts trained beside the warm ones, for every model
    chunk: int = 100

    def __post_init__(self):
        for name, least in (("steps", 1), ("batch", 1), ("chunk", 1), ("random_starts", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < least:
                raise ValueError(f"Budget.{name} must be an integer >= {least}, got {v!r}")
        TrainConfig(**self._train_fields())  # the rest is checked where it is used

    def _train_fields(self) -> dict:
        return dict(steps=self.steps, batch=self.batch, lr=self.lr, warmup=self.warmup, b2=self.b2, init_std=self.init_std,
                    chunk=min(self.chunk, self.steps))


def batch(budget: Budget, cfg: ModelConfig) -> int:
    """Sequences per step: ``budget.batch`` times a multiplier, the square root of the parameters per layer
    over 64 rounded to a power of two, at least 1: 1 for DIAG and GD++ (4 and 3 parameters a layer), 2 for FULL at ``d = 10``
    (242), 1 at ``d = 5`` (72). A layer with more parameters needs more sequences for the same gradient
    signal (``benchmarks/RESULTS.md``, "FULL with 1-4 layers": FULL gained 7-11% from batch 512 to 2048,
    DIAG nothing)."""
    per_layer = sum(int(np.prod(s[1:])) for s in cfg.param_shapes().values())
    return budget.batch * 2 ** max(0, round(np.log2(np.sqrt(per_layer / 64))))


def recipe(budget: Budget, cfg: ModelConfig, noise: Noise) -> TrainConfig:
    """The recipe of every candidate of every model: the budget as a :class:`TrainConfig` (clipping at 1,
    float32, normalised parameters; :mod:`lintx.train`), at the batch of :func:`batch`."""
    return TrainConfig(**{**budget._train_fields(), "batch": batch(budget, cfg)})


def random_starts(budget: Budget, cfg: ModelConfig, noise: Noise) -> int:
    """Random starts of every model: ``budget.random_starts``, and one where there is no warm start (GD++ with
    one layer)."""
    return max(budget.random_starts, 1 if grown_from(cfg, noise) is None and embedded_from(cfg) is None else 0)


def grown_from(cfg: ModelConfig, noise: Noise) -> Optional[ModelConfig]:
    """The model an L-layer model is grown from: its (L-1)-layer version (None for one layer)."""
    return dataclasses.replace(cfg, layers=cfg.layers - 1) if cfg.layers >= 2 else None


def embedded_from(cfg: ModelConfig) -> Optional[ModelConfig]:
    """The model of the variant ``cfg`` contains, at its depth (None for GD++, which contains none)."""
    return dataclasses.replace(cfg, variant=CONTAINS[cfg.variant]) if cfg.variant in CONTAINS else None

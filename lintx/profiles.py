"""Named training profiles: how each model of the study is trained.

Each profile maps an architecture and a noise setting to a :class:`~lintx.train.TrainConfig`, plus the
number of seeds to train. Three profiles:

- ``paper``: the paper's protocol verbatim (Sec. 6, App. B): Adam at 1e-4, batch 2048, 200,000 steps,
  raw parameters, constant learning rate, no clipping, 5 seeds. Cost: 4-12 H100-hours per model in the
  paper; about 200,000 x 43 ms = 2.4 CPU-hours per 7-layer DIAG model here. Documented, never the default.
- ``fast``: our recipe for the shipped cache. Adam on normalised parameters (see :mod:`lintx.train`),
  5% warm-up then cosine decay, clipping at 1.0, lr 3e-2 up to 4 layers and 1e-2 beyond,
  ``1000 * min(L, 5)`` steps at batch 2048. Measured by the prototype of issue 3 at ``sigma_max = 5``: DIAG
  L=2/4/7 adjusted loss 0.246/0.056/0.045 (paper 0.242/0.059/0.047) in 33/128/303 s on one core.
- ``quick``: minutes for the whole grid at reduced fidelity (Binder, smoke runs): a fifth of ``fast``'s
  steps at batch 512, one seed.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from lintx.model import ModelConfig
from lintx.tasks import Noise
from lintx.train import TrainConfig


@dataclasses.dataclass(frozen=True)
class Profile:
    name: str
    recipe: Callable[[ModelConfig, Noise], TrainConfig]
    seeds: int
    description: str


def _paper(cfg: ModelConfig, noise: Noise) -> TrainConfig:
    return TrainConfig(steps=200_000, batch=2048, lr=1e-4, schedule="constant", clip=0.0, normalise=False, init_std=0.01, chunk=1000)


def _fast(cfg: ModelConfig, noise: Noise) -> TrainConfig:
    return TrainConfig(steps=1000 * min(cfg.layers, 5), batch=2048, lr=3e-2 if cfg.layers <= 4 else 1e-2)


def _quick(cfg: ModelConfig, noise: Noise) -> TrainConfig:
    return TrainConfig(steps=200 * min(cfg.layers, 5), batch=512, lr=3e-2 if cfg.layers <= 4 else 1e-2, chunk=50)


PROFILES = {
    "paper": Profile("paper", _paper, 5, "the paper's protocol verbatim: Adam 1e-4, batch 2048, 200k steps"),
    "fast": Profile("fast", _fast, 5, "our recipe for the shipped cache: normalised Adam, cosine, ~1000*min(L,5) steps"),
    "quick": Profile("quick", _quick, 1, "reduced fidelity for smoke runs and Binder: 200*min(L,5) steps at batch 512"),
}


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ValueError(f"unknown training profile {name!r}; expected one of {sorted(PROFILES)}")
    return PROFILES[name]

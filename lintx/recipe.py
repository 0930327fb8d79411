"""A training recipe (:class:`TrainConfig`): what :mod:`lintx.train` does with one model's candidates, and
what names its checkpoint (its JSON is part of :func:`lintx.method.key`). Frozen and checked: a mistyped
field or an impossible value is an error here, not a surprise in training."""

from __future__ import annotations

import dataclasses
import numbers

import numpy as np

SCHEDULES = ("cosine", "constant", "wsd")
WSD_FIELDS = ("phase", "cooldown", "restarts", "restart_divisor")  # in a recipe's JSON (its checkpoint's key) only for the wsd schedule
DTYPES = ("float32", "float64")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """A training recipe. Frozen: a mistyped field name is an error."""

    steps: int = 4000
    batch: int = 2048
    lr: float = 3e-2
    schedule: str = "cosine"  # "cosine": linear warm-up then cosine decay to 0; "constant": lr throughout;
    # "wsd": held, with a copy cooled to 0 and looked at every phase, while the cooled copies improve (lintx.schedule)
    warmup: float = 0.05  # fraction of steps spent warming up (cosine only)
    clip: float = 1.0  # global-norm clipping of the gradient; 0 disables
    b1: float = 0.9
    b2: float = 0.999
    init_std: float = 0.1  # std of the normal initialisation of the (normalised) parameters
    normalise: bool = True  # Adam on raw = s * v (True) or on raw parameters (False, the paper's)
    chunk: int = 100  # steps per compiled chunk; progress is reported between chunks
    dtype: str = "float32"
    diverge_factor: float = 10.0
    phase: int = 0  # wsd: held steps before the first look, doubled for each next (a multiple of chunk); steps: the most
    cooldown: int = 0  # wsd: steps of the first look's cool-down, doubled with the held steps (a multiple of chunk)
    restarts: int = 0  # wsd: times a candidate whose cooled copy diverged starts again from its start, at a lower rate
    restart_divisor: float = 3.0  # wsd: each restart divides the candidate's rate by this

    def __post_init__(self):
        for name in ("steps", "batch", "chunk"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise ValueError(f"TrainConfig.{name} must be a positive integer, got {v!r}")
        for name in ("lr", "warmup", "clip", "b1", "b2", "init_std", "diverge_factor"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not np.isfinite(v) or v < 0:
                raise ValueError(f"TrainConfig.{name} must be a finite number >= 0, got {v!r}")
        if self.lr <= 0:
            raise ValueError(f"TrainConfig.lr must be > 0, got {self.lr}")
        for name in ("b1", "b2", "warmup"):  # Adam's decays and the warm-up fraction lie in [0, 1)
            if not getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be in [0, 1), got {getattr(self, name)!r}")
        if self.diverge_factor < 1:
            raise ValueError(f"TrainConfig.diverge_factor must be >= 1 (a loss this many times the first counts as "
                             f"diverged), got {self.diverge_factor!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; expected one of {SCHEDULES}")
        if self.dtype not in DTYPES:
            raise ValueError(f"unknown dtype {self.dtype!r}; expected one of {DTYPES}")
        if not isinstance(self.normalise, bool):
            raise TypeError(f"TrainConfig.normalise must be a bool, got {self.normalise!r}")
        if isinstance(self.restarts, bool) or not isinstance(self.restarts, numbers.Integral) or self.restarts < 0:
            raise ValueError(f"TrainConfig.restarts must be an integer >= 0, got {self.restarts!r}")
        if isinstance(self.restart_divisor, bool) or not isinstance(self.restart_divisor, numbers.Real) or not self.restart_divisor > 1:
            raise ValueError(f"TrainConfig.restart_divisor must be a number > 1, got {self.restart_divisor!r}")
        if self.schedule == "wsd":
            for name in ("phase", "cooldown"):
                v = getattr(self, name)
                if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < self.chunk or v % self.chunk:
                    raise ValueError(f"TrainConfig.{name} must be a positive multiple of chunk ({self.chunk}) for the wsd "
                                     f"schedule, got {v!r}")
            if self.steps < self.phase:
                raise ValueError(f"TrainConfig.steps must be at least phase ({self.phase}) for the wsd schedule, got {self.steps}")

    def to_json(self) -> dict:
        """The recipe's fields; those of the wsd schedule only where it is used, so a recipe of another
        schedule has the JSON (and its checkpoint the name) it had before they existed."""
        out = dataclasses.asdict(self)
        if self.schedule != "wsd":
            for name in WSD_FIELDS:
                del out[name]
        return out

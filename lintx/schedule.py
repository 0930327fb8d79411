"""The learning-rate schedules of :class:`lintx.recipe.TrainConfig` and the optimiser that follows them.

- ``cosine``: a linear warm-up over ``warmup * steps`` to ``lr``, then a cosine decay to 0 at ``steps``;
- ``constant``: ``lr`` throughout (the paper's);
- ``wsd`` (warm-up, stable, decay; :func:`wsd_rate`): a linear warm-up over ``warmup * phase`` steps to
  ``lr``, then held; after ``phase`` held steps, and after each doubling of them, a copy of the model is
  cooled, its rate falling linearly to 0 over ``cooldown`` steps (doubled alike), and looked at. Training goes on while the cooled copies still improve (the
  method's rule, :func:`lintx.method.still_falling`), so its length is measured, not set
  (:func:`lintx.train.train`). The held rate is never raised again: a copy cools, the model it came from
  goes on where it was.

Every schedule clips the gradient's global norm (``clip``; 0: none) and skips a step whose gradient is not
finite (``optax.apply_if_finite``).
"""

from __future__ import annotations

import jax.numpy as jnp
import optax

NEVER = 2**30  # a step no training reaches: no cool-down begun


def make_optimizer(tc) -> optax.GradientTransformation:
    """Clipping and Adam, skipping non-finite steps. For the wsd schedule the rate is not in it: a step's
    update is scaled by :func:`wsd_rate` in :func:`lintx.train.train_step`."""
    if tc.schedule == "wsd":
        adam = optax.scale_by_adam(b1=tc.b1, b2=tc.b2)
    else:
        lr = (optax.warmup_cosine_decay_schedule(0.0, tc.lr, max(1, int(tc.warmup * tc.steps)), tc.steps, 0.0)
              if tc.schedule == "cosine" else optax.constant_schedule(tc.lr))
        adam = optax.adam(lr, b1=tc.b1, b2=tc.b2)
    parts = ([optax.clip_by_global_norm(tc.clip)] if tc.clip > 0 else []) + [adam]
    return optax.apply_if_finite(optax.chain(*parts), max_consecutive_errors=max(10, tc.steps // 10))


def look_steps(phase: int, steps: int) -> list[int]:
    """The held steps after which the wsd schedule looks at a cooled copy: ``phase`` and each doubling of it,
    ``phase, 2 phase, 4 phase, ...``, up to ``steps``."""
    out, k = [], phase
    while 0 < k <= steps:
        out, k = out + [k], 2 * k
    return out


def wsd_rate(tc, step, cool_from, cooldown, scale=1.0):
    """The wsd schedule's rate at ``step``: a linear warm-up over ``warmup * phase`` steps to ``scale * lr``, held,
    and from step ``cool_from`` falling linearly to 0 over ``cooldown`` steps (:data:`NEVER`: held). Where a
    copy cools, and the rate of a candidate that restarts (``scale``), are decided as it trains, so they are
    arguments, not constants."""
    t = step.astype(jnp.float32)
    rate = tc.lr * scale * jnp.minimum(1.0, (t + 1) / max(1, int(tc.warmup * tc.phase)))
    return rate * jnp.clip(1.0 - (t - cool_from) / cooldown, 0.0, 1.0)

"""Second-order refinement of a trained model on a fixed sample, in float64 (ours; the loss is Eq. 7).

Adam on fresh batches (:mod:`lintx.train`) leaves deep DIAG models on categorical noise short of their
minimum: more Adam steps from the same start did not help (DIAG, 6 layers on ``{1,3}``, 4x the steps:
0.0240 -> 0.0281), while a quasi-Newton method on a fixed sample of sequences did (
``benchmarks/RESULTS.md``: the best shipped 6-layer model 0.0224 -> 0.0199 on 1,000,000 fresh sequences,
paper 0.020). A DIAG model has 4 parameters a layer, so L-BFGS's history holds most of its curvature, and a
fixed sample of ``num`` sequences makes the objective deterministic, so line searches work.

:func:`refine` minimises the training loss (Eq. 7, the prediction after the last layer) over the
normalised parameters ``v`` of :mod:`lintx.train` (``raw = s * v``), on ``num`` sequences drawn in float64
from the seed's own refinement stream (used for nothing else, disjoint from training, validation,
selection and evaluation sequences), with ``steps`` iterations of ``optax.lbfgs`` (zoom line search) from
the trained model. The variable L-BFGS sees is ``z`` with ``v = v0 + step * z``: its first line search
then starts a step of ``step`` away from the trained model instead of a unit step in ``v``, which leaves
the basin (scipy's L-BFGS-B did, and stopped after one iteration). The result is never worse than the
trained model on the sample, and deterministic: a fixed sample, no randomness in the method.

A fixed sample can be overfitted, and a refined model can move to where rare sequences, absent from the
sample, explode. The store judges a refined model like every other, by the held-out check on its own
validation sequences, before it is saved (:mod:`lintx.store`).
"""

from __future__ import annotations

import dataclasses
import functools
import numbers

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import optax

from lintx.model import ModelConfig, predict
from lintx.tasks import Noise, sample_batch
from lintx.train import check_seed, param_scales

_REFINE_STREAM = 0x8EF1E  # folded into the seed's key: the refinement sample, used for nothing else
_CHUNK = 10_000  # sequences per step of the loss's scan (bounds the memory of its gradient)


@dataclasses.dataclass(frozen=True)
class RefineConfig:
    """How :func:`refine` polishes a trained model. Frozen: a mistyped field name is an error."""

    num: int = 100_000  # sequences in the fixed sample (a multiple of 10,000)
    steps: int = 150  # L-BFGS iterations
    memory: int = 50  # L-BFGS history (a DIAG model has 4 parameters a layer: most of its curvature)
    step: float = 1e-2  # first step of a line search, in normalised parameters (see module docstring)

    def __post_init__(self):
        for name in ("num", "steps", "memory"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise ValueError(f"RefineConfig.{name} must be a positive integer, got {v!r}")
        if self.num % _CHUNK:
            raise ValueError(f"RefineConfig.num must be a multiple of {_CHUNK}, got {self.num}")
        if isinstance(self.step, bool) or not isinstance(self.step, numbers.Real) or not 0 < self.step < np.inf:
            raise ValueError(f"RefineConfig.step must be a finite number > 0, got {self.step!r}")

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def refine_sample(cfg: ModelConfig, noise: Noise, seed: int, num: int):
    """The fixed float64 sample of :func:`refine`: tokens ``(num / 10,000, 10,000, n+1, d+1)`` and targets.
    Call inside ``jax.enable_x64(True)``."""
    key = jax.random.fold_in(jax.random.key(check_seed(seed)), _REFINE_STREAM)
    chunks = [sample_batch(jax.random.fold_in(key, i), noise, _CHUNK, cfg.d, cfg.n, jnp.float64) for i in range(num // _CHUNK)]
    return jnp.stack([b.tokens for b in chunks]), jnp.stack([b.y_query for b in chunks])


@functools.partial(jax.jit, static_argnames=("cfg", "rc"))
def _lbfgs(flat0, scale, tokens, y, cfg: ModelConfig, rc: RefineConfig):
    """``rc.steps`` iterations of L-BFGS on the sample's loss from ``flat0`` (normalised parameters,
    raveled); returns the final normalised parameters and the loss before and after."""
    unravel = jax.flatten_util.ravel_pytree(jax.tree_util.tree_map(jnp.zeros_like, scale))[1]
    s = unravel(jax.flatten_util.ravel_pytree(scale)[0])

    def loss(z):
        v = unravel(flat0 + rc.step * z)
        raw = {k: s[k] * v[k] for k in v}

        @jax.checkpoint
        def chunk(args):
            t, yt = args
            return jnp.sum((predict(cfg, raw, t)[-1] - yt) ** 2)

        return 0.5 * jnp.sum(jax.lax.map(chunk, (tokens, y))) / y.size

    opt = optax.lbfgs(memory_size=rc.memory)
    value_and_grad = optax.value_and_grad_from_state(loss)

    def step(carry, _):
        z, state = carry
        value, grad = value_and_grad(z, state=state)
        updates, state = opt.update(grad, state, z, value=value, grad=grad, value_fn=loss)
        return (optax.apply_updates(z, updates), state), None

    z0 = jnp.zeros_like(flat0)
    (z, _), _ = jax.lax.scan(step, (z0, opt.init(z0)), None, length=rc.steps)
    before, after = loss(z0), loss(z)
    z = jnp.where(after <= before, z, z0)  # never worse than the trained model on the sample
    return flat0 + rc.step * z, before, jnp.minimum(after, before)


def refine(cfg: ModelConfig, noise: Noise, params: dict, seed: int, rc: RefineConfig) -> tuple[dict, dict]:
    """Raw parameters of the model ``(cfg, params)`` after L-BFGS on its training loss over a fixed sample
    (see module docstring), in the dtype of ``params``, and ``{"loss_before", "loss_after"}`` on that sample.
    Runs in float64 whatever the process's setting."""
    if not isinstance(rc, RefineConfig):
        raise TypeError(f"rc must be a RefineConfig, got {type(rc).__name__}")
    for k, shape in cfg.param_shapes().items():
        if np.shape(params.get(k)) != shape:
            raise ValueError(f"cannot refine {cfg}: parameter {k} has shape {np.shape(params.get(k))}, expected {shape}")
    dtypes = {k: np.asarray(params[k]).dtype for k in params}
    with jax.enable_x64(True):
        scale = {k: jnp.asarray(v, jnp.float64) for k, v in param_scales(cfg, noise).items()}
        v0 = {k: jnp.asarray(np.asarray(params[k], np.float64)) / scale[k] for k in scale}
        flat0 = jax.flatten_util.ravel_pytree(v0)[0]
        tokens, y = refine_sample(cfg, noise, seed, rc.num)
        flat, before, after = _lbfgs(flat0, scale, tokens, y, cfg, rc)
        v = jax.flatten_util.ravel_pytree(v0)[1](flat)
        out = {k: np.asarray(scale[k] * v[k]).astype(dtypes[k]) for k in v}
    return out, {"loss_before": float(before), "loss_after": float(after)}

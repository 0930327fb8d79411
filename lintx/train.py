"""Training linear transformers on fresh batches with Adam (paper Sec. 6, Appendix B; Eq. 7).

Design choices (ours; see ``docs/method.md``):

- Normalised parameters. The statistics a layer sees have very different sizes: ``Sigma ~ n I``,
  ``alpha ~ n w`` and ``lambda ~ n (d + E[sigma^2])``, about 366 at ``sigma_max = 5``. One Adam learning rate
  cannot suit raw parameters multiplying all three, so Adam updates ``v`` and the model uses
  ``raw = s * v`` with a fixed per-parameter scale ``s`` (:func:`param_scales`): Q's x-row(s) by ``1/n``,
  its y-row by ``1/(n c)``, ``c = d + E[sigma^2]``; P unscaled. For DIAG that is ``q = (q_x/n, q_y/(n c))``.
  ``normalise=False`` trains raw parameters, as the paper did.
- Optimiser: global-norm clipping, Adam, a schedule (linear warm-up then cosine decay, or constant), all
  wrapped in ``optax.apply_if_finite`` so a non-finite gradient skips the step instead of poisoning the
  weights.
- Seeds: seed ``s`` gives an initialisation key ``fold_in(key(s), 0)`` and a data key ``fold_in(key(s), 1)``;
  step ``t`` trains on ``sample_batch(fold_in(data_key, t))``. Several seeds train at once with ``vmap``.
- Divergence: a seed whose final training loss is not finite or above ``diverge_factor`` times the zero
  predictor's loss ``d/2``, whose weights are not finite, or that skipped more than 10% of its steps, is
  flagged ``diverged``; :mod:`lintx.checkpoint` refuses to save it.
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
from typing import Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lintx.model import ModelConfig, from_full, predict, to_full
from lintx.tasks import Noise, as_noise, sample_batch

SCHEDULES = ("cosine", "constant")
DTYPES = ("float32", "float64")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """A training recipe. Frozen: a mistyped field name is an error."""

    steps: int = 4000
    batch: int = 2048
    lr: float = 3e-2
    schedule: str = "cosine"  # "cosine": linear warm-up then cosine decay to 0; "constant": lr throughout
    warmup: float = 0.05  # fraction of steps spent warming up (cosine only)
    clip: float = 1.0  # global-norm clipping of the gradient; 0 disables
    b1: float = 0.9
    b2: float = 0.999
    init_std: float = 0.1  # std of the normal initialisation of the (normalised) parameters
    normalise: bool = True  # Adam on raw = s * v (True) or on raw parameters (False, the paper's)
    chunk: int = 100  # steps per compiled chunk; progress is reported between chunks
    dtype: str = "float32"
    diverge_factor: float = 10.0

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

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


class TrainResult(NamedTuple):
    """Raw parameters stacked over seeds (leading axis S), and what happened while training."""

    params: dict
    seeds: tuple[int, ...]
    loss_history: np.ndarray  # (S, chunks): mean training loss of each chunk
    final_loss: np.ndarray  # (S,): mean training loss of the last chunk
    skipped_steps: np.ndarray  # (S,): steps skipped for a non-finite gradient
    diverged: np.ndarray  # (S,) bool


def param_scales(cfg: ModelConfig, noise: Noise) -> dict:
    """Fixed scale ``s`` of each parameter, ``raw = s * v`` (see module docstring)."""
    n, c = cfg.n, cfg.d + noise.mean_sigma2
    shapes = cfg.param_shapes()
    if cfg.variant == "full":
        q_rows = np.r_[np.full(cfg.d, 1.0 / n), 1.0 / (n * c)][:, None]
        return {"P": np.ones(shapes["P"]), "Q": np.broadcast_to(q_rows, shapes["Q"]).copy()}
    q = np.array([1.0 / n, 1.0 / (n * c)])[: shapes["q"][-1]]
    return {"p": np.ones(shapes["p"]), "q": np.broadcast_to(q, shapes["q"]).copy()}


def check_seed(seed) -> int:
    """A training seed as an ``int``; anything but a non-negative integer is a ``ValueError``."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def seed_keys(seed: int) -> tuple[jax.Array, jax.Array]:
    """Separate initialisation and data keys of a training seed."""
    k = jax.random.key(check_seed(seed))
    return jax.random.fold_in(k, 0), jax.random.fold_in(k, 1)


def init_normalised(key: jax.Array, cfg: ModelConfig, tc: TrainConfig) -> dict:
    shapes = cfg.param_shapes()
    keys = jax.random.split(key, len(shapes))
    return {name: tc.init_std * jax.random.normal(k, shapes[name], tc.dtype) for k, name in zip(keys, sorted(shapes))}


def random_init(cfg: ModelConfig, noise: Noise, tc: TrainConfig, seed: int) -> dict:
    """Raw parameters of ``seed``'s random initialisation (what :func:`train` starts from without ``init``)."""
    return {k: np.asarray(x) for k, x in raw_params(cfg, noise, tc, init_normalised(seed_keys(seed)[0], cfg, tc)).items()}


def make_optimizer(tc: TrainConfig) -> optax.GradientTransformation:
    if tc.schedule == "cosine":
        lr = optax.warmup_cosine_decay_schedule(0.0, tc.lr, max(1, int(tc.warmup * tc.steps)), tc.steps, 0.0)
    else:
        lr = optax.constant_schedule(tc.lr)
    parts = ([optax.clip_by_global_norm(tc.clip)] if tc.clip > 0 else []) + [optax.adam(lr, b1=tc.b1, b2=tc.b2)]
    return optax.apply_if_finite(optax.chain(*parts), max_consecutive_errors=max(10, tc.steps // 10))


def _scales(cfg, noise, tc):
    if not tc.normalise:
        return jax.tree_util.tree_map(lambda s: np.ones_like(s), param_scales(cfg, noise))
    return param_scales(cfg, noise)


def raw_params(cfg: ModelConfig, noise: Noise, tc: TrainConfig, v: dict) -> dict:
    """The model's parameters from the optimiser's normalised ones."""
    s = _scales(cfg, noise, tc)
    return {k: jnp.asarray(s[k], v[k].dtype) * v[k] for k in v}


def train_loss(v, key, cfg: ModelConfig, noise: Noise, tc: TrainConfig) -> jax.Array:
    """Training objective (Eq. 7) on one fresh batch: ``1/2 mean (y_hat - y_t)^2`` after the last layer."""
    b = sample_batch(key, noise, tc.batch, cfg.d, cfg.n, tc.dtype)
    y_hat = predict(cfg, raw_params(cfg, noise, tc, v), b.tokens)[-1]
    return 0.5 * jnp.mean((y_hat - b.y_query) ** 2)


def train_step(state, data_key, cfg: ModelConfig, noise: Noise, tc: TrainConfig):
    """One Adam step on the batch of step ``state[2]``. Pure: ``(v, opt_state, step) -> (state', loss)``."""
    v, opt_state, step = state
    value, grad = jax.value_and_grad(train_loss)(v, jax.random.fold_in(data_key, step), cfg, noise, tc)
    updates, opt_state = make_optimizer(tc).update(grad, opt_state, v)
    return (optax.apply_updates(v, updates), opt_state, step + 1), value


@functools.partial(jax.jit, static_argnames=("cfg", "noise", "tc", "length"))
def _train_chunk(states, data_keys, cfg, noise, tc, length):
    """``length`` steps of every seed (vmapped), as one compiled scan."""

    def one_seed(state, data_key):
        return jax.lax.scan(lambda s, _: train_step(s, data_key, cfg, noise, tc), state, None, length=length)

    return jax.vmap(one_seed)(states, data_keys)


def grow(cfg: ModelConfig, noise: Noise, params: dict, seed: int, tc: TrainConfig) -> dict:
    """Raw parameters of a ``cfg.layers``-layer model from those of its ``cfg.layers - 1``-layer version:
    the trained layers, then a new last layer drawn as at initialisation (with the initialisation key of
    ``seed`` folded with the depth). The new layer's ``P C Q`` is small, so the grown model starts close
    to the shallower one and only has to learn what one more layer adds (a warm start)."""
    shallow = dataclasses.replace(cfg, layers=cfg.layers - 1)
    for k, shape in shallow.param_shapes().items():
        if np.shape(params[k]) != shape:
            raise ValueError(f"cannot grow {cfg}: parameter {k} has shape {np.shape(params[k])}, expected {shape}")
    one = dataclasses.replace(cfg, layers=1)
    new = raw_params(one, noise, tc, init_normalised(jax.random.fold_in(seed_keys(seed)[0], cfg.layers), one, tc))
    return {k: np.concatenate([np.asarray(params[k]), np.asarray(new[k])]) for k in params}


def embed(cfg: ModelConfig, src: ModelConfig, params: dict) -> dict:
    """Raw parameters of ``cfg`` computing exactly the model ``(src, params)``, whose parameterisation
    ``cfg`` contains (GD++ in DIAG in FULL; same depth and heads): a warm start from a simpler variant."""
    if (src.layers, src.heads, src.d, src.n) != (cfg.layers, cfg.heads, cfg.d, cfg.n):
        raise ValueError(f"cannot embed {src} in {cfg}: depth, heads, d and n must agree")
    order = {"gdpp": 0, "diag": 1, "full": 2}
    if order[src.variant] > order[cfg.variant]:
        raise ValueError(f"cannot embed {src.variant!r} in {cfg.variant!r}: it is not a special case")
    P, Q = to_full(src, params)
    return {k: np.asarray(v) for k, v in from_full(cfg, np.asarray(P), np.asarray(Q)).items()}


def _init_states(seeds, cfg, tc, noise=None, init=None):
    keys = [seed_keys(s) for s in seeds]
    if init is None:
        vs = [init_normalised(k[0], cfg, tc) for k in keys]
    else:
        if len(init) != len(seeds):
            raise ValueError(f"init must hold one parameter dict per seed: {len(init)} for {len(seeds)} seeds")
        s = _scales(cfg, noise, tc)
        vs = [{k: jnp.asarray(np.asarray(p[k]) / s[k], tc.dtype) for k in s} for p in init]
    opt = make_optimizer(tc)
    states = [(v, opt.init(v), jnp.zeros((), jnp.int32)) for v in vs]
    stack = lambda *xs: jnp.stack(xs)
    return jax.tree_util.tree_map(stack, *states), jnp.stack([k[1] for k in keys])


def train(
    cfg: ModelConfig,
    noise: Noise,
    tc: TrainConfig,
    seeds: Sequence[int] = (0,),
    callback: Optional[Callable[[int, np.ndarray], None]] = None,
    init: Optional[Sequence[dict]] = None,
) -> TrainResult:
    """Train one model per seed, all seeds at once (``vmap``). ``callback(steps_done, chunk_losses)``
    is called after every chunk with the chunk's mean loss per seed; progress bars live there, not here.
    ``init``: raw starting parameters, one dict per seed (a warm start, see :func:`grow`), instead of the
    seed's random initialisation.
    """
    if not isinstance(cfg, ModelConfig):
        raise TypeError(f"cfg must be a ModelConfig, got {type(cfg).__name__}")
    if not isinstance(tc, TrainConfig):
        raise TypeError(f"tc must be a TrainConfig, got {type(tc).__name__}")
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence):
        raise TypeError(f"seeds must be a list of non-negative integers, got {type(seeds).__name__} {seeds!r}")
    seeds = tuple(check_seed(s) for s in seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be a non-empty list of distinct integers, got {list(seeds)}")
    noise = as_noise(noise)
    if tc.dtype == "float64" and not jax.config.jax_enable_x64:
        raise ValueError("dtype float64 needs 64-bit JAX: set JAX_ENABLE_X64=1 before importing jax")
    states, data_keys = _init_states(seeds, cfg, tc, noise, init)
    history, done = [], 0
    while done < tc.steps:
        length = min(tc.chunk, tc.steps - done)
        states, losses = _train_chunk(states, data_keys, cfg, noise, tc, length)
        chunk_loss = np.asarray(jnp.mean(losses, axis=1), np.float64)
        history.append(chunk_loss)
        done += length
        if callback is not None:
            callback(done, chunk_loss)
    v, opt_state, _ = states
    params = jax.vmap(lambda x: raw_params(cfg, noise, tc, x))(v)
    skipped = np.asarray(opt_state.total_notfinite).reshape(len(seeds))
    loss_history = np.stack(history, axis=1)
    final = loss_history[:, -1]
    finite_params = np.all([np.all(np.isfinite(np.asarray(x)), axis=tuple(range(1, x.ndim))) for x in params.values()], axis=0)
    diverged = ~np.isfinite(final) | (final > tc.diverge_factor * cfg.d / 2) | ~finite_params | (skipped > 0.1 * tc.steps)
    return TrainResult(
        params={k: np.asarray(x) for k, x in params.items()},
        seeds=seeds,
        loss_history=loss_history,
        final_loss=final,
        skipped_steps=skipped,
        diverged=diverged,
    )


def unstack(result: TrainResult, i: int) -> dict:
    """Parameters of the ``i``-th seed of a result."""
    return {k: x[i] for k, x in result.params.items()}

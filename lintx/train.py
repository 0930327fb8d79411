"""Training linear transformers on fresh batches with Adam (paper Sec. 6, Appendix B; Eq. 7).

Design choices (ours; see ``docs/method.md``):

- Normalised parameters. The statistics a layer sees have very different sizes: ``Sigma ~ n I``,
  ``alpha ~ n w`` and ``lambda ~ n (d + E[sigma^2])``, about 366 at ``sigma_max = 5``. One Adam learning rate
  cannot suit raw parameters multiplying all three, so Adam updates ``v`` and the model uses
  ``raw = s * v`` with a fixed per-parameter scale ``s`` (:func:`param_scales`): Q's x-row(s) by ``1/n``,
  its y-row by ``1/(n c)``, ``c = d + E[sigma^2]``; P unscaled. For DIAG that is ``q = (q_x/n, q_y/(n c))``.
  ``normalise=False`` trains raw parameters, as the paper did.
- Optimiser: global-norm clipping, Adam, a schedule (linear warm-up then cosine decay, constant, or wsd:
  held, with cooled copies looked at; :mod:`lintx.schedule`), all wrapped in ``optax.apply_if_finite`` so
  a non-finite gradient skips the step instead of poisoning the weights.
- Seeds: seed ``s`` gives an initialisation key ``fold_in(key(s), 0)`` and a data key ``fold_in(key(s), 1)``;
  step ``t`` trains on ``sample_batch(fold_in(data_key, t))``. Several seeds train at once with ``vmap``.
- Divergence: a seed whose final training loss is not finite or above ``diverge_factor`` times the zero
  predictor's loss ``d/2``, whose weights are not finite, or that skipped more than 10% of its steps, is
  flagged ``diverged``; :mod:`lintx.checkpoint` refuses to save it. Under the wsd schedule a seed whose cooled
  copy diverged starts again from its start at a lower rate while the others train on (``tc.restarts``).
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
from lintx.recipe import TrainConfig
from lintx.schedule import NEVER, look_steps, make_optimizer, wsd_rate
from lintx.tasks import Noise, as_noise, sample_batch

class TrainResult(NamedTuple):
    """Raw parameters stacked over seeds (leading axis S), and what happened while training."""

    params: dict
    seeds: tuple[int, ...]
    loss_history: np.ndarray  # (S, chunks): mean training loss of each chunk
    final_loss: np.ndarray  # (S,): mean training loss of the last chunk
    skipped_steps: np.ndarray  # (S,): steps skipped for a non-finite gradient
    diverged: np.ndarray  # (S,) bool
    steps: Optional[np.ndarray] = None  # wsd: (S,) steps that made each seed's model (held, then its copy's cool-down)
    looks: Optional[np.ndarray] = None  # wsd: (S, looks) look(...) of each cooled copy
    restarts: Optional[np.ndarray] = None  # wsd: (S,) times each seed started again after its copy diverged


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


def train_step(state, data_key, cfg: ModelConfig, noise: Noise, tc: TrainConfig, cool=None):
    """One Adam step on the batch of step ``state[2]``. Pure: ``(v, opt_state, step) -> (state', loss)``;
    ``cool`` (wsd only): the step a cool-down begins, its steps and the rate's scale (:func:`lintx.schedule.wsd_rate`)."""
    v, opt_state, step = state
    value, grad = jax.value_and_grad(train_loss)(v, jax.random.fold_in(data_key, step), cfg, noise, tc)
    updates, opt_state = make_optimizer(tc).update(grad, opt_state, v)
    if tc.schedule == "wsd":
        rate = wsd_rate(tc, step, cool[0], cool[1], cool[2])
        updates = jax.tree_util.tree_map(lambda u: -rate.astype(u.dtype) * u, updates)
    return (optax.apply_updates(v, updates), opt_state, step + 1), value


@functools.partial(jax.jit, static_argnames=("cfg", "noise", "tc", "length"))
def _train_chunk(states, data_keys, cfg, noise, tc, length, cool=None):
    """``length`` steps of every seed (vmapped), as one compiled scan; ``cool`` (S, 3) for the wsd schedule:
    where each seed's cool-down begins (:data:`lintx.schedule.NEVER`: held), its steps, and its rate's scale."""
    if cool is None:
        cool = _cooling(data_keys.shape[0], NEVER, 1, 1.0)

    def one_seed(state, data_key, st):
        return jax.lax.scan(lambda s, _: train_step(s, data_key, cfg, noise, tc, st), state, None, length=length)

    return jax.vmap(one_seed)(states, data_keys, cool)


def _cooling(S: int, start, steps, scale) -> jax.Array:
    """``(S, 3)``: per seed, where its cool-down begins, its steps and its rate's scale (each a scalar or ``(S,)``)."""
    return jnp.stack([jnp.broadcast_to(jnp.asarray(x, jnp.float32), (S,)) for x in (start, steps, scale)], axis=1)


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
    look: Optional[Callable[[dict], np.ndarray]] = None,
    falling: Optional[Callable[[np.ndarray], bool]] = None,
) -> TrainResult:
    """Train one model per seed, all seeds at once (``vmap``). ``callback(steps_done, chunk_losses)``
    is called after every chunk with the chunk's mean loss per seed; progress bars live there, not here.
    ``init``: raw starting parameters, one dict per seed (a warm start, see :func:`grow`), instead of the
    seed's random initialisation.

    The wsd schedule (:mod:`lintx.schedule`) needs ``look(params) -> (S,)``, a loss of each seed's raw
    parameters (stacked over seeds) on sequences other than the training batches, and ``falling(looks) ->
    (S,) bool``, the method's rule on the looks so far, ``(S, k)``: which seeds train on
    (:func:`lintx.method.still_falling`). After ``tc.phase`` held steps, and after each doubling of them, a
    copy of every seed still training cools (over ``tc.cooldown`` steps times the doublings) and is looked
    at; a seed keeps its best cooled copy (its first, or a later one that looks lower), and trains on while
    the rule says so, for at most ``tc.steps`` held steps; a seed it stops costs nothing more. So
    each look costs as much again as all before it, and a model trains about as long as it still gains from
    twice the steps.
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
    if tc.schedule == "wsd" and (look is None or falling is None):
        raise ValueError("the wsd schedule needs look(params) and falling(looks): how a cooled copy is judged")
    states, data_keys = _init_states(seeds, cfg, tc, noise, init)
    if tc.schedule == "wsd":
        return _train_wsd(cfg, noise, tc, seeds, states, data_keys, callback, look, falling)
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
    return _result(cfg, noise, tc, seeds, _raw(cfg, noise, tc, v), np.asarray(opt_state.total_notfinite).reshape(len(seeds)), history)


def _raw(cfg, noise, tc, v) -> dict:
    return {k: np.asarray(x) for k, x in jax.vmap(lambda x: raw_params(cfg, noise, tc, x))(v).items()}


def _result(cfg, noise, tc, seeds, params, skipped, history, final=None, **extra) -> TrainResult:
    """The result of a training: the loss history, and which seeds diverged (see the module docstring)."""
    loss_history = np.stack(history, axis=1)
    final = loss_history[:, -1] if final is None else final
    finite_params = np.all([np.all(np.isfinite(x), axis=tuple(range(1, x.ndim))) for x in params.values()], axis=0)
    diverged = _loss_diverged(cfg, tc, final) | ~finite_params | (skipped > 0.1 * tc.steps)
    return TrainResult(params=params, seeds=seeds, loss_history=loss_history, final_loss=final, skipped_steps=skipped,
                       diverged=diverged, **extra)


def _where(take: np.ndarray, new, old):
    """Per seed (the leading axis), ``new`` where ``take`` else ``old``; arrays or dicts of them."""
    if isinstance(new, dict):
        return {k: _where(take, new[k], old[k]) for k in new}
    return np.where(take.reshape((-1,) + (1,) * (np.ndim(new) - 1)), new, old)


def _train_wsd(cfg, noise, tc, seeds, states, data_keys, callback, look, falling) -> TrainResult:
    """:func:`train` under the wsd schedule: held steps, a copy cooled and looked at after ``tc.phase`` of them,
    then after each doubling (:func:`lintx.schedule.look_steps`), cooled over as many times ``tc.cooldown``
    steps. A seed the rule stops trains no further (it leaves the vmapped batch); its later looks are NaN. A
    seed whose cooled copy diverged (:func:`_diverged`) starts again from its start at ``1 / tc.restart_divisor``
    of its rate, at most ``tc.restarts`` times, while the others train on: the rule sees only its looks since
    (the result keeps them all, and the seed its lowest copy, before or after)."""
    S = len(seeds)
    looks, history = [], []
    start, scale, restarted, since = states, np.ones(S, np.float32), np.zeros(S, int), np.zeros(S, int)
    kept, done, going = None, 0, np.ones(S, bool)
    for held_to in look_steps(tc.phase, tc.steps):
        if not going.any():
            break
        live = np.flatnonzero(going)
        sub, keys = jax.tree_util.tree_map(lambda x: x[live], states), data_keys[live]
        held = _cooling(len(live), NEVER, 1, scale[live])
        while done < held_to:
            sub, losses = _train_chunk(sub, keys, cfg, noise, tc, tc.chunk, held)
            history.append(_scatter(S, live, np.asarray(jnp.mean(losses, axis=1), np.float64)))
            done += tc.chunk
            if callback is not None:
                callback(done, history[-1][live])
        states = jax.tree_util.tree_map(lambda x, y: x.at[live].set(y), states, sub)
        cooldown = tc.cooldown * (done // tc.phase)
        copy, cool = sub, _cooling(len(live), sub[2], cooldown, scale[live])  # each seed cools from its own step
        for _ in range(cooldown // tc.chunk):
            copy, losses = _train_chunk(copy, keys, cfg, noise, tc, tc.chunk, cool)
        params = _raw(cfg, noise, tc, copy[0])
        now = _scatter(S, live, np.asarray(look(params), np.float64))
        this = dict(params={k: _scatter(S, live, x) for k, x in params.items()}, final=_scatter(S, live, np.asarray(jnp.mean(losses, axis=1), np.float64)),
                    skipped=_scatter(S, live, np.asarray(copy[1].total_notfinite).reshape(len(live))),
                    steps=_scatter(S, live, np.asarray(copy[2]).reshape(len(live))), loss=now)
        take = going & (np.ones(S, bool) if kept is None else np.isfinite(now) & ~(now >= kept["loss"]))  # the first copy, or a lower one
        kept = this if kept is None else {k: _where(take, v, kept[k]) for k, v in this.items()}
        looks.append(now)
        again = going & _diverged(cfg, tc, now, this["final"]) & (restarted < tc.restarts)
        if again.any():  # back to its start at a lower rate; the rule no longer counts its looks so far
            states = jax.tree_util.tree_map(lambda x0, x: jnp.where(again.reshape((-1,) + (1,) * (x.ndim - 1)), x0, x), start, states)
            scale, restarted = np.where(again, scale / tc.restart_divisor, scale).astype(np.float32), restarted + again
            since = np.where(again, len(looks), since)
        seen = np.where(np.arange(len(looks)) < since[:, None], np.nan, np.stack(looks, axis=1))
        going = going & (np.asarray(falling(seen), bool).reshape(S) | again)
    return _result(cfg, noise, tc, seeds, kept["params"], kept["skipped"], history, kept["final"], steps=kept["steps"],
                   looks=np.stack(looks, axis=1), restarts=restarted)


def _diverged(cfg, tc, look, final) -> np.ndarray:
    """Per seed: its cooled copy has no finite look, or its training loss diverged (:func:`_loss_diverged`)."""
    return ~np.isfinite(look) | _loss_diverged(cfg, tc, final)


def _loss_diverged(cfg, tc, final) -> np.ndarray:
    """Per seed: a training loss that is not finite or above ``tc.diverge_factor`` times the zero predictor's ``d / 2``."""
    with np.errstate(invalid="ignore"):
        return ~np.isfinite(final) | (final > tc.diverge_factor * cfg.d / 2)


def _scatter(S: int, live: np.ndarray, x) -> np.ndarray:
    """``x`` of the live seeds (leading axis) at their places among ``S``, NaN (0 for integers) elsewhere."""
    x = np.asarray(x)
    out = np.full((S,) + x.shape[1:], np.nan if np.issubdtype(x.dtype, np.floating) else 0, x.dtype)
    out[live] = x
    return out


def unstack(result: TrainResult, i: int) -> dict:
    """Parameters of the ``i``-th seed of a result."""
    return {k: x[i] for k, x in result.params.items()}

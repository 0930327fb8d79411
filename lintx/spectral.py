"""Noiseless GD++ as a spectral integral, trained in float64 (ours; paper Eq. 6, 11; Table 1, ``sigma_max = 0``).

With ``sigma = 0`` the labels are ``y_j = w^T x_j``. A GD++ layer (Eq. 11: ``w_xy = w_yy = 0``) maps every
token by ``x <- (I + w_xx Sigma) x``, ``y <- y + w_yx alpha^T x``, with ``Sigma = sum_j x_j x_j^T`` and
``alpha = sum_j x_j y_j`` over the context. Every matrix involved is a polynomial in the first layer's
``Sigma_0 = X^T X``, so in its eigenbasis the layers act on each eigenvalue ``lambda`` separately and the
prediction error is ``sum_i g(lambda_i) (u_i^T w) (u_i^T x_query)``, with ``g`` the scalar recursion of
:func:`error_polynomial`. ``w`` and ``x_query`` are independent standard normals, so the loss (Eq. 6) is

    loss = 1/2 E[ sum_i g(lambda_i)^2 ],

an expectation over the eigenvalues of a Wishart matrix (``n`` samples in ``d`` dimensions) alone. This is
exact (test: it equals :func:`lintx.model.predict`'s error sequence by sequence), and it removes two
obstacles to training near float precision: the Monte Carlo noise of ``w`` and ``x_query``, and float32.

The expectation is decided by rare matrices. The first layer annihilates the eigen-direction with
``lambda = -1 / w_xx`` (about 100 in trained models, the top of the spectrum: the largest of 10^6 matrices'
eigenvalues was 96), and small eigenvalues converge slowly. A fixed sample of 10^6 matrices from the
distribution itself is overfitted by a 6-layer model (training loss 4e-11, a fresh sample 2e-6), so
:func:`wishart_sample` draws ``Sigma`` at several scales of ``X`` and reweights them (importance sampling;
the weights are exact, since the Gaussian density of ``X`` depends on ``tr Sigma`` only).

:func:`fit` minimises the log of that loss with BFGS in float64, growing the model one layer at a time
from several starts per depth (the loss has many local minima) and keeping at each depth the model with
the lowest loss on its own sample. Its parameters are an ordinary GD++ model, to be judged like every
other on sequences (Table 1's evaluation), not on this formula.

Status (``benchmarks/noiseless.py``, table in ``benchmarks/RESULTS.md``): a tool for the
noiseless column, not used by any training profile. The fit finds 2-layer models far below Adam's (0.267
against 0.344; the paper's GD++ 0.341, its DIAG 0.265) and 6-7 layer models several times below Adam's,
but the greedy growth is erratic (5 layers can end worse than Adam), a 7-layer fit takes about 25 minutes
on one core, and it still ends orders of magnitude above the paper's 1e-10 to 1e-12 at 6-7 layers.
"""

from __future__ import annotations

import dataclasses
import functools
import numbers

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.optimize import minimize
from jax.scipy.special import logsumexp

from lintx.model import ModelConfig
from lintx.tasks import Noise
from lintx.train import TrainResult, check_seed, seed_keys

_CHUNK = 50_000  # matrices sampled per compiled call


@dataclasses.dataclass(frozen=True)
class SpectralConfig:
    """How :func:`fit` trains a noiseless GD++ model. Frozen: a mistyped field name is an error."""

    per_scale: int = 100_000  # Wishart matrices sampled at each scale
    scales: tuple = (0.6, 0.8, 1.0, 1.25, 1.5, 1.8)  # variances of X's entries (1.0: the task's own)
    starts: int = 4  # starts of BFGS per depth, grown from the best model one layer shallower
    steps: int = 1500  # BFGS iterations per round
    rounds: int = 2  # BFGS restarts from its own result (it stops early on float64 round-off)

    def __post_init__(self):
        for name in ("per_scale", "starts", "steps", "rounds"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise ValueError(f"SpectralConfig.{name} must be a positive integer, got {v!r}")
        if self.per_scale % _CHUNK:
            raise ValueError(f"SpectralConfig.per_scale must be a multiple of {_CHUNK}, got {self.per_scale}")
        if not self.scales or any(isinstance(s, bool) or not isinstance(s, numbers.Real) or not s > 0 for s in self.scales):
            raise ValueError(f"SpectralConfig.scales must be positive numbers, got {self.scales!r}")
        if 1.0 not in self.scales:
            raise ValueError("SpectralConfig.scales must include 1.0, the task's own distribution")


def error_polynomial(w: jax.Array, lam: jax.Array) -> jax.Array:
    """``g(lambda)``: the prediction error of a noiseless GD++ model along an eigen-direction of
    ``Sigma_0`` with eigenvalue ``lambda``, per unit of ``(u^T w)(u^T x_query)``. ``w``: ``(L, 2)`` holding
    ``(w_xx, w_yx)`` per layer (Eq. 10); ``lam``: any shape.

    Per eigen-direction, with ``c`` the context labels' weight (``y_j = c u^T x_j``), ``m`` the query's
    scale and ``s`` its accumulated ``y``: ``A = 1 + w_xx lambda``, ``s += w_yx c lambda m``,
    ``c <- (1 + w_yx lambda) c / A``, ``m <- A m``, ``lambda <- A^2 lambda``. The prediction is ``-y``, so
    the error is ``-s - 1``.
    """
    c, m, s, lam_l = jnp.ones_like(lam), jnp.ones_like(lam), jnp.zeros_like(lam), lam
    for l in range(w.shape[0]):
        w_xx, w_yx = w[l, 0], w[l, 1]
        A = 1 + w_xx * lam_l
        s = s + w_yx * c * lam_l * m
        c = (1 + w_yx * lam_l) * c / A
        m = A * m
        lam_l = A * A * lam_l
    return -s - 1


def noiseless_loss(w: jax.Array, lam: jax.Array, weights: jax.Array) -> jax.Array:
    """``1/2 E[sum_i g(lambda_i)^2]`` estimated as ``1/2 sum_m weights_m sum_i g(lam[m, i])^2``;
    ``lam``: ``(M, d)`` eigenvalues of ``M`` matrices, ``weights``: ``(M,)`` (see :func:`wishart_sample`)."""
    return 0.5 * jnp.sum(weights * jnp.sum(error_polynomial(w, lam) ** 2, axis=-1))


def wishart_sample(key: jax.Array, per_scale: int, scales=(1.0,), d: int = 10, n: int = 20) -> tuple[jax.Array, jax.Array]:
    """Eigenvalues ``(M, d)`` of ``X^T X`` for ``X`` ``(n, d)`` with entries ``N(0, s)``, ``per_scale``
    matrices at each variance ``s`` in ``scales``, and weights ``(M,)`` with ``sum_m weights_m f(X_m)``
    an unbiased estimate of ``E[f(X)]`` under ``N(0, 1)`` entries (importance sampling from the equal
    mixture of the scales). Float64; call inside ``jax.enable_x64(True)``."""
    if per_scale % _CHUNK:
        raise ValueError(f"per_scale must be a multiple of {_CHUNK}, got {per_scale}")
    s = jnp.asarray(scales, jnp.float64)
    lams, log_w = [], []
    for k in range(len(scales)):
        for c in range(per_scale // _CHUNK):
            lam = _eigenvalues(jax.random.fold_in(jax.random.fold_in(key, k), c), s[k], d, n)
            tr = jnp.sum(lam, axis=-1)
            # log N(X; 0, 1) - log mixture(X); the common (2 pi)^(-nd/2) cancels
            log_q = logsumexp(-(n * d / 2) * jnp.log(s)[None] - tr[:, None] / (2 * s[None]), axis=1) - jnp.log(len(scales))
            lams.append(lam)
            log_w.append(-tr / 2 - log_q)
    lam, log_w = jnp.concatenate(lams), jnp.concatenate(log_w)
    return lam, jnp.exp(log_w) / lam.shape[0]


@functools.partial(jax.jit, static_argnames=("d", "n"))
def _eigenvalues(key, variance, d: int, n: int) -> jax.Array:
    X = jnp.sqrt(variance) * jax.random.normal(key, (_CHUNK, n, d), jnp.float64)
    return jnp.linalg.eigvalsh(jnp.einsum("bji,bjk->bik", X, X))


def _candidates(rng: np.random.Generator, w: np.ndarray | None, count: int) -> list[np.ndarray]:
    """Starting points for one more layer, from the best ``(L-1, 2)`` model ``w`` (None: 1 layer).

    Growing depth: a copy of the last layer appended, or a copy of the first (times 0.9, so it stays
    below ``1 / lambda_max``) prepended, then jittered copies of both (log-normal, 20%). Random starts
    at 4 layers ended at losses of 1e3 to 1e77 (``benchmarks/RESULTS.md``)."""
    if w is None:
        base = [np.array([[-0.01, -0.03]])]
    else:
        base = [np.concatenate([w, w[-1:]]), np.concatenate([0.9 * w[:1], w])]
    out = list(base)
    while len(out) < count:
        b = base[len(out) % len(base)]
        out.append(b * np.exp(0.2 * rng.standard_normal(b.shape)))
    return out[:count]


def check_noiseless_gdpp(cfg: ModelConfig, noise: Noise) -> None:
    if cfg.variant != "gdpp" or cfg.heads != 1:
        raise ValueError(f"spectral training is for single-head GD++ models, got {cfg}")
    lo, hi = noise.support
    if (lo, hi) != (0.0, 0.0):
        raise ValueError(f"spectral training is for noiseless tasks (sigma = 0), got {noise.to_json()}")


@functools.lru_cache(maxsize=2)
def _sample(sc: SpectralConfig, seed: int, d: int, n: int) -> tuple[jax.Array, jax.Array]:
    with jax.enable_x64(True):
        return wishart_sample(seed_keys(seed)[1], sc.per_scale, sc.scales, d, n)


@functools.lru_cache(maxsize=16)
def _grown(sc: SpectralConfig, seed: int, d: int, n: int, depth: int) -> tuple[float, np.ndarray]:
    """Best ``(loss, w)`` at ``depth`` layers, grown from the best at ``depth - 1``. Memoised, so a process
    fitting 5, 6 and 7 layers of one seed (``benchmarks/noiseless.py``) grows the path once; every depth draws its starts from its own key, so the result does not depend on order."""
    lam, weights = _sample(sc, seed, d, n)
    shallower = None if depth == 1 else _grown(sc, seed, d, n, depth - 1)[1]
    rng = np.random.default_rng(np.asarray(jax.random.key_data(jax.random.fold_in(seed_keys(seed)[0], depth))).ravel())
    best = (np.nan, np.full((depth, 2), np.nan))
    if shallower is not None and not np.all(np.isfinite(shallower)):
        return best
    with jax.enable_x64(True):
        objective = jax.jit(lambda x: jnp.log(noiseless_loss(x.reshape(depth, 2), lam, weights)))
        for x0 in _candidates(rng, shallower, sc.starts):
            x = jnp.asarray(x0.ravel())
            for _ in range(sc.rounds):
                x = minimize(objective, x, method="BFGS", options={"maxiter": sc.steps}).x
            value = float(jnp.exp(objective(x)))
            if np.isfinite(value) and not value >= best[0]:  # best[0] starts as nan: the first finite wins
                best = (value, np.asarray(x, np.float64).reshape(depth, 2))
    return best


def fit(cfg: ModelConfig, noise: Noise, sc: SpectralConfig, seed: int) -> TrainResult:
    """Train a noiseless single-head GD++ model on :func:`noiseless_loss` (see module docstring): the
    seed's data key draws the eigenvalue sample, its initialisation key (folded with the depth) the
    starts. Returns a :class:`~lintx.train.TrainResult` like :func:`lintx.train.train`; ``loss_history``
    holds the best loss at each depth ``1 .. L``, ``final_loss`` the last."""
    check_noiseless_gdpp(cfg, noise)
    if not isinstance(sc, SpectralConfig):
        raise TypeError(f"sc must be a SpectralConfig, got {type(sc).__name__}")
    seed, L = check_seed(seed), cfg.layers
    path = [_grown(sc, seed, cfg.d, cfg.n, depth) for depth in range(1, L + 1)]
    final, w = path[-1]
    # GD++ parameters with q_x = 1: p = (w_xx, w_yx), so w_xx = p_x q_x and w_yx = p_y q_x (Eq. 10)
    params = {"p": w[None, :, None, :].astype(np.float32), "q": np.ones((1, L, 1, 1), np.float32)}
    finite = bool(np.isfinite(final)) and bool(np.all(np.isfinite(w)))
    return TrainResult(params=params, seeds=(seed,), loss_history=np.asarray([[loss for loss, _ in path]]),
                       final_loss=np.asarray([final]), skipped_steps=np.zeros(1, int), diverged=np.asarray([not finite]))

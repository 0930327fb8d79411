"""Ridge regression and the paper's closed-form baselines (Sec. 2.2, 6; Eq. 5).

Every baseline predicts ``<w_ridge, x_t>`` with ``w_ridge = (Sigma + s^2 I)^-1 alpha`` and differs only in
the ``s^2`` it plugs in:

- ``oracle``: the sequence's true ``sigma_tau^2`` (Bayes-optimal here, since ``w ~ N(0, I)``);
- :class:`ConstRR`: one constant ``s^2`` per noise distribution, tuned;
- :class:`AdaRR`: the unbiased estimate ``s^2 = ||y - X w_ols||^2 / (n - d)``;
- :class:`TunedRR`: ``s^2 = min(multiplier * s^2_AdaRR, threshold)``, both tuned.

Solves use :func:`spd_solve`, a batched Cholesky written in plain ``jnp`` operations (``d`` is small and
static). It replaces ``jnp.linalg.solve`` because jaxlib 0.10.2 on CPU can deadlock when one compiled
program runs two LAPACK calls (as the oracle plus ADARR do); plain operations also fuse and run faster
for 10x10 systems.

Tuning (our choice; the paper does not say how it tuned): on ``num`` sequences drawn with a tuning key that
is separate from any evaluation key, minimise the mean squared error by a grid search over ``log10 s^2``
(and ``log10 multiplier``, ``log10 threshold`` for TUNEDRR), then a finer grid around the best point. Each
candidate is cheap because ``Sigma = U diag(e) U^T`` is decomposed once per sequence:
``<w_ridge, x_t> = sum_k (U^T x_t)_k (U^T alpha)_k / (e_k + s^2)``.
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lintx.tasks import Noise, sample_batch


class Stats(NamedTuple):
    """Context statistics of Sec. 2.2: ``Sigma = sum x x^T``, ``alpha = sum y x``, and the query."""

    X: jax.Array  # (..., n, d)
    y: jax.Array  # (..., n)
    Sigma: jax.Array  # (..., d, d)
    alpha: jax.Array  # (..., d)
    x_query: jax.Array  # (..., d)


def stats(tokens: jax.Array) -> Stats:
    X, y = tokens[..., :-1, :-1], tokens[..., :-1, -1]
    return Stats(X, y, jnp.einsum("...ni,...nj->...ij", X, X), jnp.einsum("...n,...ni->...i", y, X), tokens[..., -1, :-1])


def spd_solve(A: jax.Array, b: jax.Array) -> jax.Array:
    """Solve ``A x = b`` for symmetric positive definite ``A (..., d, d)``, ``b (..., d)`` by Cholesky.

    Unrolled over the static ``d`` in plain ``jnp`` operations (no LAPACK call; see module docstring).
    A singular ``A`` gives non-finite values.
    """
    d = A.shape[-1]
    Lo = [[None] * d for _ in range(d)]
    for j in range(d):
        Lo[j][j] = jnp.sqrt(A[..., j, j] - sum(Lo[j][k] ** 2 for k in range(j)))
        for i in range(j + 1, d):
            Lo[i][j] = (A[..., i, j] - sum(Lo[i][k] * Lo[j][k] for k in range(j))) / Lo[j][j]
    z = []
    for i in range(d):
        z.append((b[..., i] - sum(Lo[i][k] * z[k] for k in range(i))) / Lo[i][i])
    x = [None] * d
    for i in reversed(range(d)):
        x[i] = (z[i] - sum(Lo[k][i] * x[k] for k in range(i + 1, d))) / Lo[i][i]
    return jnp.stack(x, axis=-1)


def ridge_weights(tokens: jax.Array, s2: jax.Array) -> jax.Array:
    """``w = (Sigma + s2 I)^-1 alpha`` (Eq. 5) for every sequence; ``s2`` broadcasts over the batch."""
    st = stats(tokens)
    d = st.Sigma.shape[-1]
    s2 = jnp.asarray(s2, st.Sigma.dtype)[..., None, None]
    return spd_solve(st.Sigma + s2 * jnp.eye(d, dtype=st.Sigma.dtype), st.alpha)


def ridge_predict(tokens: jax.Array, s2: jax.Array) -> jax.Array:
    """``<w_ridge(s2), x_t>``; ``s2 = 0`` is OLS."""
    return jnp.einsum("...i,...i->...", ridge_weights(tokens, s2), stats(tokens).x_query)


def adarr_defined(d: int, n: int) -> bool:
    """ADARR's noise estimate, and TUNEDRR built on it, exist only with more examples than features: at
    ``n <= d`` the least-squares fit interpolates the context and leaves no residual to estimate from."""
    return n > d


def adarr_variance(tokens: jax.Array) -> jax.Array:
    """ADARR's unbiased noise estimate ``||y - X w_ols||^2 / (n - d)``; needs ``n > d``."""
    n, d = tokens.shape[-2] - 1, tokens.shape[-1] - 1
    if not adarr_defined(d, n):
        raise ValueError(f"ADARR's noise estimate needs n > d (more examples than features), got n={n}, d={d}")
    st = stats(tokens)
    w = spd_solve(st.Sigma, st.alpha)
    r = st.y - jnp.einsum("...ni,...i->...n", st.X, w)
    return jnp.sum(r * r, axis=-1) / (n - d)


def oracle_predict(tokens: jax.Array, sigma: jax.Array) -> jax.Array:
    """Ridge with the true noise level: the reference of the adjusted loss."""
    return ridge_predict(tokens, jnp.asarray(sigma) ** 2)


# ConstRR and TunedRR are pytrees whose tuned numbers are leaves, so one compiled evaluation serves every
# noise setting's tuned baseline (a static baseline compiled once per tuned value, 1.4 s each on this CPU)
@functools.partial(jax.tree_util.register_dataclass, data_fields=["s2"], meta_fields=[])
@dataclasses.dataclass(frozen=True)
class ConstRR:
    """CONSTRR: ridge with one constant ``s2`` for all sequences."""

    s2: float

    def __call__(self, tokens):
        return ridge_predict(tokens, self.s2)


@jax.tree_util.register_static
@dataclasses.dataclass(frozen=True)
class AdaRR:
    """ADARR: ridge with the unbiased per-sequence noise estimate."""

    def __call__(self, tokens):
        return ridge_predict(tokens, adarr_variance(tokens))


@functools.partial(jax.tree_util.register_dataclass, data_fields=["multiplier", "threshold"], meta_fields=[])
@dataclasses.dataclass(frozen=True)
class TunedRR:
    """TUNEDRR: ridge with ``s2 = min(multiplier * adarr_variance, threshold)``."""

    multiplier: float
    threshold: float

    def __call__(self, tokens):
        return ridge_predict(tokens, jnp.minimum(self.multiplier * adarr_variance(tokens), self.threshold))


class _Spectral(NamedTuple):
    e: jax.Array  # (B, d) eigenvalues of Sigma
    xz: jax.Array  # (B, d) (U^T x_t) * (U^T alpha)
    s2_ada: jax.Array  # (B,)
    y_query: jax.Array  # (B,)


def _spectral(tokens, y_query) -> _Spectral:
    """Eigendecomposition of every ``Sigma`` for tuning, in NumPy float64 (outside any compiled program)."""
    st = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), stats(tokens))
    e, U = np.linalg.eigh(st.Sigma)
    xz = np.einsum("bij,bi->bj", U, st.x_query) * np.einsum("bij,bi->bj", U, st.alpha)
    n, d = tokens.shape[-2] - 1, tokens.shape[-1] - 1
    s2_ada = np.asarray(jax.jit(adarr_variance)(tokens), np.float64) if adarr_defined(d, n) else np.full(e.shape[:-1], np.nan)
    return _Spectral(*(jnp.asarray(a, jnp.float32) for a in (e, xz, s2_ada, y_query)))


@jax.jit
def _sq_errors(sp: _Spectral, s2: jax.Array) -> jax.Array:
    """Mean squared error for each candidate ``s2`` of shape ``(K, B)`` (or broadcastable)."""
    pred = jnp.sum(sp.xz / (sp.e + s2[..., None]), axis=-1)
    return jnp.mean((pred - sp.y_query) ** 2, axis=-1)


def _tuning_set(noise: Noise, key: jax.Array, num: int, d: int, n: int) -> _Spectral:
    b = jax.jit(sample_batch, static_argnums=(1, 2, 3, 4))(key, noise, num, d, n)
    return _spectral(b.tokens, b.y_query)


def tune_constrr(noise: Noise, key: jax.Array, num: int = 100_000, d: int = 10, n: int = 20) -> ConstRR:
    """Tune CONSTRR's ``s2`` on ``num`` sequences drawn with ``key`` (keep it apart from evaluation keys).

    Grid over ``log10 s2`` in [-4, 3] (71 points, plus ``s2 = 0``), then 41 points in the best cell's
    neighbourhood. Returns the minimiser of the tuning-set MSE.
    """
    sp = _tuning_set(noise, key, num, d, n)
    errors = lambda s2: np.nan_to_num(np.asarray(_sq_errors(sp, jnp.asarray(s2)[:, None])), nan=np.inf)  # noqa: E731 (s2 = 0 at n < d: 0 / 0)
    grid = np.concatenate([[0.0], np.logspace(-4, 3, 71)])
    err = errors(grid)
    i = int(np.argmin(err))
    if i > 0:
        lo, hi = np.log10(grid[max(i - 1, 1)]), np.log10(grid[min(i + 1, len(grid) - 1)])
        fine = np.logspace(lo, hi, 41)
        err_f = errors(fine)
        if err_f.min() < err[i]:
            return ConstRR(float(fine[np.argmin(err_f)]))
    return ConstRR(float(grid[i]))


def tune_tunedrr(noise: Noise, key: jax.Array, num: int = 100_000, d: int = 10, n: int = 20) -> TunedRR:
    """Tune TUNEDRR's ``multiplier`` and ``threshold`` on ``num`` sequences drawn with ``key``.

    Grid over ``log10 multiplier`` in [-1, 1] (41 points) x ``log10 threshold`` in [-2, 3] (51 points,
    plus no threshold), then a 21 x 21 grid over the neighbouring cells of the best point.
    """
    if not adarr_defined(d, n):
        raise ValueError(f"TUNEDRR builds on ADARR's estimate, which needs n > d, got n={n}, d={d}")
    sp = _tuning_set(noise, key, num, d, n)

    def search(mults, thresholds):
        # (K_m, K_t, B) candidate s2 in chunks over multipliers to bound memory
        errs = np.stack([np.asarray(_sq_errors(sp, jnp.minimum(m * sp.s2_ada, jnp.asarray(thresholds)[:, None]))) for m in mults])
        i, j = np.unravel_index(np.argmin(errs), errs.shape)
        return i, j, errs[i, j]

    mults = np.logspace(-1, 1, 41)
    thresholds = np.concatenate([np.logspace(-2, 3, 51), [np.inf]])
    i, j, best = search(mults, thresholds)
    m_f = np.logspace(np.log10(mults[max(i - 1, 0)]), np.log10(mults[min(i + 1, len(mults) - 1)]), 21)
    if np.isinf(thresholds[j]):
        t_f = np.array([np.inf])
    else:
        t_f = np.logspace(np.log10(thresholds[max(j - 1, 0)]), np.log10(thresholds[min(j + 1, len(thresholds) - 2)]), 21)
    i2, j2, best2 = search(m_f, t_f)
    if best2 < best:
        return TunedRR(float(m_f[i2]), float(t_f[j2]))
    return TunedRR(float(mults[i]), float(thresholds[j]))


def tune_baselines(noise: Noise, key: jax.Array, num: int = 100_000, d: int = 10, n: int = 20) -> dict:
    """The three baselines for one noise distribution, tuned on sequences drawn with ``key``; CONSTRR alone
    where ADARR is not defined (:func:`adarr_defined`)."""
    if isinstance(num, bool) or not isinstance(num, numbers.Integral) or num < 1:
        raise ValueError(f"tune_num (sequences to tune the baselines on) must be a positive integer, got {num!r}")
    k1, k2 = jax.random.split(key)
    out = {"CONSTRR": tune_constrr(noise, k1, num, d, n)}
    if adarr_defined(d, n):
        out.update(ADARR=AdaRR(), TUNEDRR=tune_tunedrr(noise, k2, num, d, n))
    return out

"""The paper's theory made executable (Sec. 4-5): constructions run through :mod:`lintx.model`, so each
one checks the architecture itself, not a re-implementation of it.

- :func:`implicit_gap`: Theorem 4.1 / Lemma 4.3, the forward pass against the implicit linear model.
- :func:`quadratic_similarity`: Theorem 4.2, layer labels against a quadratic target.
- :func:`gdpp_newton_params`, :func:`gd_best_step_error`: Theorem 5.1, GD++ as a second-order method.
- :func:`two_layer_ridge_params`: Theorem 5.2, a two-layer model that reaches ridge for two noise levels.
- :func:`learned_algorithm`: Sec. 5.2-5.3, a trained DIAG model's step size and shrink factor per layer.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from lintx.implicit import implicit_model, implicit_tokens
from lintx.model import ModelConfig, to_full, trajectory, w_matrix
from lintx.ridge import ridge_predict


def implicit_gap(P, Q, tokens) -> np.ndarray:
    """Theorem 4.1: per layer, ``max |forward - implicit| / max |tokens|`` over all tokens, shape ``(L,)``.

    ``P, Q``: full weights ``(L, H, d+1, d+1)`` of any variant; ``tokens``: ``(..., n+1, d+1)``.
    Expected: float rounding only.
    """
    L, H, k = P.shape[0], P.shape[1], P.shape[-1]
    cfg = ModelConfig("full", L, heads=H, d=k - 1, n=tokens.shape[-2] - 1)
    forward = trajectory(cfg, {"P": P, "Q": Q}, tokens)
    implicit = implicit_tokens(implicit_model(P, Q, tokens), tokens)
    axes = tuple(range(1, forward.ndim))
    return np.asarray(jnp.max(jnp.abs(forward - implicit), axis=axes) / jnp.max(jnp.abs(forward), axis=axes))[1:]


def quadratic_similarity(P, Q, n_train: int, n: int, key, num: int = 64) -> np.ndarray:
    """Theorem 4.2: per layer, the mean over ``num`` sequences of ``|cos|`` between the context labels
    ``(y_1^l..y_n^l)`` and the quadratic target ``(x_1(1)^2..x_n(1)^2)``, shape ``(L,)``.

    Data as in the theorem: ``x_i ~ N(0, I)``, ``y_i = <w, x_i>``. The model was trained on ``n_train``
    context tokens; with ``n`` tokens its attention statistics are sums over ``n``, so ``Q`` is rescaled by
    ``n_train / n`` to keep them at the trained scale (our choice). The theorem holds for any weights:
    ``y_i^l = a^l y_i - <w^l, x_i>`` is linear in ``x_i``, and a linear function of a Gaussian is nearly
    orthogonal to ``x(1)^2`` once ``n >> d``.
    """
    L, H, k = P.shape[0], P.shape[1], P.shape[-1]
    d = k - 1
    kw, kx = jax.random.split(key)
    w = jax.random.normal(kw, (num, d))
    x = jax.random.normal(kx, (num, n + 1, d))
    y = jnp.einsum("bnd,bd->bn", x, w).at[:, -1].set(0.0)
    tokens = jnp.concatenate([x, y[..., None]], -1)
    cfg = ModelConfig("full", L, heads=H, d=d, n=n)
    labels = trajectory(cfg, {"P": P, "Q": Q * (n_train / n)}, tokens)[1:, :, :n, -1]  # (L, B, n)
    target = x[:, :n, 0] ** 2
    cos = jnp.sum(labels * target, -1) / (jnp.linalg.norm(labels, axis=-1) * jnp.linalg.norm(target, axis=-1))
    return np.asarray(jnp.mean(jnp.abs(cos), axis=-1))


class Spectrum(NamedTuple):
    mu: float
    nu: float


def gdpp_schedule(mu: float, nu: float, layers: int) -> tuple[list[float], Spectrum]:
    """Theorem 5.1's preconditioning steps for ``Sigma``'s eigenvalues in ``[mu, nu]``.

    Each step maps an eigenvalue ``s`` to ``s (1 - gamma s)^2`` with ``gamma nu_l = 1/3``, where
    ``[mu_l, nu_l]`` is the interval after ``l`` steps. ``s (1 - s / (3 nu))^2`` increases on ``[0, nu]``, so
    the interval maps to ``[f(mu_l), f(nu_l)] = [f(mu_l), 4 nu_l / 9]``. Near ``nu_l`` the relative spread
    ``delta`` becomes ``3/4 delta^2``: quadratic convergence. Returns the ``gamma_l`` and the final interval.
    """
    gammas = []
    for _ in range(layers):
        g = 1.0 / (3.0 * nu)
        gammas.append(g)
        mu, nu = mu * (1 - g * mu) ** 2, nu * (1 - g * nu) ** 2
    return gammas, Spectrum(mu, nu)


def gdpp_newton_params(mu: float, nu: float, layers: int, dtype=jnp.float32) -> tuple[jax.Array, jax.Array]:
    """Theorem 5.1's GD++ model with ``layers`` layers (``layers - 1`` preconditioning steps, then one
    gradient step), as single-head ``gdpp`` parameters ``(p, q)`` of shapes ``(L, 1, 2)``, ``(L, 1, 1)``.

    Preconditioning layer l: ``w_xx = -gamma_l`` (``p_x = -gamma_l, p_y = 0, q_x = 1``) so
    ``x <- (I - gamma_l Sigma_l) x``. Last layer: ``w_yx = -eta`` (``p_x = 0, p_y = -eta, q_x = 1``) with
    ``eta = 2 / (mu_L + nu_L)``, the best step on the preconditioned spectrum, so the prediction
    ``-y_t = eta <alpha', x_t'>`` is one gradient step from ``w = 0`` on the preconditioned data.
    Worst-case relative error: ``(nu_L - mu_L) / (nu_L + mu_L)`` (see :func:`gdpp_error_bound`).
    """
    if layers < 1:
        raise ValueError(f"layers must be >= 1, got {layers}")
    gammas, final = gdpp_schedule(mu, nu, layers - 1)
    eta = 2.0 / (final.mu + final.nu)
    p = [[-g, 0.0] for g in gammas] + [[0.0, -eta]]
    q = [[1.0]] * layers
    return jnp.asarray(p, dtype)[:, None, :], jnp.asarray(q, dtype)[:, None, :]


def gdpp_error_bound(kappa: float, layers: int) -> float:
    """Worst-case relative error ``|y_hat - <x_t, w*>| / (||x_t|| ||w*||)`` of the Theorem 5.1 model with
    ``layers`` layers, for any spectrum inside ``[1, kappa]``: ``(kappa_L - 1) / (kappa_L + 1)``."""
    _, final = gdpp_schedule(1.0, float(kappa), layers - 1)
    return (final.nu - final.mu) / (final.nu + final.mu)


def gdpp_layers_needed(kappa: float, eps: float) -> int:
    """Fewest layers whose :func:`gdpp_error_bound` is at most ``eps``: ``O(log kappa + log log 1/eps)``."""
    L = 1
    while gdpp_error_bound(kappa, L) > eps:
        L += 1
    return L


def gd_best_step_error(kappa: float, steps: int) -> float:
    """Worst-case relative error of plain gradient descent from 0 with the best fixed step
    ``2 / (mu + nu)``, after ``steps`` steps: ``((kappa - 1) / (kappa + 1))^steps``."""
    return ((kappa - 1) / (kappa + 1)) ** steps


def least_squares_tokens(key, kappa: float, d: int, n: int, num: int, dtype=jnp.float64):
    """Noiseless least-squares problems whose ``Sigma = X^T X`` has eigenvalues spread log-uniformly
    over ``[1, kappa]`` (both ends included). Returns tokens ``(num, n+1, d+1)`` and the targets
    ``<x_t, w*>``, with ``||x_t|| = ||w*|| = 1``."""
    kq, kv, kw, kt = jax.random.split(key, 4)
    s = jnp.logspace(0.0, math.log10(kappa), d, dtype=dtype)
    U = jnp.linalg.qr(jax.random.normal(kq, (num, n, d), dtype))[0]
    V = jnp.linalg.qr(jax.random.normal(kv, (num, d, d), dtype))[0]
    X = jnp.einsum("bnk,k,bjk->bnj", U, jnp.sqrt(s), V)
    w = jax.random.normal(kw, (num, d), dtype)
    w = w / jnp.linalg.norm(w, axis=-1, keepdims=True)
    x_t = jax.random.normal(kt, (num, d), dtype)
    x_t = x_t / jnp.linalg.norm(x_t, axis=-1, keepdims=True)
    y = jnp.einsum("bnd,bd->bn", X, w)
    x_all = jnp.concatenate([X, x_t[:, None]], 1)
    y_all = jnp.concatenate([y, jnp.zeros((num, 1), dtype)], 1)
    return jnp.concatenate([x_all, y_all[..., None]], -1), jnp.einsum("bd,bd->b", x_t, w)


def gdpp_relative_error(kappa: float, layers: int, key, d: int = 10, n: int = 20, num: int = 64) -> float:
    """Largest relative error over ``num`` problems of condition number ``kappa`` of the Theorem 5.1
    model run through :func:`lintx.model.trajectory` (float64 where JAX allows it)."""
    dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    tokens, target = least_squares_tokens(key, kappa, d, n, num, dtype)
    p, q = gdpp_newton_params(1.0, float(kappa), layers, dtype)
    cfg = ModelConfig("gdpp", layers, d=d, n=n)
    y_hat = -trajectory(cfg, {"p": p, "q": q}, tokens)[-1, :, -1, -1]
    return float(jnp.max(jnp.abs(y_hat - target)))


def two_layer_ridge_params(sigmas: Sequence[float], n: int, dtype=jnp.float32) -> tuple[jax.Array, jax.Array]:
    """Theorem 5.2's two-layer DIAG model for ``x_i ~ N(0, I/n)`` and ``sigma`` in ``{sigma_1, sigma_2}``.

    Layer 1 has only ``w_yx`` (``p = (0, w_yx)``, ``q = (1, 0)``), layer 2 only ``w_yy``
    (``p = (0, 1)``, ``q = (0, w_yy)``). As ``n`` grows, ``Sigma -> I`` and ``lambda^1 -> n sigma^2``, so
    the prediction ``-(1 + w_yy lambda^1) w_yx <alpha, x_t>`` equals ridge's ``<alpha, x_t> / (1 + sigma^2)``
    for both noise levels when ``c = -w_yx`` and ``c z = -n w_yx w_yy`` solve the two linear equations
    ``c + (c z) sigma_k^2 = 1 / (1 + sigma_k^2)``, k = 1, 2.
    """
    s1, s2 = (float(s) ** 2 for s in sigmas)
    if s1 == s2:
        raise ValueError("Theorem 5.2 needs two different noise levels")
    A = np.array([[1.0, s1], [1.0, s2]])
    c, cz = np.linalg.solve(A, [1 / (1 + s1), 1 / (1 + s2)])
    w_yx, w_yy = -c, cz / (c * n)
    p = jnp.asarray([[[0.0, w_yx]], [[0.0, 1.0]]], dtype)
    q = jnp.asarray([[[1.0, 0.0]], [[0.0, w_yy]]], dtype)
    return p, q


def two_layer_ridge_gap(sigmas: Sequence[float], sigma: float, n: int, key, d: int = 10, num: int = 2000) -> float:
    """Relative mean squared gap ``E[(y_hat - y_ridge)^2] / E[y_ridge^2]`` between Theorem 5.2's model
    and ridge with the true ``sigma`` (one of ``sigmas``), with ``x ~ N(0, I/n)``."""
    kx, kw, kxi = jax.random.split(key, 3)
    x = jax.random.normal(kx, (num, n + 1, d)) / math.sqrt(n)
    w = jax.random.normal(kw, (num, d))
    y = jnp.einsum("bnd,bd->bn", x, w) + sigma * jax.random.normal(kxi, (num, n + 1))
    y = y.at[:, -1].set(0.0)
    tokens = jnp.concatenate([x, y[..., None]], -1)
    p, q = two_layer_ridge_params(sigmas, n)
    y_hat = -trajectory(ModelConfig("diag", 2, d=d, n=n), {"p": p, "q": q}, tokens)[-1, :, -1, -1]
    ridge = ridge_predict(tokens, sigma**2)
    return float(jnp.mean((y_hat - ridge) ** 2) / jnp.mean(ridge**2))


def learned_algorithm(cfg: ModelConfig, params, tokens) -> dict:
    """Sec. 5.2-5.3 read off a trained DIAG (or GD++) model, per layer and sequence.

    - ``w``: ``(L, 2, 2)``, the products ``[[w_xx, w_xy], [w_yx, w_yy]]`` of Eq. 10;
    - ``shrink``: ``(L, B)``, the factor ``1 + w_yy lambda^l`` by which layer l multiplies every label
      (adaptive rescaling, Sec. 5.2; ``lambda^l`` is the sum of the squared context labels entering it);
    - ``step``: ``(L, B)``, the effective gradient step of layer l: with the implicit model of Lemma 4.3,
      the component of ``w^{l+1} - w^l`` along the gradient direction ``g^l = X^T (a^l y - X w^l)`` of
      ``f(w) = 1/2 sum_i (a^l y_i - <w, x_i>)^2``, i.e. ``<w^{l+1} - w^l, g^l> / ||g^l||^2`` (Lemma 4.4:
      the w-update looks like a gradient step with momentum; Sec. 5.3: its size adapts to the noise).
    """
    if cfg.variant == "full":
        raise ValueError("learned_algorithm reads the scalars of a diag or gdpp model")
    w = w_matrix(cfg, params)
    y_in = trajectory(cfg, params, tokens)[:-1, ..., : cfg.n, -1]  # labels entering each layer
    shrink = 1 + w[:, 1, 1][:, None] * jnp.sum(y_in * y_in, axis=-1)
    P, Q = to_full(cfg, params)
    im = implicit_model(P, Q, tokens)
    X, y = tokens[..., : cfg.n, :-1], tokens[..., : cfg.n, -1]
    resid = im.a[:-1, ..., None] * y - jnp.einsum("bni,lbi->lbn", X, im.w[:-1])
    g = jnp.einsum("bni,lbn->lbi", X, resid)
    step = jnp.sum((im.w[1:] - im.w[:-1]) * g, -1) / jnp.sum(g * g, -1)
    return {"w": w, "shrink": np.asarray(shrink), "step": np.asarray(step)}

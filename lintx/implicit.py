"""The implicit linear model of a linear transformer (paper Sec. 4, Theorem 4.1, Lemma 4.3).

After layer l every context token is ``x_i^l = M^l x_i + y_i u^l``, ``y_i^l = a^l y_i - <w^l, x_i>`` and the
query is ``x_t^l = M^l x_t``, ``y_t^l = -<w^l, x_t>``, so the prediction after layer l is ``<w^l, x_t>``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class ImplicitModel(NamedTuple):
    """``(M^l, u^l, a^l, w^l)`` for l = 0..L (entry 0 is the identity start of Lemma 4.3)."""

    M: jax.Array  # (L+1, ..., d, d)
    u: jax.Array  # (L+1, ..., d)
    a: jax.Array  # (L+1, ...)
    w: jax.Array  # (L+1, ..., d)


def implicit_model(P: jax.Array, Q: jax.Array, tokens: jax.Array) -> ImplicitModel:
    """Run the recursion of Lemma 4.3 for full weights ``P, Q`` of shape ``(L, H, d+1, d+1)``.

    Starting from ``M^0 = I, u^0 = 0, a^0 = 1, w^0 = 0``, with the layer's aggregated matrix
    ``G = sum_k P_k (sum_{j<=n} e_j^l e_j^l^T) Q_k = [[A, b], [c^T, d_]]``::

        M^{l+1} = (I + A) M^l - b (w^l)^T        u^{l+1} = (I + A) u^l + a^l b
        a^{l+1} = (1 + d_) a^l + <c, u^l>        w^{l+1} = (1 + d_) w^l - (M^l)^T c

    The context tokens of layer l are rebuilt from ``(M^l, u^l, a^l, w^l)`` and the raw inputs alone, so
    agreement with :func:`lintx.model.trajectory` is a real check of Theorem 4.1. Any variant works through
    its full matrices (:func:`lintx.model.to_full`). ``tokens``: ``(..., n+1, d+1)``.
    """
    d = tokens.shape[-1] - 1
    x, y = tokens[..., :-1, :d], tokens[..., :-1, d]
    batch = tokens.shape[:-2]
    eye = jnp.broadcast_to(jnp.eye(d, dtype=tokens.dtype), batch + (d, d))
    M, u, a, w = eye, jnp.zeros(batch + (d,), tokens.dtype), jnp.ones(batch, tokens.dtype), jnp.zeros(batch + (d,), tokens.dtype)
    out = [(M, u, a, w)]
    for l in range(P.shape[0]):
        x_l = jnp.einsum("...ij,...nj->...ni", M, x) + y[..., None] * u[..., None, :]
        y_l = a[..., None] * y - jnp.einsum("...ni,...i->...n", x, w)
        e = jnp.concatenate([x_l, y_l[..., None]], axis=-1)
        C = jnp.einsum("...ji,...jk->...ik", e, e)
        G = jnp.einsum("hij,...jk,hkl->...il", P[l], C, Q[l])
        A, b, c, d_ = G[..., :d, :d], G[..., :d, d], G[..., d, :d], G[..., d, d]
        IA = eye + A
        M, u, a, w = (
            jnp.einsum("...ij,...jk->...ik", IA, M) - b[..., :, None] * w[..., None, :],
            jnp.einsum("...ij,...j->...i", IA, u) + a[..., None] * b,
            (1 + d_) * a + jnp.einsum("...i,...i->...", c, u),
            (1 + d_)[..., None] * w - jnp.einsum("...ji,...j->...i", M, c),
        )
        out.append((M, u, a, w))
    return ImplicitModel(*(jnp.stack(t) for t in zip(*out)))


def implicit_tokens(im: ImplicitModel, tokens: jax.Array) -> jax.Array:
    """Tokens of every layer ``(L+1, ..., n+1, d+1)`` predicted by Theorem 4.1 from the raw inputs."""
    d = tokens.shape[-1] - 1
    x, y = tokens[..., :d], tokens[..., d]  # the query's y is 0, so one formula covers it
    xs = jnp.einsum("l...ij,...nj->l...ni", im.M, x) + y[None, ..., None] * im.u[..., None, :]
    ys = im.a[..., None] * y[None] - jnp.einsum("...ni,l...i->l...n", x, im.w)
    return jnp.concatenate([xs, ys[..., None]], axis=-1)

"""Linear self-attention stacks: FULL, DIAG and GD++ (paper Sec. 2.1, 5, Eq. 2-3, 9-11).

A layer updates every token, the query included, with attention statistics of the ``n`` context tokens
only (Eq. 2-3)::

    e_i <- e_i + sum_k P_k C Q_k e_i,    C = sum_{j<=n} e_j e_j^T = [[Sigma, alpha], [alpha^T, lambda]]

The prediction after layer l is ``-y`` of the query token (the paper's sign convention).

Raw parameters, by variant, with ``L`` layers and ``H`` heads:

- ``full``: ``{"P": (L, H, d+1, d+1), "Q": (L, H, d+1, d+1)}``.
- ``diag`` (Eq. 9): ``{"p": (L, H, 2), "q": (L, H, 2)}`` holding ``(p_x, p_y)`` and ``(q_x, q_y)``, so
  ``P_k = diag(p_x I_d, p_y)`` and ``Q_k = diag(q_x I_d, q_y)``. With one head this is the paper's DIAG;
  several heads free the four products ``w_xx, w_xy, w_yx, w_yy`` of Eq. 10.
- ``gdpp`` (Eq. 11): ``{"p": (L, H, 2), "q": (L, H, 1)}``: DIAG with ``q_y = 0``.

Every variant exports full ``P, Q`` matrices with :func:`to_full` (the checkpoint format).
"""

from __future__ import annotations

import dataclasses
import functools
import numbers

import jax
import jax.numpy as jnp
import numpy as np

from lintx.tasks import D, N

VARIANTS = ("full", "diag", "gdpp")


def check_int(name: str, value, minimum: int) -> int:
    """``value`` as an ``int``: a ``TypeError`` naming ``name`` if it is not an integer (a bool is not), a
    ``ValueError`` if it is below ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture of a linear transformer. Frozen: a mistyped field is an error, not a new field."""

    variant: str
    layers: int
    heads: int = 1
    d: int = D
    n: int = N

    def __post_init__(self):
        if not isinstance(self.variant, str) or self.variant not in VARIANTS:
            raise ValueError(f"unknown model variant {self.variant!r}; expected one of {VARIANTS}")
        for name in ("layers", "heads", "d", "n"):  # stored as plain ints (a numpy integer is not JSON)
            object.__setattr__(self, name, check_int(name, getattr(self, name), 1))

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        L, H, k = self.layers, self.heads, self.d + 1
        if self.variant == "full":
            return {"P": (L, H, k, k), "Q": (L, H, k, k)}
        return {"p": (L, H, 2), "q": (L, H, 2 if self.variant == "diag" else 1)}


def _diag_vectors(cfg: ModelConfig, params) -> tuple[jax.Array, jax.Array]:
    """DIAG / GD++ parameters as the diagonals ``(L, H, d+1)`` of P and Q."""
    p, q = params["p"], params["q"]
    if cfg.variant == "gdpp":
        q = jnp.concatenate([q, jnp.zeros_like(q)], axis=-1)
    expand = lambda v: jnp.concatenate([jnp.repeat(v[..., :1], cfg.d, axis=-1), v[..., 1:]], axis=-1)
    return expand(p), expand(q)


def to_full(cfg: ModelConfig, params) -> tuple[jax.Array, jax.Array]:
    """Full ``P, Q`` matrices ``(L, H, d+1, d+1)`` of any variant."""
    if cfg.variant == "full":
        return params["P"], params["Q"]
    p, q = _diag_vectors(cfg, params)
    eye = jnp.eye(cfg.d + 1, dtype=p.dtype)
    return p[..., :, None] * eye, q[..., :, None] * eye


def from_full(cfg: ModelConfig, P, Q, atol: float = 0.0) -> dict:
    """Inverse of :func:`to_full`. Raises ``ValueError`` if ``P, Q`` do not have the variant's form."""
    P, Q = np.asarray(P), np.asarray(Q)
    shape = (cfg.layers, cfg.heads, cfg.d + 1, cfg.d + 1)
    if P.shape != shape or Q.shape != shape:
        raise ValueError(f"P, Q must have shape {shape} for {cfg}, got {P.shape} and {Q.shape}")
    if cfg.variant == "full":
        return {"P": P, "Q": Q}
    params = {"p": np.stack([P[..., 0, 0], P[..., -1, -1]], -1), "q": np.stack([Q[..., 0, 0], Q[..., -1, -1]], -1)}
    if cfg.variant == "gdpp":
        params["q"] = params["q"][..., :1]
    P2, Q2 = (np.asarray(m) for m in to_full(cfg, params))
    if not (np.allclose(P, P2, rtol=0, atol=atol) and np.allclose(Q, Q2, rtol=0, atol=atol)):
        raise ValueError(f"P, Q are not of the {cfg.variant!r} form (Eq. 9 / 11)")
    return params


def _mixers(cfg: ModelConfig, params):
    """Per layer, a function ``C -> sum_k P_k C Q_k`` (the layer's aggregated matrix of Lemma 4.3)."""
    if cfg.variant == "full":
        P, Q = params["P"], params["Q"]
        return [
            (lambda C, P=P[l], Q=Q[l]: jnp.einsum("hij,...jk,hkl->...il", P, C, Q))
            for l in range(cfg.layers)
        ]
    # diag(p) C diag(q) = (p q^T) * C, summed over heads: W = sum_k p_k q_k^T
    p, q = _diag_vectors(cfg, params)
    W = jnp.einsum("lhi,lhj->lij", p, q)
    return [(lambda C, W=W[l]: W * C) for l in range(cfg.layers)]


def trajectory(cfg: ModelConfig, params, tokens: jax.Array) -> jax.Array:
    """All tokens after every layer: ``(L+1, ..., n+1, d+1)``; entry 0 is the input (Eq. 2-3).

    The attention statistics ``C`` sum over the first ``n`` tokens only; the update applies to all
    ``n+1``. ``tokens`` may carry any batch dimensions in front of ``(n+1, d+1)``.
    """
    if tokens.shape[-2:] != (cfg.n + 1, cfg.d + 1):
        raise ValueError(f"tokens must end in shape {(cfg.n + 1, cfg.d + 1)} for {cfg}, got {tokens.shape}")
    out = [tokens]
    e = tokens
    for mix in _mixers(cfg, params):
        ctx = e[..., : cfg.n, :]
        C = jnp.einsum("...ji,...jk->...ik", ctx, ctx)
        e = e + jnp.einsum("...ij,...tj->...ti", mix(C), e)
        out.append(e)
    return jnp.stack(out)


def context_statistics(cfg: ModelConfig, tokens: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``C = sum_{j<=n} e_j e_j^T`` ``(..., d+1, d+1)`` and the query token ``(..., d+1)`` of a batch."""
    if tokens.shape[-2:] != (cfg.n + 1, cfg.d + 1):
        raise ValueError(f"tokens must end in shape {(cfg.n + 1, cfg.d + 1)} for {cfg}, got {tokens.shape}")
    ctx = tokens[..., : cfg.n, :]
    return jnp.einsum("...ji,...jk->...ik", ctx, ctx), tokens[..., cfg.n, :]


def predict(cfg: ModelConfig, params, tokens: jax.Array) -> jax.Array:
    """Prediction read after every layer, ``-y`` of the query token: ``(L, ...)``; ``[-1]`` is the model's.

    Computed from the attention statistics, not the tokens: Eq. 2-3 multiplies every token, the query
    included, by the same matrix ``T_l = I + sum_k P_k C_l Q_k`` (the reason Theorem 4.1 holds), so
    ``C_{l+1} = T_l C_l T_l^T`` and ``e_query^{l+1} = T_l e_query^l``. That costs ``O(L d^3)`` per sequence
    instead of ``O(L n d^2)`` and about halves a training step; it equals :func:`trajectory` (tested).
    """
    C, e = context_statistics(cfg, tokens)
    out = []
    for mix in _mixers(cfg, params):
        A = mix(C)  # T - I
        e = e + jnp.einsum("...ij,...j->...i", A, e)
        TC = C + jnp.einsum("...ij,...jk->...ik", A, C)
        C = TC + jnp.einsum("...ij,...kj->...ik", TC, A)  # unused after the last layer: jit drops it
        out.append(-e[..., -1])
    return jnp.stack(out)


@functools.partial(jax.tree_util.register_dataclass, data_fields=["params"], meta_fields=["cfg"])
@dataclasses.dataclass(frozen=True)
class Model:
    """A model as a predictor: ``Model(cfg, params)(tokens) -> (L, ...)`` predictions after each layer.

    A pytree whose leaves are the parameters, so jitted evaluation code compiles once per architecture,
    not once per set of weights.
    """

    cfg: ModelConfig
    params: dict

    def __call__(self, tokens: jax.Array) -> jax.Array:
        return predict(self.cfg, self.params, tokens)


def w_matrix(cfg: ModelConfig, params) -> np.ndarray:
    """DIAG / GD++: per layer ``[[w_xx, w_xy], [w_yx, w_yy]]`` (Eq. 10), shape ``(L, 2, 2)``."""
    if cfg.variant == "full":
        raise ValueError("w_xx, w_xy, w_yx, w_yy are defined for the diag and gdpp variants only")
    p, q = _diag_vectors(cfg, params)
    p2 = jnp.stack([p[..., 0], p[..., -1]], -1)
    q2 = jnp.stack([q[..., 0], q[..., -1]], -1)
    return np.asarray(jnp.einsum("lhi,lhj->lij", p2, q2))

"""Noisy in-context linear regression tasks (paper Sec. 2.2-2.3).

Each sequence tau has its own weight vector ``w ~ N(0, I_d)`` and noise level ``sigma_tau``; its ``n``
context examples are ``y_i = <w, x_i> + xi_i`` with ``xi_i ~ N(0, sigma_tau^2)``, and the query target
``y_t = <w, x_t>`` is noiseless. The noise level is drawn from one of three distributions:

- :class:`Uniform` ``sigma_tau ~ U(0, sigma_max)`` (the paper's "mixed noise variance"),
- :class:`Categorical` ``sigma_tau`` uniform over a finite set such as ``{1, 3}``,
- :class:`Fixed` one ``sigma`` for every sequence (the per-variance profiles of Fig. 2, 3 and 7).

Tokens are ``e_i = (x_i, y_i)`` for the context and ``e_{n+1} = (x_t, 0)`` for the query, which is last.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import NamedTuple, Union

import jax
import jax.numpy as jnp

D = 10  # feature dimension of the paper
N = 20  # context length of the paper


def check_sigma(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return value


@dataclasses.dataclass(frozen=True)
class Uniform:
    """``sigma_tau ~ U(0, sigma_max)``: the paper's uniform mixed-noise setting."""

    sigma_max: float

    def __post_init__(self):
        object.__setattr__(self, "sigma_max", check_sigma("sigma_max", self.sigma_max))

    def sample(self, key: jax.Array, batch: int) -> jax.Array:
        return self.sigma_max * jax.random.uniform(key, (batch,))

    @property
    def mean_sigma2(self) -> float:
        """``E[sigma_tau^2] = sigma_max^2 / 3``."""
        return self.sigma_max**2 / 3.0

    @property
    def support(self) -> tuple[float, float]:
        """The in-distribution range of sigma (shaded in the per-variance figures)."""
        return (0.0, self.sigma_max)

    @property
    def label(self) -> str:
        """Table 1 column name, e.g. ``u5``."""
        return f"u{self.sigma_max:g}"

    def to_json(self) -> dict:
        return {"kind": "uniform", "sigma_max": self.sigma_max}


@dataclasses.dataclass(frozen=True)
class Categorical:
    """``sigma_tau`` uniform over a finite set of values (paper: ``{1, 3}`` and ``{1, 3, 5}``)."""

    values: tuple[float, ...]

    def __post_init__(self):
        values = self.values
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise TypeError(f"categorical noise values must be a sequence of numbers, got {values!r}")
        values = tuple(check_sigma("categorical noise value", v) for v in values)
        if not values:
            raise ValueError("categorical noise needs at least one sigma value, got an empty set")
        object.__setattr__(self, "values", values)

    def sample(self, key: jax.Array, batch: int) -> jax.Array:
        idx = jax.random.randint(key, (batch,), 0, len(self.values))
        return jnp.asarray(self.values, dtype=jnp.float32)[idx]

    @property
    def mean_sigma2(self) -> float:
        return sum(v * v for v in self.values) / len(self.values)

    @property
    def support(self) -> tuple[float, float]:
        return (min(self.values), max(self.values))

    @property
    def label(self) -> str:
        """``c13`` where every value is a single digit (the paper's ``{1, 3}``), else each value after a
        ``_`` (``c_1_13``, ``c_1.5_3``, ``c_10``), so that no two settings share a label and every label
        parses back."""
        if all(v == int(v) and 0 <= v <= 9 for v in self.values):
            return "c" + "".join(f"{int(v)}" for v in self.values)
        return "c" + "".join(f"_{v:g}" for v in self.values)

    def to_json(self) -> dict:
        return {"kind": "categorical", "values": list(self.values)}


@dataclasses.dataclass(frozen=True)
class Fixed:
    """One noise level ``sigma`` for every sequence."""

    sigma: float

    def __post_init__(self):
        object.__setattr__(self, "sigma", check_sigma("sigma", self.sigma))

    def sample(self, key: jax.Array, batch: int) -> jax.Array:
        del key
        return jnp.full((batch,), self.sigma)

    @property
    def mean_sigma2(self) -> float:
        return self.sigma**2

    @property
    def support(self) -> tuple[float, float]:
        return (self.sigma, self.sigma)

    @property
    def label(self) -> str:
        return f"f{self.sigma:g}"

    def to_json(self) -> dict:
        return {"kind": "fixed", "sigma": self.sigma}


Noise = Union[Uniform, Categorical, Fixed]
NOISE_KINDS = {"uniform": Uniform, "categorical": Categorical, "fixed": Fixed}


def noise_from_json(obj) -> Noise:
    """Inverse of ``Noise.to_json``: ``{"kind": "uniform", "sigma_max": 5}`` and so on."""
    if not isinstance(obj, dict) or "kind" not in obj:
        raise ValueError(f"noise must be a dict with a 'kind' key, got {obj!r}")
    kind = obj["kind"]
    if kind not in NOISE_KINDS:
        raise ValueError(f"unknown noise kind {kind!r}; expected one of {sorted(NOISE_KINDS)}")
    fields = {k: v for k, v in obj.items() if k != "kind"}
    cls = NOISE_KINDS[kind]
    expected = {f.name for f in dataclasses.fields(cls)}
    if set(fields) != expected:
        raise ValueError(f"{kind} noise needs exactly the keys {sorted(expected)}, got {sorted(fields)}")
    return cls(**fields)


_LABEL_HELP = "'u5' or 'uniform:4.5', 'c13', 'c_2_14' or 'categorical:2,14', 'f2' or 'fixed:2'"


def noise_from_label(label: str) -> Noise:
    """Parse a noise setting: a label (``u5``, ``u4.5``; ``c13`` with one digit per value or ``c_1.5_3``
    with ``_`` before each value; ``f2.5``), the inverse of ``Noise.label``, or the long form ``uniform:4.5``,
    ``categorical:2,4``, ``fixed:1``."""
    if not isinstance(label, str):
        raise TypeError(f"noise label must be a string like {_LABEL_HELP}, got {type(label).__name__} {label!r}")
    kind, sep, body = label.partition(":")
    if sep:
        if kind not in NOISE_KINDS:
            raise ValueError(f"unknown noise kind {kind!r} in {label!r}; expected one of {sorted(NOISE_KINDS)}")
        kind, values = kind[0], body.split(",")
    else:
        kind, body = label[:1], label[1:]
        values = body[1:].split("_") if kind == "c" and body.startswith("_") else (list(body) if kind == "c" else [body])
    if kind not in ("u", "c", "f") or not body:
        raise ValueError(f"noise label must look like {_LABEL_HELP}, got {label!r}")
    try:
        numbers_ = [float(v) for v in values]
    except ValueError:
        raise ValueError(f"cannot parse noise label {label!r}: expected numbers, as in {_LABEL_HELP}") from None
    if kind != "c" and len(numbers_) != 1:
        raise ValueError(f"cannot parse noise label {label!r}: one number expected")
    return Uniform(numbers_[0]) if kind == "u" else Fixed(numbers_[0]) if kind == "f" else Categorical(tuple(numbers_))


def as_noise(noise) -> Noise:
    """A noise setting, or a label of one parsed (:func:`noise_from_label`); anything else is a TypeError."""
    if isinstance(noise, (Uniform, Categorical, Fixed)):
        return noise
    if isinstance(noise, str):
        return noise_from_label(noise)
    raise TypeError(f"noise must be a Uniform, Categorical or Fixed, or a label like {_LABEL_HELP}; got {type(noise).__name__} {noise!r}")


def check_positive(name: str, value) -> int:
    """A positive integer (a batch size, ``d``, ``n``); anything else is an error naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class Batch(NamedTuple):
    """A batch of sequences. ``tokens``: ``(B, n+1, d+1)``, query last with label 0."""

    tokens: jax.Array  # (B, n+1, d+1)
    y_query: jax.Array  # (B,) noiseless query targets <w, x_t>
    sigma: jax.Array  # (B,) each sequence's noise level
    w: jax.Array  # (B, d) each sequence's true weights


def sample_batch(
    key: jax.Array, noise: Noise, batch: int, d: int = D, n: int = N, dtype=jnp.float32
) -> Batch:
    """Sample ``batch`` sequences (Sec. 2.2). Stateless: the same key gives the same batch.

    All Gaussian numbers of a sequence (its ``(n+1) d`` inputs, ``d`` weights, ``n`` label noises) come from
    one ``(batch, (n+1) d + d + n)`` draw: on CPU that is about 3x faster than drawing a ``(batch, n+1, d)``
    array, and the sampler is a large part of a training step.
    """
    noise, batch, d, n = as_noise(noise), check_positive("batch", batch), check_positive("d", d), check_positive("n", n)
    k_sigma, k_z = jax.random.split(key)
    return batch_with_sigma(k_z, noise.sample(k_sigma, batch).astype(dtype), d, n, dtype)


def batch_with_sigma(key: jax.Array, sigma: jax.Array, d: int = D, n: int = N, dtype=jnp.float32) -> Batch:
    """Sequences with given noise levels ``sigma`` ``(B,)`` (may be traced): the body of :func:`sample_batch`.

    ``sample_batch(key, Fixed(s), B)`` equals ``batch_with_sigma(split(key)[1], full(B, s))``, so a
    per-variance profile can trace sigma instead of compiling once per value.
    """
    batch = sigma.shape[0]
    sigma = sigma.astype(dtype)
    z = jax.random.normal(key, (batch, (n + 1) * d + d + n), dtype)
    x = z[:, : (n + 1) * d].reshape(batch, n + 1, d)
    w = z[:, (n + 1) * d : (n + 2) * d]
    xi = z[:, (n + 2) * d :] * sigma[:, None]
    y = jnp.einsum("bnd,bd->bn", x, w)
    labels = jnp.concatenate([y[:, :n] + xi, jnp.zeros((batch, 1), dtype)], axis=1)
    tokens = jnp.concatenate([x, labels[..., None]], axis=-1)
    return Batch(tokens=tokens, y_query=y[:, n], sigma=sigma, w=w)

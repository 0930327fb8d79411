"""Losses and evaluation (paper Sec. 2.2, 6; Eq. 6-7).

- loss: ``1/2 E[(y_hat - y_t)^2]``;
- adjusted loss: the loss minus the oracle's (ridge with the true ``sigma_tau``) on the same sequences;
- per-variance profile: adjusted loss at each of a grid of fixed noise levels (Fig. 2, 3, 7);
- per-layer readout: a :class:`lintx.model.Model` predicts after every layer, so each function here returns
  one value per layer for a model (Fig. 5, 7) and a scalar for a baseline.

A predictor is a pytree callable ``tokens (B, n+1, d+1) -> predictions (..., B)``: a ``Model`` or one of the
baselines of :mod:`lintx.ridge`.

Evaluation sets are deterministic: chunk ``i`` of :data:`EVAL_CHUNK` sequences is drawn with
``fold_in(key, i)``, so the first ``m`` sequences are the same whatever ``num >= EVAL_CHUNK`` is asked for,
and every predictor evaluated with the same key sees the same sequences. A set smaller than one chunk
(``num < EVAL_CHUNK``, reduced-fidelity runs) is one draw of ``num`` sequences with ``fold_in(key, 0)``,
not a prefix of the full chunk: drawing 10,000 sequences to use 2,000 would cost five times as much.
"""

from __future__ import annotations

import functools
import numbers
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from lintx.ridge import oracle_predict
from lintx.tasks import Batch, Noise, check_sigma, batch_with_sigma, sample_batch

EVAL_CHUNK = 10_000


def loss(y_hat: jax.Array, y: jax.Array) -> jax.Array:
    """``1/2 mean (y_hat - y)^2`` over the last axis (Eq. 6)."""
    return 0.5 * jnp.mean((y_hat - y) ** 2, axis=-1)


@functools.partial(jax.jit, static_argnames=("noise", "size", "d", "n"))
def _sample_chunk(key, noise: Noise, size: int, d: int, n: int) -> Batch:
    return sample_batch(key, noise, size, d, n)


@functools.partial(jax.jit, static_argnames=("size", "d", "n"))
def _fixed_chunk(key, sigma, size: int, d: int, n: int) -> Batch:
    """``sample_batch(key, Fixed(sigma), size)`` with sigma traced: one compile for all sigmas."""
    return batch_with_sigma(jax.random.split(key)[1], jnp.full((size,), sigma, jnp.float32), d, n)


def _chunk_size(num: int) -> int:
    return min(EVAL_CHUNK, num)


@jax.jit
def _half_sq_errors(predictor, tokens, y):
    return 0.5 * (predictor(tokens) - y) ** 2


@jax.jit
def _oracle_half_sq_errors(tokens, sigma, y):
    return 0.5 * (oracle_predict(tokens, sigma) - y) ** 2


def _errors(predictor, b: Batch):
    """Half squared errors of ``predictor`` and of the oracle on a batch.

    Sampling, the predictor and the oracle are compiled separately, so a compile is shared by every
    predictor of the same structure (all checkpoints of one variant and depth, whatever their noise) and
    the oracle (ridge, the slowest to compile) is compiled once per process: a Table 1 build compiles
    about 30 functions instead of one per checkpoint and noise setting (2 s each on this CPU).
    """
    return _half_sq_errors(predictor, b.tokens, b.y_query), _oracle_half_sq_errors(b.tokens, b.sigma, b.y_query)


def _check_num(num) -> int:
    if isinstance(num, bool) or not isinstance(num, numbers.Integral) or num < 1:
        raise ValueError(f"number of evaluation sequences must be a positive integer, got {num!r}")
    return int(num)


WORST = 10  # the tail statistic: how much of a set's adjusted loss its WORST sequences carry


def _add(acc, err, err_oracle, m: int):
    """Running sums of :func:`_finish` after one chunk of half squared errors, its first ``m`` sequences
    (the last chunk is drawn whole and cut, so sets share prefixes); ``acc`` is None before the first."""
    err, err_oracle = np.asarray(err[..., :m], np.float64), np.asarray(err_oracle[:m], np.float64)
    model_sum, oracle_sum, adjusted_sq, worst = acc or (0.0, 0.0, 0.0, None)
    both = err - err_oracle if worst is None else np.concatenate([worst, err - err_oracle], axis=-1)
    return (model_sum + err.sum(-1), oracle_sum + err_oracle.sum(), adjusted_sq + ((err - err_oracle) ** 2).sum(-1),
            -np.sort(-both, axis=-1)[..., :WORST])


def _finish(acc, num: int) -> dict:
    """Loss statistics over ``num`` sequences from :func:`_add`'s sums.

    Besides the means, the tail of the per-sequence adjusted loss (model's half squared error minus the
    oracle's): ``worst_share``, the sum over the :data:`WORST` largest divided by the sum over all ``num``
    (the share of the set's adjusted loss they carry), and ``max_sequence``, the largest one. A model that
    overflows on some sequence gets non-finite statistics, without a warning: the callers judge them."""
    model_sum, oracle_sum, adjusted_sq, worst = acc
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        return _statistics(model_sum, oracle_sum, adjusted_sq, worst, num)


def _statistics(model_sum, oracle_sum, adjusted_sq, worst, num: int) -> dict:
    total = model_sum - oracle_sum
    adjusted = total / num
    return {
        "loss": np.asarray(model_sum / num),
        "oracle_loss": np.asarray(oracle_sum / num),
        "adjusted_loss": np.asarray(adjusted),
        "adjusted_stderr": np.sqrt(np.maximum(adjusted_sq / num - adjusted**2, 0.0) / max(num - 1, 1)),
        "worst_share": np.asarray(np.where(total > 0, worst.sum(-1) / np.where(total > 0, total, 1.0), np.nan)),
        "max_sequence": np.asarray(worst[..., 0]),
    }


def _accumulate(chunk_errors, key: jax.Array, num: int) -> dict:
    """:func:`_finish` over ``num`` sequences; chunk ``i`` is ``chunk_errors(fold_in(key, i))``."""
    acc = None
    for i, start in enumerate(range(0, num, EVAL_CHUNK)):
        acc = _add(acc, *chunk_errors(jax.random.fold_in(key, i)), min(EVAL_CHUNK, num - start))
    return _finish(acc, num)


def evaluate(predictor, noise: Noise, key: jax.Array, num: int = 100_000, d: int = 10, n: int = 20) -> dict:
    """Loss, oracle loss and adjusted loss of ``predictor`` on ``num`` sequences of ``noise``.

    Values are ``np.float64`` arrays with the predictor's leading shape (``(L,)`` for a model: the loss
    of the prediction read after each layer). Sums are accumulated in float64 across chunks.
    ``adjusted_stderr`` is the standard error of ``adjusted_loss`` over the sequences (the spread another
    evaluation set of the same size would show); multiply by ``sqrt(num / m)`` for a set of ``m``.
    """
    return evaluate_many([predictor], noise, key, num, d, n)[0]


def evaluate_many(predictors: Sequence, noise: Noise, key: jax.Array, num: int = 100_000, d: int = 10, n: int = 20) -> list[dict]:
    """:func:`evaluate` of each of ``predictors`` on the same set, the same numbers, each chunk of sequences
    drawn once and its oracle solved once for all of them (sampling and the oracle cost about as much as a
    7-layer model: ``benchmarks/RESULTS.md``, "Evaluating many models on one set")."""
    return evaluate_drawn(predictors, _drawn(noise, key, _check_num(num), d, n))


def _drawn(noise: Noise, key: jax.Array, num: int, d: int, n: int):
    """The chunks of :func:`evaluate`'s ``num`` sequences, one at a time, each with its oracle's half squared
    errors: ``(tokens, y_query, oracle errors, sequences used)``."""
    for i, start in enumerate(range(0, num, EVAL_CHUNK)):
        b = _sample_chunk(jax.random.fold_in(key, i), noise, _chunk_size(num), d, n)
        yield b.tokens, b.y_query, _oracle_half_sq_errors(b.tokens, b.sigma, b.y_query), min(EVAL_CHUNK, num - start)


def draw(noise: Noise, key: jax.Array, num: int, d: int = 10, n: int = 20) -> list:
    """The sequences of :func:`evaluate` ``(noise, key, num)`` drawn and their oracle solved once, kept, so
    that models can be scored on them again and again (:func:`evaluate_drawn`), as a training looks at its
    copies; about 1 MB a thousand sequences at ``d = 10``."""
    return list(_drawn(noise, key, _check_num(num), d, n))


def evaluate_drawn(predictors: Sequence, chunks) -> list[dict]:
    """:func:`evaluate_many` of ``predictors`` on sequences already drawn (:func:`draw`): the same numbers."""
    accs, num = [None] * len(predictors), 0
    for tokens, y, err_oracle, m in chunks:
        accs = [_add(acc, _half_sq_errors(p, tokens, y), err_oracle, m) for acc, p in zip(accs, predictors)]
        num += m
    return [_finish(acc, num) for acc in accs]


def adjusted_loss(predictor, noise: Noise, key: jax.Array, num: int = 100_000, d: int = 10, n: int = 20) -> np.ndarray:
    """Adjusted loss: loss minus the oracle's loss on the same sequences (Sec. 6)."""
    return evaluate(predictor, noise, key, num, d, n)["adjusted_loss"]


def profile(predictor, sigmas: Sequence[float], key: jax.Array, num: int = 10_000, d: int = 10, n: int = 20) -> dict:
    """:func:`evaluate` at each fixed noise level in ``sigmas`` (Fig. 2, 3, 6, 7): every value gains a
    leading axis ``len(sigmas)``. Equals ``evaluate(predictor, Fixed(s), key, num)`` for each ``s``.

    Every sigma uses the same ``key``, so the curves are drawn with common random numbers: the same
    ``w, x`` and unit noise, scaled by sigma. That makes profiles smooth in sigma.
    """
    num = _check_num(num)
    sigmas = [check_sigma("sigma", s) for s in sigmas]
    rows = [_accumulate(lambda k, s=s: _errors(predictor, _fixed_chunk(k, s, _chunk_size(num), d, n)), key, num) for s in sigmas]
    return {name: np.stack([r[name] for r in rows]) for name in rows[0]}


def variance_profile(
    predictor, sigmas: Sequence[float], key: jax.Array, num: int = 10_000, d: int = 10, n: int = 20
) -> np.ndarray:
    """Adjusted loss at each fixed noise level in ``sigmas``: shape ``(len(sigmas), *leading)``."""
    return profile(predictor, sigmas, key, num, d, n)["adjusted_loss"]


@jax.jit
def _sequence_chunk(predictor, tokens, sigma, y):
    """Last layer's adjusted half squared error and ``lambda_max(Sigma)`` of each sequence of a chunk."""
    x = tokens[:, :-1, :-1]  # context inputs (B, n, d)
    lam = jnp.linalg.eigvalsh(jnp.einsum("bni,bnj->bij", x, x))[:, -1]
    err = 0.5 * (jnp.atleast_2d(predictor(tokens))[-1] - y) ** 2
    return err - 0.5 * (oracle_predict(tokens, sigma) - y) ** 2, lam


def sequence_errors(predictor, noise: Noise, key: jax.Array, num: int, d: int = 10, n: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Per-sequence adjusted loss (the last layer's half squared error minus the oracle's) and the largest
    eigenvalue of the context's ``Sigma = sum_i x_i x_i^T`` (Sec. 2.2), each ``(num,)``, on the same
    sequences as :func:`evaluate` with the same ``key``: where a heavy-tailed loss comes from."""
    num = _check_num(num)
    out = []
    for i, start in enumerate(range(0, num, EVAL_CHUNK)):
        m = min(EVAL_CHUNK, num - start)
        b = _sample_chunk(jax.random.fold_in(key, i), noise, _chunk_size(num), d, n)
        adjusted, lam = _sequence_chunk(predictor, b.tokens, b.sigma, b.y_query)
        out.append((np.asarray(adjusted[:m], np.float64), np.asarray(lam[:m], np.float64)))
    return np.concatenate([a for a, _ in out]), np.concatenate([lam for _, lam in out])

"""The numbers the figures draw, and the theory notebook's cached numbers.

The checkpoints of a cell come from the store (:func:`lintx.fit.checkpoints`, which trains a missing one
if asked); the loss functions below report them under the evaluation protocol of :mod:`lintx.evaluation`
(the median over its evaluation sets, the seed chosen on its selection sets).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from lintx import theory
from lintx.evaluation import (Protocol, baseline_profile, baseline_sets, checkpoint_sets, choose, profile_checkpoint, spread,
                              theory_cached, tuned_baselines)
from lintx.model import ModelConfig
from lintx.fit import checkpoints
from lintx.tasks import D, N, Fixed, sample_batch


def readouts(data_dir, profile: str, cfg: ModelConfig, noise, seeds: Sequence[int], protocol: Protocol,
             train_missing: bool = True, extra_seeds: Sequence[int] = ()) -> dict:
    """Adjusted loss of the prediction read after each layer, for every seed found (Fig. 5): the median,
    min and max over the protocol's evaluation sets, each ``(S, L)``."""
    found = checkpoints(data_dir, profile, cfg, noise, seeds, train_missing, extra_seeds)
    rows = [spread(checkpoint_sets(data_dir, p, protocol.eval_seeds, protocol.num)["adjusted_loss"]) for _, p in found]
    return {k: np.array([r[k] for r in rows], np.float64).reshape(len(rows), cfg.layers) for k in ("median", "min", "max")}


def best_losses(data_dir, profile: str, variant: str, noise, depths: Sequence[int], seeds: Sequence[int], protocol: Protocol,
                train_missing: bool = True, extra_seeds: Sequence[int] = (), d: int = D, n: int = N, heads: int = 1) -> dict:
    """At each depth, the adjusted loss of the seed chosen on the selection sets: the median, min and max
    over the evaluation sets (NaN where no seed was found), each ``(len(depths),)``: the curves of Fig. 1
    and 3, as in Table 1."""
    out = {"median": [], "min": [], "max": []}
    for L in depths:
        path = best_checkpoint(data_dir, profile, ModelConfig(variant, L, heads=heads, d=d, n=n), noise, seeds, protocol, train_missing, extra_seeds)
        r = spread(checkpoint_sets(data_dir, path, protocol.eval_seeds, protocol.num)["adjusted_loss"][:, -1]) if path else {}
        for k in out:
            out[k].append(float(r[k]) if path else np.nan)
    return {k: np.array(v, np.float64) for k, v in out.items()}


def profiles(data_dir, profile: str, cfg: ModelConfig, noise, seeds: Sequence[int], sigmas: Sequence[float],
             eval_seed: int, num: int, train_missing: bool = True, extra_seeds: Sequence[int] = ()) -> dict:
    """Per-variance profiles of every seed found: each value ``(S, len(sigmas), L)`` (Fig. 2, 3, 6, 7)."""
    found = [profile_checkpoint(data_dir, p, sigmas, eval_seed, num)
             for _, p in checkpoints(data_dir, profile, cfg, noise, seeds, train_missing, extra_seeds)]
    shapes = {"loss": cfg.layers, "oracle_loss": 1, "adjusted_loss": cfg.layers}  # the oracle has no layers
    # (0, len(sigmas), ...) when no seed was found (every one diverged, or none trained and train_missing off)
    return {k: np.array([f[k] for f in found], np.float64).reshape(len(found), len(sigmas), w) for k, w in shapes.items()}


def best_checkpoint(data_dir, profile: str, cfg: ModelConfig, noise, seeds: Sequence[int], protocol: Protocol,
                    train_missing: bool = True, extra_seeds: Sequence[int] = ()):
    """Path of the seed chosen on the protocol's selection sets (the model Table 1 reports), or None."""
    chosen = choose(data_dir, checkpoints(data_dir, profile, cfg, noise, seeds, train_missing, extra_seeds), protocol)
    return None if chosen is None else str(chosen[1])


def baseline_losses(data_dir, label: str, protocol: Protocol, tune_num: int = 100_000, d: int = D, n: int = N) -> dict:
    """Median over the evaluation sets of the adjusted loss of CONSTRR, ADARR, TUNEDRR tuned for ``label``."""
    return {name: float(np.median(r["adjusted_loss"])) for name, r in baseline_sets(data_dir, label, protocol, tune_num, d, n).items()}


def profile_curves(data_dir, profile: str, label: str, L: int, variants: Sequence[str], seeds: Sequence[int], protocol: Protocol,
                   sigmas: Sequence[float], eval_seed: int, num: int, tune_num: int = 100_000, train_missing: bool = True,
                   extra_seeds: Sequence[int] = (), d: int = D, n: int = N) -> tuple[dict, dict]:
    """The curves of a per-variance panel (Fig. 2, 3): the adjusted loss at each fixed sigma of the seed
    chosen on the selection sets, per variant with a checkpoint (``{variant: (len(sigmas),)}``), and of the
    baselines tuned for ``label`` (``{name: (len(sigmas),)}``), on ``num`` sequences per sigma."""
    from lintx.tasks import noise_from_label

    noise, models = noise_from_label(label), {}
    for v in variants:
        path = best_checkpoint(data_dir, profile, ModelConfig(v, L, d=d, n=n), noise, seeds, protocol, train_missing, extra_seeds)
        if path is not None:
            models[v] = np.asarray(profile_checkpoint(data_dir, path, sigmas, eval_seed, num)["adjusted_loss"])[:, -1]
    baselines = {name: np.asarray(r["adjusted_loss"]) for name, r in baseline_profiles(data_dir, label, sigmas, eval_seed, num, tune_num, d, n).items()}
    return models, baselines


def baseline_profiles(data_dir, label: str, sigmas: Sequence[float], eval_seed: int, num: int, tune_num: int = 100_000,
                      d: int = D, n: int = N) -> dict:
    """Per-variance profiles of the three baselines tuned for ``label``: ``{name: {"loss": ..., ...}}``."""
    return {name: baseline_profile(data_dir, name, b, sigmas, eval_seed, num, d, n)
            for name, b in tuned_baselines(data_dir, label, num=tune_num, d=d, n=n).items()}


# The theory notebook's numbers (lintx.theory), cached like the evaluations. float32 results differ in their
# last bits between CPUs, so computed afresh on another machine the theory figures would get other bytes;
# cached (and shipped), every machine draws them from the same numbers, as it does the other figures.


def implicit_gap(data_dir, noise, eval_seed: int, num: int, ck=None, layers: int = 0, heads: int = 0,
                 p_std: float = 0.05, q_std: float = 0.0025) -> np.ndarray:
    """Theorem 4.1 (:func:`lintx.theory.implicit_gap`) on ``num`` sequences of ``noise``, cached: ``(L,)``.

    For the checkpoint ``ck``, or (``ck=None``) for random FULL weights with ``layers`` layers and
    ``heads`` heads (``P`` std ``p_std``, ``Q`` std ``q_std``, drawn from the evaluation key folded with ``heads``)."""
    key = {"theory": "implicit_gap", "noise": noise.to_json(), "eval_seed": eval_seed, "num": num}
    if ck is not None:
        key["predictor"] = ck.meta["npz_sha256"]
    else:
        key.update(layers=layers, heads=heads, p_std=p_std, q_std=q_std)

    def compute():
        tokens = sample_batch(jax.random.key(eval_seed), noise, num).tokens
        if ck is not None:
            P, Q = jnp.asarray(ck.P), jnp.asarray(ck.Q)
        else:
            k1, k2 = jax.random.split(jax.random.fold_in(jax.random.key(eval_seed), heads))
            shape = (layers, heads, tokens.shape[-1], tokens.shape[-1])
            P, Q = p_std * jax.random.normal(k1, shape), q_std * jax.random.normal(k2, shape)
        return {"gap": theory.implicit_gap(P, Q, tokens)}

    return np.asarray(theory_cached(data_dir, key, compute)["gap"])


def quadratic_similarity(data_dir, ck, ns: Sequence[int], eval_seed: int, num: int) -> np.ndarray:
    """Theorem 4.2 (:func:`lintx.theory.quadratic_similarity`) of a checkpoint ``ck`` for each context length in
    ``ns``, cached: ``(len(ns), L)``."""
    ns = [int(n) for n in ns]
    key = {"theory": "quadratic_similarity", "predictor": ck.meta["npz_sha256"], "ns": ns, "eval_seed": eval_seed, "num": num}
    compute = lambda: {"sim": np.stack([theory.quadratic_similarity(jnp.asarray(ck.P), jnp.asarray(ck.Q), ck.cfg.n, n, jax.random.key(eval_seed), num) for n in ns])}  # noqa: E731
    return np.asarray(theory_cached(data_dir, key, compute)["sim"])


def gdpp_relative_errors(data_dir, kappa: float, layers: Sequence[int], eval_seed: int, stream: int, num: int = 64) -> np.ndarray:
    """Theorem 5.1 (:func:`lintx.theory.gdpp_relative_error`, in float64) for each depth in ``layers``, on
    problems drawn from the evaluation key folded with ``stream``, cached: ``(len(layers),)``."""
    layers = [int(L) for L in layers]
    key = {"theory": "gdpp_relative_error", "kappa": float(kappa), "layers": layers, "eval_seed": eval_seed, "stream": stream, "num": num}

    def compute():
        with jax.enable_x64(True):
            k = jax.random.fold_in(jax.random.key(eval_seed), stream)
            return {"error": [theory.gdpp_relative_error(kappa, L, k, num=num) for L in layers]}

    return np.asarray(theory_cached(data_dir, key, compute)["error"])


def two_layer_ridge_gaps(data_dir, sigmas: Sequence[float], sigma: float, ns: Sequence[int], eval_seed: int, num: int) -> np.ndarray:
    """Theorem 5.2 (:func:`lintx.theory.two_layer_ridge_gap`) at noise ``sigma`` for each context length in
    ``ns`` (sequences drawn from the evaluation key folded with ``n``), cached: ``(len(ns),)``."""
    sigmas, ns = [float(s) for s in sigmas], [int(n) for n in ns]
    key = {"theory": "two_layer_ridge_gap", "sigmas": sigmas, "sigma": float(sigma), "ns": ns, "eval_seed": eval_seed, "num": num}
    compute = lambda: {"gap": [theory.two_layer_ridge_gap(sigmas, sigma, n, jax.random.fold_in(jax.random.key(eval_seed), n), num=num) for n in ns]}  # noqa: E731
    return np.asarray(theory_cached(data_dir, key, compute)["gap"])


def learned_algorithm(data_dir, ck, sigmas: Sequence[float], eval_seed: int, num: int) -> dict:
    """Sec. 5.2-5.3 (:func:`lintx.theory.learned_algorithm`) of a DIAG or GD++ checkpoint ``ck`` on ``num``
    sequences of each fixed noise level in ``sigmas``, cached: the mean ``step`` and ``shrink`` over the
    sequences, each ``(len(sigmas), L)``."""
    sigmas = [float(s) for s in sigmas]
    key = {"theory": "learned_algorithm", "predictor": ck.meta["npz_sha256"], "sigmas": sigmas, "eval_seed": eval_seed, "num": num}

    def compute():
        outs = [theory.learned_algorithm(ck.cfg, ck.model.params, sample_batch(jax.random.key(eval_seed), Fixed(s), num).tokens) for s in sigmas]
        return {k: np.stack([o[k].mean(axis=1) for o in outs]) for k in ("step", "shrink")}

    return {k: np.asarray(v) for k, v in theory_cached(data_dir, key, compute).items()}

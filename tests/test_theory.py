"""Sec. 4-5 as tests: each construction checked against what its theorem states, with no number copied
from a run."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lintx import theory
from lintx.model import ModelConfig, to_full
from lintx.tasks import Uniform, sample_batch
from lintx.recipe import TrainConfig
from lintx.train import train, unstack


@pytest.mark.parametrize("heads", [1, 2, 3])
def test_theorem_4_1_gap_is_rounding(heads):
    k1, k2, k3 = jax.random.split(jax.random.key(heads), 3)
    P = 0.05 * jax.random.normal(k1, (3, heads, 11, 11))
    Q = 0.05 / 20 * jax.random.normal(k2, (3, heads, 11, 11))
    tokens = sample_batch(k3, Uniform(2.0), 8).tokens
    gap = theory.implicit_gap(P, Q, tokens)
    assert gap.shape == (3,) and np.all(gap < 1e-5)


def test_theorem_4_2_quadratic_similarity_is_small():
    d = 10
    cfg = ModelConfig("diag", 2)
    result = train(cfg, Uniform(1.0), TrainConfig(steps=100, batch=256), seeds=(0,))
    P, Q = to_full(cfg, unstack(result, 0))
    sim = theory.quadratic_similarity(P, Q, n_train=20, n=50 * d, key=jax.random.key(0))
    assert sim.shape == (2,) and np.all(sim < 0.1), sim
    # and for random full weights (the theorem holds for any weights)
    k1, k2 = jax.random.split(jax.random.key(1))
    Pr = 0.3 * jax.random.normal(k1, (2, 1, d + 1, d + 1))
    Qr = 0.3 / 20 * jax.random.normal(k2, (2, 1, d + 1, d + 1))
    assert np.all(theory.quadratic_similarity(Pr, Qr, 20, 50 * d, jax.random.key(2)) < 0.1)


def test_theorem_5_1_schedule_is_second_order():
    # gamma * nu = 1/3 maps the top of the spectrum to 4/9 of itself, and shrinks the relative spread
    # delta to about 3/4 delta^2 near convergence
    gammas, final = theory.gdpp_schedule(1.0, 100.0, 1)
    assert gammas[0] * 100.0 == pytest.approx(1 / 3) and final.nu == pytest.approx(400 / 9)
    bounds = [theory.gdpp_error_bound(100, L) for L in range(1, 12)]
    assert all(b2 <= b1 for b1, b2 in zip(bounds, bounds[1:]))
    # O(log kappa): each decade of kappa costs the same few layers
    need = [theory.gdpp_layers_needed(k, 1e-6) for k in (10, 100, 1000, 10000)]
    steps = np.diff(need)
    assert steps.max() - steps.min() <= 1 and steps.max() <= math.ceil(math.log(10) / math.log(9 / 4)) + 1
    # and far fewer layers than gradient descent with its best fixed step
    gd = next(k for k in range(1, 10**6) if theory.gd_best_step_error(100, k) <= 1e-6)
    assert need[1] * 10 < gd


def test_theorem_5_1_construction_reaches_1e_6_within_predicted_layers():
    with jax.enable_x64(True):
        kappa = 100.0
        L = theory.gdpp_layers_needed(kappa, 1e-6)
        err = theory.gdpp_relative_error(kappa, L, jax.random.key(0), num=32)
        assert err < 1e-6, f"relative error {err:.3g} with {L} layers"
        assert theory.gdpp_relative_error(kappa, L - 2, jax.random.key(0), num=32) > 1e-6  # it needs them


@pytest.mark.parametrize("sigma", [1.0, 3.0])
def test_theorem_5_2_gap_to_ridge_shrinks_with_n(sigma):
    small = theory.two_layer_ridge_gap([1.0, 3.0], sigma, 100, jax.random.key(0))
    large = theory.two_layer_ridge_gap([1.0, 3.0], sigma, 10_000, jax.random.key(0), num=500)
    assert large < small / 10, (small, large)


def test_theorem_5_2_construction_uses_only_w_yx_then_w_yy():
    from lintx.model import w_matrix

    p, q = theory.two_layer_ridge_params([1.0, 3.0], 100)
    w = w_matrix(ModelConfig("diag", 2, n=100), {"p": p, "q": q})
    assert np.count_nonzero(w[0]) == 1 and w[0, 1, 0] != 0
    assert np.count_nonzero(w[1]) == 1 and w[1, 1, 1] != 0
    with pytest.raises(ValueError, match="two different"):
        theory.two_layer_ridge_params([2.0, 2.0], 100)


def test_learned_algorithm_reads_a_gradient_step():
    # a one-layer model with only w_yx = -eta is exactly one gradient step of size eta from w = 0
    cfg = ModelConfig("diag", 1)
    params = {"p": jnp.array([[[0.0, -0.03]]]), "q": jnp.array([[[1.0, 0.0]]])}
    tokens = sample_batch(jax.random.key(0), Uniform(2.0), 16).tokens
    out = theory.learned_algorithm(cfg, params, tokens)
    np.testing.assert_allclose(out["step"], 0.03, rtol=1e-4)
    np.testing.assert_allclose(out["shrink"], 1.0)
    assert out["w"].shape == (1, 2, 2)
    with pytest.raises(ValueError, match="diag or gdpp"):
        theory.learned_algorithm(ModelConfig("full", 1), {}, tokens)

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lintx.metrics import evaluate
from lintx.model import Model, ModelConfig, predict, w_matrix
from lintx import spectral
from lintx.spectral import SpectralConfig, error_polynomial, fit, noiseless_loss, wishart_sample
from lintx.tasks import noise_from_label, sample_batch

U0 = noise_from_label("u0")


def test_error_polynomial_is_the_models_error_sequence_by_sequence():
    cfg = ModelConfig("gdpp", 4)
    w = np.array([[-0.01, -0.03], [-0.05, -0.4], [0.3, -1.2], [-0.1, -0.8]])
    params = {"p": w[:, None, :], "q": np.ones((4, 1, 1))}
    with jax.enable_x64(True):
        b = sample_batch(jax.random.key(3), U0, 300, cfg.d, cfg.n, jnp.float64)
        err = np.asarray(predict(cfg, {k: jnp.asarray(v) for k, v in params.items()}, b.tokens)[-1] - b.y_query)
        tokens = np.asarray(b.tokens)
        X, y, xq = tokens[:, : cfg.n, : cfg.d], tokens[:, : cfg.n, -1], tokens[:, cfg.n, : cfg.d]
        lam, U = np.linalg.eigh(np.einsum("bji,bjk->bik", X, X))
        w_task = np.stack([np.linalg.lstsq(X[i], y[i], rcond=None)[0] for i in range(len(X))])
        g = np.asarray(error_polynomial(jnp.asarray(w), jnp.asarray(lam)))
    spectral = np.einsum("bi,bji,bj,bki,bk->b", g, U, w_task, U, xq)
    np.testing.assert_allclose(spectral, err, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(w_matrix(cfg, params)[:, :, 0], w)  # (w_xx, w_yx) as the model reads them


def test_importance_weights_estimate_expectations_under_the_task_distribution():
    with jax.enable_x64(True):
        lam, weights = wishart_sample(jax.random.key(0), 50_000, (0.6, 1.0, 1.8))
        assert lam.shape == (150_000, 10) and lam.dtype == jnp.float64
        assert float(jnp.sum(weights)) == pytest.approx(1.0, rel=0.02)
        # E[tr Sigma] = n d = 200 and E[tr Sigma^2] = n d (n + d + 1) = 6200 for standard normal X (20 x 10)
        assert float(jnp.sum(weights * jnp.sum(lam, -1))) == pytest.approx(200.0, rel=0.02)
        assert float(jnp.sum(weights * jnp.sum(lam**2, -1))) == pytest.approx(6200.0, rel=0.03)


def test_fit_trains_a_noiseless_gdpp_model_that_holds_on_fresh_sequences():
    cfg = ModelConfig("gdpp", 2)
    sc = SpectralConfig(per_scale=50_000, scales=(1.0, 1.5), starts=2, steps=60, rounds=1)
    result = fit(cfg, U0, sc, seed=0)
    assert not result.diverged[0] and result.loss_history.shape == (1, 2)  # best loss at depth 1, 2
    params = {k: v[0] for k, v in result.params.items()}
    held_out = float(np.asarray(evaluate(Model(cfg, params), U0, jax.random.key(9), 20_000)["loss"])[-1])
    assert held_out == pytest.approx(result.final_loss[0], rel=0.1)
    assert held_out < 0.4  # paper, GD++ 2 layers at sigma_max = 0: 0.341; the zero predictor: 5
    spectral._grown.cache_clear(), spectral._sample.cache_clear()  # fitted afresh, not recalled
    again = fit(cfg, U0, sc, seed=0)
    np.testing.assert_array_equal(again.params["p"], result.params["p"])
    with jax.enable_x64(True):
        lam, weights = wishart_sample(jax.random.key(1), 50_000)
        w = jnp.asarray(np.asarray(params["p"])[:, 0, :], jnp.float64)
        # a plain sample of 50,000 matrices, no importance weights: heavy-tailed (the lambda ~ -1/w_xx spike)
        assert float(noiseless_loss(w, lam, weights)) == pytest.approx(held_out, rel=0.2)


def test_fit_refuses_what_it_cannot_train():
    sc = SpectralConfig(per_scale=50_000, starts=1, steps=1, rounds=1)
    with pytest.raises(ValueError, match="single-head GD\\+\\+"):
        fit(ModelConfig("diag", 2), U0, sc, 0)
    with pytest.raises(ValueError, match="noiseless"):
        fit(ModelConfig("gdpp", 2), noise_from_label("u1"), sc, 0)
    with pytest.raises(ValueError, match="per_scale"):
        SpectralConfig(per_scale=1000)
    with pytest.raises(ValueError, match="starts"):
        SpectralConfig(starts=0)
    with pytest.raises(ValueError, match="include 1.0"):
        SpectralConfig(scales=(0.5, 2.0))
    with pytest.raises(TypeError):
        SpectralConfig(step=3)

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lintx.tasks import Categorical, Fixed, Uniform, noise_from_json, noise_from_label, sample_batch


def test_shapes_and_query_token(key):
    b = sample_batch(key, Uniform(3.0), 64, d=5, n=8)
    assert b.tokens.shape == (64, 9, 6) and b.y_query.shape == (64,) and b.sigma.shape == (64,)
    assert jnp.all(b.tokens[:, -1, -1] == 0), "the query token's label must be 0"
    x_t = b.tokens[:, -1, :-1]
    np.testing.assert_allclose(jnp.einsum("bd,bd->b", x_t, b.w), b.y_query, rtol=1e-5, atol=1e-5)


def test_context_labels_are_noisy_linear(key):
    b = sample_batch(key, Fixed(2.0), 4000, d=3, n=20)
    resid = b.tokens[:, :-1, -1] - jnp.einsum("bnd,bd->bn", b.tokens[:, :-1, :-1], b.w)
    assert abs(float(jnp.std(resid)) - 2.0) < 0.05


def test_stateless(key):
    a, b = sample_batch(key, Uniform(5), 16), sample_batch(key, Uniform(5), 16)
    c = sample_batch(jax.random.fold_in(key, 1), Uniform(5), 16)
    assert jnp.array_equal(a.tokens, b.tokens)
    assert not jnp.array_equal(a.tokens, c.tokens)


def test_noise_distributions(key):
    s = Uniform(4.0).sample(key, 10000)
    assert float(s.min()) >= 0 and float(s.max()) <= 4 and abs(float(s.mean()) - 2) < 0.1
    c = Categorical((1, 3, 5)).sample(key, 3000)
    assert set(np.unique(np.asarray(c)).tolist()) == {1.0, 3.0, 5.0}
    assert jnp.all(Fixed(2.5).sample(key, 7) == 2.5)
    assert Uniform(6).mean_sigma2 == pytest.approx(12) and Categorical([1, 3]).mean_sigma2 == pytest.approx(5)


@pytest.mark.parametrize("noise", [Uniform(5), Categorical([1, 3, 5]), Fixed(0.5)])
def test_json_and_labels_round_trip(noise):
    assert noise_from_json(noise.to_json()) == noise
    assert noise_from_label(noise.label) == noise


@pytest.mark.parametrize(
    "make, error, words",
    [
        (lambda: Uniform(-1), ValueError, "sigma_max"),
        (lambda: Uniform(float("nan")), ValueError, "sigma_max"),
        (lambda: Uniform("3"), TypeError, "sigma_max"),
        (lambda: Uniform(True), TypeError, "sigma_max"),
        (lambda: Fixed(-0.1), ValueError, "sigma"),
        (lambda: Categorical([]), ValueError, "empty"),
        (lambda: Categorical("13"), TypeError, "sequence"),
        (lambda: Categorical([1, -3]), ValueError, ">= 0"),
        (lambda: noise_from_json({"kind": "gaussian", "sigma": 1}), ValueError, "unknown noise kind"),
        (lambda: noise_from_json({"kind": "uniform", "sigma": 1}), ValueError, "sigma_max"),
        (lambda: noise_from_label("x5"), ValueError, "noise label"),
    ],
)
def test_bad_noise_is_a_clear_error(make, error, words):
    with pytest.raises(error, match=words):
        make()

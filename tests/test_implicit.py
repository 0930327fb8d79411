import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lintx.implicit import implicit_model, implicit_tokens
from lintx.model import ModelConfig, to_full, trajectory
from lintx.tasks import Uniform, sample_batch

D, N = 6, 12


def rel_gap(a, b):
    return float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)))


@pytest.mark.parametrize("heads", [1, 2, 3])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lemma_4_3_full_random_weights(heads, seed):
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    L = 3
    scale = 0.5 / np.sqrt(heads * N * (D + 1))
    P = scale * jax.random.normal(k1, (L, heads, D + 1, D + 1))
    Q = scale * jax.random.normal(k2, (L, heads, D + 1, D + 1))
    tokens = sample_batch(k3, Uniform(2), 4, D, N).tokens
    cfg = ModelConfig("full", L, heads=heads, d=D, n=N)
    traj = trajectory(cfg, {"P": P, "Q": Q}, tokens)
    im = implicit_model(P, Q, tokens)
    assert im.M.shape == (L + 1, 4, D, D) and im.w.shape == (L + 1, 4, D)
    assert rel_gap(implicit_tokens(im, tokens), traj) < 1e-4
    # the prediction after layer l is <w^l, x_t>
    x_t = tokens[:, -1, :-1]
    np.testing.assert_allclose(jnp.einsum("lbi,bi->lb", im.w[1:], x_t), -traj[1:, :, -1, -1], rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("heads", [1, 2, 3])
@pytest.mark.parametrize("seed", [0, 1])
def test_lemma_4_3_diag_weights(heads, seed):
    k1, k2, k3 = jax.random.split(jax.random.key(7 + seed), 3)
    cfg = ModelConfig("diag", 4, heads=heads, d=D, n=N)
    params = {"p": jax.random.normal(k1, (4, heads, 2)), "q": 0.3 / N * jax.random.normal(k2, (4, heads, 2))}
    tokens = sample_batch(k3, Uniform(1), 3, D, N).tokens
    P, Q = to_full(cfg, params)
    im = implicit_model(P, Q, tokens)
    assert rel_gap(implicit_tokens(im, tokens), trajectory(cfg, params, tokens)) < 1e-4


def test_zero_weights_are_identity():
    P = Q = jnp.zeros((2, 1, D + 1, D + 1))
    tokens = sample_batch(jax.random.key(0), Uniform(1), 2, D, N).tokens
    im = implicit_model(P, Q, tokens)
    assert jnp.all(im.M == jnp.eye(D)) and jnp.all(im.a == 1) and jnp.all(im.w == 0) and jnp.all(im.u == 0)

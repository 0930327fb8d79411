import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lintx.model import Model, ModelConfig, from_full, predict, to_full, trajectory, w_matrix
from lintx.tasks import Uniform, sample_batch

D, N = 4, 7


def random_params(key, cfg, scale=0.3):
    shapes = cfg.param_shapes()
    keys = jax.random.split(key, len(shapes))
    out = {}
    for k, name in zip(keys, sorted(shapes)):
        s = scale / (cfg.n if name.lower() == "q" else 1)
        out[name] = s * jax.random.normal(k, shapes[name])
    return out


@pytest.fixture
def tokens(key):
    return sample_batch(jax.random.fold_in(key, 99), Uniform(2), 5, D, N).tokens


def reference_layer(P, Q, e, n):
    """Eq. 2-3 written literally, token by token."""
    e = np.asarray(e, np.float64)
    out = e.copy()
    for i in range(e.shape[0]):
        for h in range(P.shape[0]):
            out[i] += P[h] @ sum(np.outer(e[j], e[j]) for j in range(n)) @ Q[h] @ e[i]
    return out


def test_full_matches_equation_2_3(key, tokens):
    cfg = ModelConfig("full", 2, heads=2, d=D, n=N)
    params = random_params(key, cfg)
    traj = trajectory(cfg, params, tokens)
    P, Q = np.asarray(params["P"], np.float64), np.asarray(params["Q"], np.float64)
    for b in range(tokens.shape[0]):
        e = np.asarray(tokens[b])
        for l in range(2):
            e = reference_layer(P[l], Q[l], e, N)
            np.testing.assert_allclose(traj[l + 1, b], e, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(predict(cfg, params, tokens), -traj[1:, :, -1, -1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("variant, heads", [("full", 1), ("full", 2), ("diag", 1), ("diag", 3), ("gdpp", 1)])
def test_predict_through_statistics_equals_the_token_forward_pass(key, tokens, variant, heads):
    """predict() propagates C_l = T C T^T instead of the tokens; it must read the same query label."""
    cfg = ModelConfig(variant, 4, heads=heads, d=D, n=N)
    params = random_params(key, cfg)
    via_tokens = -trajectory(cfg, params, tokens)[1:, :, -1, -1]
    np.testing.assert_allclose(predict(cfg, params, tokens), via_tokens, rtol=1e-4, atol=1e-5)
    assert not np.allclose(via_tokens[0], via_tokens[-1])  # the layers do something


def test_diag_is_full_restricted_to_diagonal(key, tokens):
    cfg = ModelConfig("diag", 3, d=D, n=N)
    params = random_params(key, cfg)
    P, Q = to_full(cfg, params)
    full = ModelConfig("full", 3, d=D, n=N)
    np.testing.assert_allclose(trajectory(cfg, params, tokens), trajectory(full, {"P": P, "Q": Q}, tokens), rtol=1e-5, atol=1e-6)


def test_diag_layer_is_equation_10(key, tokens):
    cfg = ModelConfig("diag", 1, heads=2, d=D, n=N)
    params = random_params(key, cfg)
    (wxx, wxy), (wyx, wyy) = w_matrix(cfg, params)[0]
    e = tokens[0]
    x, y = e[:, :-1], e[:, -1]
    Sigma, alpha, lam = x[:N].T @ x[:N], x[:N].T @ y[:N], y[:N] @ y[:N]
    x1 = x + wxx * x @ Sigma.T + wxy * y[:, None] * alpha
    y1 = y + wyx * x @ alpha + wyy * lam * y
    out = trajectory(cfg, params, e)[1]
    np.testing.assert_allclose(out[:, :-1], x1, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out[:, -1], y1, rtol=1e-5, atol=1e-5)


def test_gdpp_is_diag_with_zero_q_y(key, tokens):
    cfg = ModelConfig("gdpp", 2, d=D, n=N)
    params = random_params(key, cfg)
    diag = ModelConfig("diag", 2, d=D, n=N)
    dparams = {"p": params["p"], "q": jnp.concatenate([params["q"], jnp.zeros_like(params["q"])], -1)}
    np.testing.assert_allclose(trajectory(cfg, params, tokens), trajectory(diag, dparams, tokens))
    w = w_matrix(cfg, params)
    assert np.all(w[:, 0, 1] == 0) and np.all(w[:, 1, 1] == 0), "GD++ has w_xy = w_yy = 0 (Eq. 11)"


@pytest.mark.parametrize("variant", ["full", "diag", "gdpp"])
def test_heads_sum(key, tokens, variant):
    cfg = ModelConfig(variant, 1, heads=3, d=D, n=N)
    params = random_params(key, cfg)
    one = ModelConfig(variant, 1, heads=1, d=D, n=N)
    update = trajectory(cfg, params, tokens)[1] - tokens
    parts = sum(trajectory(one, {k: v[:, h : h + 1] for k, v in params.items()}, tokens)[1] - tokens for h in range(3))
    np.testing.assert_allclose(update, parts, rtol=1e-4, atol=1e-5)


def test_attention_ignores_the_query(key, tokens):
    cfg = ModelConfig("full", 2, d=D, n=N)
    params = random_params(key, cfg)
    moved = tokens.at[:, -1, :-1].add(3.0)
    a, b = trajectory(cfg, params, tokens), trajectory(cfg, params, moved)
    np.testing.assert_allclose(a[:, :, :N], b[:, :, :N], rtol=1e-6)
    assert not np.allclose(a[-1, :, N], b[-1, :, N])


@pytest.mark.parametrize("variant", ["full", "diag", "gdpp"])
def test_full_export_round_trip(key, variant):
    cfg = ModelConfig(variant, 2, heads=2, d=D, n=N)
    params = random_params(key, cfg)
    back = from_full(cfg, *to_full(cfg, params))
    for k in params:
        np.testing.assert_allclose(back[k], params[k])
    if variant != "full":
        P, Q = to_full(cfg, params)
        with pytest.raises(ValueError, match="form"):
            from_full(cfg, P.at[0, 0, 0, 1].set(1.0), Q)


def test_model_is_a_pytree_predictor(key, tokens):
    cfg = ModelConfig("diag", 2, d=D, n=N)
    m = Model(cfg, random_params(key, cfg))
    leaves = jax.tree_util.tree_leaves(m)
    assert len(leaves) == 2
    np.testing.assert_allclose(jax.jit(lambda m, t: m(t))(m, tokens), predict(cfg, m.params, tokens), rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        (dict(variant="diagonal", layers=2), ValueError, "unknown model variant 'diagonal'"),
        (dict(variant="full", layers=0), ValueError, "layers must be an integer >= 1"),
        (dict(variant="full", layers=2.0), TypeError, "layers must be an integer"),
        (dict(variant="diag", layers=2, heads=0), ValueError, "heads"),
    ],
)
def test_bad_config_is_a_clear_error(kwargs, error, words):
    with pytest.raises(error, match=words):
        ModelConfig(**kwargs)


def test_config_is_locked():
    cfg = ModelConfig("diag", 2)
    with pytest.raises(TypeError):
        ModelConfig("diag", 2, layer=3)
    with pytest.raises(Exception):
        cfg.layers = 3


def test_wrong_token_shape(key):
    cfg = ModelConfig("diag", 1)
    with pytest.raises(ValueError, match="tokens must end in shape"):
        trajectory(cfg, random_params(key, cfg), jnp.zeros((3, 5, 5)))

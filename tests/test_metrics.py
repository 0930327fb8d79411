import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lintx.metrics import EVAL_CHUNK, evaluate, evaluate_many, loss, variance_profile
from lintx.model import Model, ModelConfig
from lintx.ridge import ConstRR, oracle_predict
from lintx.tasks import Fixed, Uniform, sample_batch


def zero_model(layers=2):
    cfg = ModelConfig("diag", layers)
    return Model(cfg, {k: jnp.zeros(s) for k, s in cfg.param_shapes().items()})


def test_loss_is_half_mse():
    assert float(loss(jnp.array([1.0, 3.0]), jnp.array([0.0, 0.0]))) == pytest.approx(2.5)


def test_zero_model_loss_is_half_signal_variance(key):
    r = evaluate(zero_model(), Uniform(1), key, 20_000)
    assert r["loss"].shape == (2,)  # one value per layer
    np.testing.assert_allclose(r["loss"], 5.0, rtol=0.03)  # 1/2 E[<w, x_t>^2] = d/2
    np.testing.assert_allclose(r["adjusted_loss"], r["loss"] - r["oracle_loss"])


def test_oracle_has_zero_adjusted_loss(key):
    # ridge with s2 = sigma^2 at fixed sigma is the oracle itself
    r = evaluate(ConstRR(4.0), Fixed(2.0), key, 5000)
    assert abs(float(r["adjusted_loss"])) < 1e-6


def test_evaluation_set_is_the_same_prefix(key):
    """The first EVAL_CHUNK sequences do not depend on how many are asked for."""
    b = sample_batch(jax.random.fold_in(key, 0), Uniform(2), EVAL_CHUNK)
    direct = 0.5 * np.mean(np.asarray(oracle_predict(b.tokens, b.sigma) - b.y_query, np.float64) ** 2)
    r = evaluate(ConstRR(1.0), Uniform(2), key, EVAL_CHUNK)
    assert float(r["oracle_loss"]) == pytest.approx(direct, rel=1e-5)
    part = evaluate(ConstRR(1.0), Uniform(2), key, 2 * EVAL_CHUNK + 5)
    assert float(part["oracle_loss"]) != pytest.approx(direct, rel=1e-9)  # more sequences, other mean


def test_variance_profile_shape_and_monotone_baseline(key):
    prof = variance_profile(ConstRR(0.0), [0.0, 1.0, 2.0], key, 2000)
    assert prof.shape == (3,)
    assert prof[0] == pytest.approx(0.0, abs=1e-6) and prof[1] < prof[2]
    assert variance_profile(zero_model(3), [0.5, 1.5], key, 2000).shape == (2, 3)


@pytest.mark.parametrize("num", [0, -5, 2.5, True])
def test_bad_evaluation_size(key, num):
    with pytest.raises(ValueError, match="positive integer"):
        evaluate(ConstRR(1.0), Uniform(1), key, num)


def test_profile_traces_sigma_and_equals_fixed_noise_evaluation(key):
    """profile() compiles once for all sigmas; it must give exactly evaluate() with Fixed(sigma) noise."""
    from lintx.metrics import profile
    from lintx.tasks import Fixed

    m = zero_model(2)
    prof = profile(m, [0.5, 2.0], key, 3000)
    for i, s in enumerate([0.5, 2.0]):
        direct = evaluate(m, Fixed(s), key, 3000)
        for name in ("loss", "oracle_loss", "adjusted_loss"):
            np.testing.assert_allclose(prof[name][i], direct[name], rtol=1e-6)
    with pytest.raises(ValueError, match="sigma must be a finite number >= 0, got -1.0"):
        profile(m, [-1.0], key, 100)


def test_one_compile_per_predictor_structure(key):
    """Sampling, predictor and oracle are compiled apart: two checkpoints of one variant and depth, on two
    noise settings, share the predictor's compile (one per checkpoint and noise cost 2 s each before)."""
    from lintx import metrics

    cfg = ModelConfig("gdpp", 3)
    models = [Model(cfg, {k: jnp.full(s, c) for k, s in cfg.param_shapes().items()}) for c in (0.01, 0.02)]
    evaluate(models[0], Uniform(1.5), key, 100)  # compiles for this structure (and the oracle) if needed
    before = metrics._half_sq_errors._cache_size(), metrics._oracle_half_sq_errors._cache_size()
    evaluate(models[1], Uniform(2.5), key, 100)
    evaluate(models[0], Fixed(0.5), key, 100)
    assert (metrics._half_sq_errors._cache_size(), metrics._oracle_half_sq_errors._cache_size()) == before


def test_set_smaller_than_a_chunk_is_one_draw_of_that_size(key):
    """num < EVAL_CHUNK draws num sequences (reduced-fidelity profiles cost num, not a whole chunk)."""
    b = sample_batch(jax.random.fold_in(key, 0), Uniform(2), 2000)
    direct = 0.5 * np.mean(np.asarray(oracle_predict(b.tokens, b.sigma) - b.y_query, np.float64) ** 2)
    assert float(evaluate(ConstRR(1.0), Uniform(2), key, 2000)["oracle_loss"]) == pytest.approx(direct, rel=1e-5)


def test_evaluating_many_on_one_set_gives_each_its_own_numbers(key):
    """One draw of the set for several predictors (other depths, a baseline), across a cut last chunk:
    every statistic equals evaluating each alone, bit for bit."""
    cfg = ModelConfig("full", 2)
    full = Model(cfg, {k: 0.05 * jax.random.normal(jax.random.fold_in(key, i), s) for i, (k, s) in enumerate(cfg.param_shapes().items())})
    predictors, num = [zero_model(1), full, ConstRR(1.0), zero_model(3)], EVAL_CHUNK + 5
    together = evaluate_many(predictors, Uniform(2), key, num)
    for p, r in zip(predictors, together):
        alone = evaluate(p, Uniform(2), key, num)
        assert r.keys() == alone.keys()
        for k in r:
            np.testing.assert_array_equal(r[k], alone[k], err_msg=k)

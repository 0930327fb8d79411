import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lintx.metrics import evaluate
from lintx.reference import paper_table1
from lintx.ridge import AdaRR, adarr_defined, adarr_variance, ridge_predict, ridge_weights, spd_solve, tune_baselines, tune_tunedrr
from lintx.tasks import Fixed, Uniform, noise_from_label, sample_batch


def test_spd_solve_matches_numpy(key):
    A = jax.random.normal(key, (50, 7, 12))
    S = A @ jnp.swapaxes(A, -1, -2) + 0.1 * jnp.eye(7)
    b = jax.random.normal(jax.random.fold_in(key, 1), (50, 7))
    expected = np.linalg.solve(np.asarray(S, np.float64), np.asarray(b, np.float64)[..., None])[..., 0]
    np.testing.assert_allclose(spd_solve(S, b), expected, rtol=2e-3, atol=1e-4)


def test_ridge_is_equation_5(key):
    b = sample_batch(key, Uniform(2), 20)
    X, y = np.asarray(b.tokens[:, :-1, :-1], np.float64), np.asarray(b.tokens[:, :-1, -1], np.float64)
    for i in range(3):
        w = np.linalg.solve(X[i].T @ X[i] + 0.7 * np.eye(10), X[i].T @ y[i])
        np.testing.assert_allclose(ridge_weights(b.tokens[i], 0.7), w, rtol=1e-3, atol=1e-4)


def test_ols_is_exact_without_noise(key):
    b = sample_batch(key, Fixed(0.0), 100)
    np.testing.assert_allclose(ridge_predict(b.tokens, 0.0), b.y_query, rtol=1e-3, atol=1e-3)


def test_adarr_variance_is_unbiased(key):
    b = sample_batch(key, Fixed(1.5), 20000)
    assert float(jnp.mean(adarr_variance(b.tokens))) == pytest.approx(2.25, rel=0.03)


def test_adarr_needs_more_examples_than_features(key):
    b = sample_batch(key, Fixed(1.0), 4, d=10, n=10)
    with pytest.raises(ValueError, match="n > d"):
        adarr_variance(b.tokens)
    with pytest.raises(ValueError, match="n > d"):
        tune_tunedrr(Fixed(1.0), key, 100, d=10, n=8)
    assert not adarr_defined(10, 10) and adarr_defined(10, 11)
    assert list(tune_baselines(Fixed(1.0), key, 100, d=10, n=8)) == ["CONSTRR"]  # the two that need n > d are left out


# Table 1 cells of the issue: sigma_max in {1, 3, 5, 7} and {1, 3, 5}. ADARR's squared errors are
# heavy-tailed (a small noise estimate on an ill-conditioned Sigma), so one 100,000-sequence evaluation,
# the paper's protocol, spreads by about 5% (measured: std 0.0035 at sigma_max = 5 over five sets). The
# paper's value is one such draw. So we estimate the expected value on 300,000 sequences and accept the
# paper's 5% band widened by its rounding to three decimals and by two standard errors of a
# 100,000-sequence evaluation (computed from our per-sequence spread, not typed in).
COLUMNS = ["u1", "u3", "u5", "u7", "c135"]
EVAL_NUM = 300_000
TUNE_NUM = 30_000
ROUNDING = 0.0005


# One worker computes this (110 s) for the whole group: `make test` runs `--dist loadgroup`, which needs
# pytest 9.1 (with 9.2 xdist 3.8 stops grouping and both workers computed it; README, Dependencies).
@pytest.fixture(scope="session")
def baseline_losses():
    out = {}
    for label in COLUMNS:
        noise = noise_from_label(label)
        baselines = tune_baselines(noise, jax.random.key(1), TUNE_NUM)  # tuning sequences: key 1
        out[label] = {}
        for k, v in baselines.items():
            r = evaluate(v, noise, jax.random.key(2), EVAL_NUM)
            out[label][k] = float(r["adjusted_loss"])
            out[label][k + "_se100k"] = float(r["adjusted_stderr"]) * np.sqrt(EVAL_NUM / 100_000)
    return out


@pytest.mark.slow
@pytest.mark.xdist_group("baseline_losses")  # one worker computes the module fixture once
@pytest.mark.parametrize("label", COLUMNS)
@pytest.mark.parametrize("method", ["CONSTRR", "ADARR"])
def test_baseline_matches_table_1(baseline_losses, label, method):
    paper = paper_table1()[(method, None)][label]
    ours = baseline_losses[label][method]
    tol = 0.05 * paper + ROUNDING + 2 * baseline_losses[label][method + "_se100k"]
    assert abs(ours - paper) <= tol, f"{method} {label}: ours {ours:.4f}, paper {paper}, tolerance {tol:.4f}"


@pytest.mark.slow
@pytest.mark.xdist_group("baseline_losses")
@pytest.mark.parametrize("label", COLUMNS)
def test_tunedrr_no_worse_than_table_1(baseline_losses, label):
    paper = paper_table1()[("TUNEDRR", None)][label]
    ours = baseline_losses[label]["TUNEDRR"]
    tol = 0.10 * paper + ROUNDING + 2 * baseline_losses[label]["TUNEDRR_se100k"]
    assert ours <= paper + tol, f"TUNEDRR {label}: ours {ours:.4f}, paper {paper}, tolerance {tol:.4f}"
    assert ours <= baseline_losses[label]["ADARR"], "tuning must not make TUNEDRR worse than ADARR"

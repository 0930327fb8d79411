import dataclasses
import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lintx.checkpoint import DivergedError, from_training
from lintx.metrics import evaluate
from lintx.model import Model, ModelConfig, w_matrix
from lintx.recipe import TrainConfig
from lintx.tasks import Uniform
from lintx.train import train, unstack

D, N = 10, 20


@pytest.fixture(scope="module")
def one_layer_noiseless():
    cfg, noise = ModelConfig("diag", 1, d=D, n=N), Uniform(0.0)
    result = train(cfg, noise, TrainConfig(steps=400, batch=2048, lr=3e-2), seeds=(0,))
    return cfg, noise, result


def test_one_layer_diag_reaches_the_closed_form(one_layer_noiseless):
    """Sec. 6 sanity check: one gradient step with the optimal step size 1/(n+d+1) has adjusted loss
    d(d+1)/(2(n+d+1)) at sigma = 0 (E[Sigma^2] = n(n+d+1) I for Wishart Sigma)."""
    cfg, noise, result = one_layer_noiseless
    assert not result.diverged[0]
    params = unstack(result, 0)
    adjusted = evaluate(Model(cfg, params), noise, jax.random.key(2024), 100_000)["adjusted_loss"][-1]
    closed_form = D * (D + 1) / (2 * (N + D + 1))
    assert abs(adjusted - closed_form) <= 0.02 * closed_form, f"{adjusted:.4f} vs {closed_form:.4f}"
    w_yx = w_matrix(cfg, params)[0, 1, 0]  # the only weight a 1-layer model's prediction depends on
    assert abs(abs(w_yx) - 1 / (N + D + 1)) <= 0.02 / (N + D + 1), f"w_yx = {w_yx}"


def test_seeds_are_reproducible_and_distinct():
    cfg, noise, tc = ModelConfig("gdpp", 2), Uniform(1.0), TrainConfig(steps=30, batch=64, chunk=10)
    a = train(cfg, noise, tc, seeds=(3, 4))
    b = train(cfg, noise, tc, seeds=(3, 4))
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
        assert not np.allclose(a.params[k][0], a.params[k][1])
    assert a.loss_history.shape == (2, 3)


def test_callback_reports_progress():
    seen = []
    train(ModelConfig("diag", 1), Uniform(1.0), TrainConfig(steps=25, batch=32, chunk=10), seeds=(0,), callback=lambda s, l: seen.append((s, l.shape)))
    assert seen == [(10, (1,)), (20, (1,)), (25, (1,))]


def test_divergence_is_detected_and_not_saved():
    cfg, noise = ModelConfig("full", 3), Uniform(5.0)
    tc = TrainConfig(steps=50, batch=256, lr=10.0, clip=0.0, normalise=False, schedule="constant", chunk=25)
    result = train(cfg, noise, tc, seeds=(0,))
    assert result.diverged[0]
    with pytest.raises(DivergedError, match="diverged"):
        from_training(cfg, noise, tc, result, 0)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(steps=0), "steps"),
        (dict(lr=-1e-3), "lr"),
        (dict(lr="1e-3"), "lr"),
        (dict(schedule="linear"), "schedule"),
        (dict(dtype="float16"), "dtype"),
    ],
)
def test_bad_train_config(kwargs, words):
    with pytest.raises(ValueError, match=words):
        TrainConfig(**kwargs)


def test_train_config_is_locked():
    with pytest.raises(TypeError):
        TrainConfig(step=10)
    with pytest.raises(TypeError):
        dataclasses.replace(TrainConfig(), learning_rate=1.0)


def test_float64_needs_x64():
    if jax.config.jax_enable_x64:
        pytest.skip("x64 enabled in this session")
    with pytest.raises(ValueError, match="JAX_ENABLE_X64"):
        train(ModelConfig("diag", 1), Uniform(1.0), TrainConfig(steps=1, dtype="float64"))


def test_bad_seeds():
    with pytest.raises(ValueError, match="seeds"):
        train(ModelConfig("diag", 1), Uniform(1.0), TrainConfig(steps=1), seeds=(1, 1))


def test_grow_keeps_the_trained_layers_and_starts_near_the_shallow_model():
    from lintx.model import predict
    from lintx.tasks import sample_batch
    from lintx.train import grow

    noise = Uniform(1.0)
    tc = TrainConfig(steps=30, batch=64, lr=3e-2)
    shallow = ModelConfig("diag", 2)
    r = train(shallow, noise, tc, seeds=(0,))
    deep = ModelConfig("diag", 3)
    grown = grow(deep, noise, unstack(r, 0), 0, tc)
    for k, v in unstack(r, 0).items():
        np.testing.assert_array_equal(grown[k][:2], v)
        assert grown[k].shape == deep.param_shapes()[k]
    tokens = sample_batch(jax.random.key(3), noise, 256).tokens
    before, after = predict(shallow, unstack(r, 0), tokens)[-1], predict(deep, grown, tokens)[-1]
    assert float(jnp.mean((after - before) ** 2)) < 0.05 * float(jnp.mean(before**2))
    warm = train(deep, noise, tc, seeds=(0,), init=[grown])
    cold = train(deep, noise, tc, seeds=(0,))
    assert warm.loss_history[0, 0] < cold.loss_history[0, 0]  # starts where the shallow model ended
    with pytest.raises(ValueError, match="cannot grow"):
        grow(ModelConfig("diag", 4), noise, unstack(r, 0), 0, tc)


def test_embed_gives_the_same_function_in_a_richer_variant():
    from lintx.model import predict
    from lintx.tasks import sample_batch
    from lintx.train import embed

    noise = Uniform(1.0)
    r = train(ModelConfig("gdpp", 2), noise, TrainConfig(steps=10, batch=32), seeds=(0,))
    tokens = sample_batch(jax.random.key(1), noise, 64).tokens
    ref = predict(ModelConfig("gdpp", 2), unstack(r, 0), tokens)
    for variant in ("diag", "full"):
        cfg = ModelConfig(variant, 2)
        np.testing.assert_allclose(predict(cfg, embed(cfg, ModelConfig("gdpp", 2), unstack(r, 0)), tokens), ref, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="not a special case"):
        embed(ModelConfig("gdpp", 2), ModelConfig("full", 2), {"P": np.zeros((2, 1, 11, 11)), "Q": np.zeros((2, 1, 11, 11))})


WSD = dict(steps=1600, batch=64, lr=1e-2, schedule="wsd", phase=100, cooldown=50, chunk=50, warmup=0.1)


def test_the_wsd_rate_warms_up_holds_and_cools_a_copy_to_zero():
    from lintx.schedule import NEVER, wsd_rate

    tc = TrainConfig(**WSD)
    rate = lambda t, cool: float(wsd_rate(tc, jnp.asarray(t), jnp.asarray(cool, jnp.float32), jnp.asarray(tc.cooldown, jnp.float32)))
    assert rate(4, NEVER) == pytest.approx(5e-3) and rate(9, NEVER) == pytest.approx(1e-2) and rate(500, NEVER) == pytest.approx(1e-2)
    assert rate(300, 300) == pytest.approx(1e-2) and rate(325, 300) == pytest.approx(5e-3) and rate(350, 300) == 0.0


@pytest.mark.parametrize("gains, steps, looks", [
    (False, 150, 1),  # no copy gains: the first copy is kept, after one look
    (True, 2400, 5),  # every copy gains: looks after 100, 200, 400, 800 and 1600 held steps, the last kept
])
def test_wsd_training_lasts_as_long_as_the_rule_says_the_cooled_copies_fall(gains, steps, looks):
    cfg, noise = ModelConfig("diag", 1, d=5, n=10), Uniform(1.0)
    tc = TrainConfig(**WSD)
    seen = []

    def look(params):
        assert all(x.shape[0] == 2 for x in params.values())
        seen.append(params)
        return np.full(2, 10.0 - len(seen))  # each copy looks lower than the last

    result = train(cfg, noise, tc, seeds=(0, 1), look=look, falling=lambda looks: np.full(len(looks), gains))
    assert result.looks.shape == (2, looks) and result.steps.tolist() == [steps, steps]
    assert result.loss_history.shape == (2, (steps // 3 * 2) // tc.chunk)  # held steps: two thirds
    np.testing.assert_array_equal(result.params["p"], seen[-1]["p"])  # the kept copy is the last (and lowest) looked at
    meta = from_training(cfg, noise, tc, result, 1).meta
    assert meta["steps"] == steps and meta["looks"] == [10.0 - k for k in range(1, looks + 1)]
    assert "phase" in tc.to_json() and "phase" not in TrainConfig(steps=10).to_json()  # other schedules keep their JSON


def test_each_seed_keeps_its_lowest_cooled_copy_and_a_seed_the_rule_stops_trains_no_further():
    cfg, noise = ModelConfig("gdpp", 1, d=5, n=10), Uniform(1.0)
    seen = []
    values = iter([[3.0, 4.0], [4.0, 3.0], [2.0], [2.0]])

    def look(params):
        seen.append(params)
        return np.array(next(values))

    def falling(looks):  # each seed: its newest copy 10% below its lowest before
        before = np.min(np.where(np.isnan(looks[:, :-1]), np.inf, looks[:, :-1]), axis=1, initial=np.inf)
        return looks[:, -1] < 0.9 * before

    result = train(cfg, noise, TrainConfig(**WSD), seeds=(0, 1), look=look, falling=falling)
    assert [len(p["p"]) for p in seen] == [2, 2, 1, 1]  # seed 0 stops at its second look and is not trained or looked at again
    np.testing.assert_array_equal(result.looks, [[3.0, 4.0, np.nan, np.nan], [4.0, 3.0, 2.0, 2.0]])
    assert result.steps.tolist() == [150, 600]  # seed 1 keeps the third copy (held 400 steps), not the fourth (no lower)
    np.testing.assert_array_equal(result.params["p"][0], seen[0]["p"][0])
    np.testing.assert_array_equal(result.params["p"][1], seen[2]["p"][0])
    assert np.isfinite(result.loss_history[0, :4]).all() and np.isnan(result.loss_history[0, 4:]).all()  # 200 held steps, in chunks of 50
    assert np.isfinite(result.loss_history[1]).all() and not result.diverged.any()
    with pytest.raises(ValueError, match="look"):
        train(cfg, noise, TrainConfig(**WSD), seeds=(0,))


@pytest.mark.parametrize("restarts", [0, 1])
def test_a_seed_whose_cooled_copy_diverged_starts_again_at_a_lower_rate(restarts, monkeypatch):
    cfg, noise = ModelConfig("gdpp", 1, d=5, n=10), Uniform(1.0)
    tc = TrainConfig(**{**WSD, "steps": 400, "restarts": restarts})
    values = iter([[3.0, 5.0], [2.0, np.nan], [1.5, 2.5]])  # seed 1's second copy diverges
    scales, seen = [], []

    def look(params):
        return np.array(next(values))

    def falling(looks):
        seen.append(looks.copy())
        return np.ones(len(looks), bool)

    module = importlib.import_module("lintx.train")
    chunk = module._train_chunk

    def spy(states, data_keys, cfg, noise, tc, length, cool=None):
        scales.append(np.asarray(cool)[:, 2].tolist())
        return chunk(states, data_keys, cfg, noise, tc, length, cool)

    monkeypatch.setattr(module, "_train_chunk", spy)
    result = train(cfg, noise, tc, seeds=(0, 1), look=look, falling=falling)
    np.testing.assert_array_equal(result.looks, [[3.0, 2.0, 1.5], [5.0, np.nan, 2.5]])  # every look, kept
    assert result.restarts.tolist() == [0, restarts]
    if restarts:  # seed 1 starts again after its second look, at a third of the rate; the rule forgets its looks before
        np.testing.assert_array_equal(seen[-1], [[3.0, 2.0, 1.5], [np.nan, np.nan, 2.5]])
        assert scales[-1] == [1.0, pytest.approx(1 / 3)] and result.steps.tolist() == [600, 400]  # 200 held steps since
    else:
        np.testing.assert_array_equal(seen[-1], result.looks)
        assert scales[-1] == [1.0, 1.0] and result.steps.tolist() == [600, 600]
    assert from_training(cfg, noise, tc, result, 1).meta["restarts"] == restarts
    assert "restarts" in tc.to_json() and "restarts" not in TrainConfig(steps=10).to_json()


@pytest.mark.parametrize("field, value", [("phase", 0), ("phase", 75), ("cooldown", 0), ("steps", 50),
                                          ("restarts", -1), ("restarts", 1.5), ("restart_divisor", 1.0)])
def test_a_bad_wsd_recipe_is_refused_by_name(field, value):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{**WSD, field: value})

"""The second-order refinement (lintx.refine): it lowers the loss on its sample, deterministically, keeps
the variant's form and dtype, and rejects bad input."""

import jax
import numpy as np
import pytest

from lintx.model import ModelConfig, from_full, to_full
from lintx.refine import RefineConfig, refine, refine_sample
from lintx.tasks import Categorical, Uniform
from lintx.train import TrainConfig, train, unstack

CFG, NOISE = ModelConfig("diag", 2), Categorical((1.0, 3.0))
RC = RefineConfig(num=10_000, steps=5)


@pytest.fixture(scope="module")
def trained():
    """A DIAG model with 2 layers after a few Adam steps: far from its minimum."""
    return unstack(train(CFG, NOISE, TrainConfig(steps=30, batch=64, lr=1e-2, chunk=10), seeds=(0,)), 0)


def test_refine_lowers_the_sample_loss_deterministically(trained):
    params, info = refine(CFG, NOISE, trained, 0, RC)
    assert info["loss_after"] < info["loss_before"]
    again, info_again = refine(CFG, NOISE, trained, 0, RC)
    assert info == info_again
    assert all(np.array_equal(params[k], again[k]) for k in params)
    assert all(params[k].dtype == np.asarray(trained[k]).dtype for k in params)
    from_full(CFG, *(np.asarray(m) for m in to_full(CFG, params)))  # still DIAG (Eq. 9), exactly


def test_refine_draws_its_sample_from_the_seed(trained):
    with jax.enable_x64(True):
        a, b = refine_sample(CFG, NOISE, 0, 10_000)[1], refine_sample(CFG, NOISE, 1, 10_000)[1]
        assert a.dtype == np.float64 and a.shape == (1, 10_000)
        assert not np.allclose(a, b)
    p0, _ = refine(CFG, NOISE, trained, 0, RC)
    p1, _ = refine(CFG, NOISE, trained, 1, RC)
    assert not all(np.array_equal(p0[k], p1[k]) for k in p0)


@pytest.mark.parametrize("kwargs, error", [
    ({"num": 15_000}, "multiple of 10000"), ({"num": 0}, "positive integer"), ({"steps": True}, "positive integer"),
    ({"memory": 2.5}, "positive integer"), ({"step": 0.0}, "step must be"), ({"step": float("inf")}, "step must be"),
])
def test_refine_config_rejects_bad_values(kwargs, error):
    with pytest.raises(ValueError, match=error):
        RefineConfig(**kwargs)


def test_refine_config_is_locked_and_refine_checks_its_input(trained):
    with pytest.raises(TypeError):
        RefineConfig(iters=10)  # a mistyped field is an error
    with pytest.raises(TypeError, match="RefineConfig"):
        refine(CFG, NOISE, trained, 0, {"num": 10_000})
    with pytest.raises(ValueError, match="parameter p has shape"):
        refine(ModelConfig("diag", 3), Uniform(1.0), trained, 0, RC)
    with pytest.raises(ValueError, match="seed"):
        refine(CFG, NOISE, trained, -1, RC)

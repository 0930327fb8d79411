"""The method (lintx.method): one plan for every model, a function of the architecture and the budget only."""

import dataclasses

import pytest

from lintx import method
from lintx.model import ModelConfig
from lintx.tasks import Categorical, Fixed, Uniform


NOISES = (Uniform(0.0), Uniform(4.5), Categorical((2.0, 4.0)), Fixed(1.0))


def test_the_recipe_depends_on_the_architecture_only_never_on_the_noise_or_the_depth():
    budget = method.Budget(steps=300, batch=128, lr=5e-3)
    for v, d, scale in (("gdpp", 10, 1), ("diag", 10, 1), ("diag", 5, 1), ("full", 10, 2), ("full", 5, 1)):
        recipes = {method.recipe(budget, ModelConfig(v, L, d=d, n=2 * d), noise) for L in (1, 4, 8) for noise in NOISES}
        assert len(recipes) == 1
        tc = recipes.pop()
        assert (tc.steps, tc.batch, tc.lr, tc.warmup, tc.b2, tc.init_std) == (300, 128 * scale, 5e-3, budget.warmup, budget.b2, budget.init_std)


def test_a_model_grows_from_its_shallower_version_and_embeds_the_variant_it_contains():
    for v in ("gdpp", "diag", "full"):
        assert method.grown_from(ModelConfig(v, 1), Uniform(1.0)) is None
        assert method.grown_from(ModelConfig(v, 5, d=5, n=10), Uniform(1.0)) == ModelConfig(v, 4, d=5, n=10)
    assert method.embedded_from(ModelConfig("full", 3)) == ModelConfig("diag", 3)
    assert method.embedded_from(ModelConfig("diag", 3, heads=2)) == ModelConfig("gdpp", 3, heads=2)
    assert method.embedded_from(ModelConfig("gdpp", 3)) is None


@pytest.mark.parametrize("field, value", [("steps", 0), ("batch", 2.5), ("lr", -1.0), ("b2", 1.0), ("chunk", True)])
def test_a_bad_budget_is_refused_by_name(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(method.Budget(), **{field: value})


def test_every_model_has_the_budgets_random_starts_and_one_where_it_has_no_warm_start():
    budget = method.Budget(random_starts=0)
    assert method.random_starts(budget, ModelConfig("gdpp", 1), Uniform(1.0)) == 1
    assert all(method.random_starts(budget, ModelConfig(v, L), Uniform(1.0)) == 0 for v, L in (("gdpp", 2), ("diag", 1), ("full", 5)))
    budget = method.Budget(random_starts=2)
    assert {method.random_starts(budget, ModelConfig(v, L), n) for v in ("gdpp", "diag", "full") for L in (1, 4) for n in NOISES} == {2}

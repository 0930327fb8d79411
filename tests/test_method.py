"""The method (lintx.method): one plan for every model, a function of the architecture and the budget only."""

import dataclasses

import numpy as np
import pytest

from lintx import method
from lintx.model import ModelConfig
from lintx.schedule import look_steps
from lintx.tasks import Categorical, Fixed, Uniform


NOISES = (Uniform(0.0), Uniform(4.5), Categorical((2.0, 4.0)), Fixed(1.0))


def test_the_recipe_depends_on_the_architecture_only_never_on_the_noise_or_the_depth():
    budget = method.Budget(steps=300, batch=128, lr=5e-3)
    for v, d, scale in (("gdpp", 10, 1), ("diag", 10, 1), ("diag", 5, 1), ("full", 10, 2), ("full", 5, 1)):
        recipes = {method.recipe(budget, ModelConfig(v, L, d=d, n=2 * d), noise) for L in (1, 4, 8) for noise in NOISES}
        assert len(recipes) == 1
        tc = recipes.pop()
        assert (tc.steps, tc.batch, tc.lr, tc.warmup, tc.b2, tc.init_std) == (300, 128 * scale, 5e-3, budget.warmup, budget.b2, budget.init_std)
    shipped = method.get_profile(method.DEFAULT).budget  # the wsd rule: its looks and restarts alike for every noise and depth
    for v in ("gdpp", "diag", "full"):
        assert len({method.recipe(shipped, ModelConfig(v, L), noise) for L in (1, 4, 8) for noise in NOISES}) == 1


def test_a_model_grows_from_its_shallower_version_and_embeds_the_variant_it_contains():
    for v in ("gdpp", "diag", "full"):
        assert method.grown_from(ModelConfig(v, 1), Uniform(1.0)) is None
        assert method.grown_from(ModelConfig(v, 5, d=5, n=10), Uniform(1.0)) == ModelConfig(v, 4, d=5, n=10)
    assert method.embedded_from(ModelConfig("full", 3)) == ModelConfig("diag", 3)
    assert method.embedded_from(ModelConfig("diag", 3, heads=2)) == ModelConfig("gdpp", 3, heads=2)
    assert method.embedded_from(ModelConfig("gdpp", 3)) is None


def test_a_warm_started_model_trains_at_the_warm_learning_rate_and_is_named_for_it():
    budget = method.Budget(lr=2e-2, warm_lr=2e-3)
    prof, plain = method.Profile("w", budget, 1, ""), method.Profile("w", method.Budget(lr=2e-2), 1, "")
    assert method.recipe(budget, ModelConfig("gdpp", 1), Uniform(1.0)).lr == 2e-2  # a random start only
    for cfg in (ModelConfig("gdpp", 2), ModelConfig("diag", 1), ModelConfig("full", 4)):
        assert method.recipe(budget, cfg, Uniform(1.0)).lr == 2e-3
        assert method.name(prof, cfg, Uniform(1.0), 0) != method.name(plain, cfg, Uniform(1.0), 0)
    assert method.name(prof, ModelConfig("gdpp", 1), Uniform(1.0), 0) == method.name(plain, ModelConfig("gdpp", 1), Uniform(1.0), 0)


@pytest.mark.parametrize("field, value", [("steps", 0), ("batch", 2.5), ("lr", -1.0), ("b2", 1.0), ("chunk", True), ("warm_lr", -1.0)])
def test_a_bad_budget_is_refused_by_name(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(method.Budget(), **{field: value})


def test_every_model_has_the_budgets_random_starts_and_one_where_it_has_no_warm_start():
    budget = method.Budget(random_starts=0)
    assert method.random_starts(budget, ModelConfig("gdpp", 1), Uniform(1.0)) == 1
    assert all(method.random_starts(budget, ModelConfig(v, L), Uniform(1.0)) == 0 for v, L in (("gdpp", 2), ("diag", 1), ("full", 5)))
    budget = method.Budget(random_starts=2)
    assert {method.random_starts(budget, ModelConfig(v, L), n) for v in ("gdpp", "diag", "full") for L in (1, 4) for n in NOISES} == {2}


def test_a_model_is_trained_after_every_model_it_starts_from():
    budget = method.Budget()
    order = method.lineage(budget, ModelConfig("full", 2), Uniform(1.0))
    assert order == [ModelConfig(v, L) for v, L in (("gdpp", 1), ("diag", 1), ("full", 1), ("gdpp", 2), ("diag", 2), ("full", 2))]
    assert method.lineage(dataclasses.replace(budget, warm_starts=False), ModelConfig("full", 2), Uniform(1.0)) == [ModelConfig("full", 2)]


def test_the_profiles_are_budgets_of_the_method_and_the_papers_has_no_warm_start():
    assert set(method.PROFILES) == {"brisk", "quick", "paper", "tiny"} and method.DEFAULT == "brisk"
    brisk = method.get_profile("brisk").budget
    assert (brisk.schedule, brisk.plateau) == ("wsd", 0.05)
    assert look_steps(brisk.phase, brisk.steps) == [200, 400, 800, 1600, 3200]  # a look after 200 held steps and each doubling
    quick = method.get_profile("quick").budget  # the same rule, a smaller cap and batch
    assert dataclasses.replace(quick, steps=brisk.steps, batch=brisk.batch) == brisk and (quick.steps, quick.batch) == (400, 256)
    assert look_steps(quick.phase, quick.steps) == [200, 400]
    paper = method.get_profile("paper").budget
    cfg = ModelConfig("full", 7)
    assert method.parents(paper, cfg, Uniform(5.0)) == (None, None) and method.random_starts(paper, cfg, Uniform(5.0)) == 1
    tc = method.recipe(paper, cfg, Uniform(5.0))
    assert (tc.steps, tc.batch, tc.lr, tc.schedule, tc.clip, tc.normalise) == (200_000, 2048, 1e-4, "constant", 0.0, False)
    with pytest.raises(ValueError, match="unknown training profile 'grow'"):
        method.get_profile("grow")
    with pytest.raises(TypeError, match="warm_starts must be a bool"):
        method.Budget(warm_starts=1)
    with pytest.raises(TypeError, match="budget must be a Budget"):
        method.Profile("x", {"steps": 10}, 1, "")


def test_a_name_is_a_hash_of_the_key_and_the_key_holds_the_names_of_the_parents():
    prof = method.get_profile("brisk")
    noise = Uniform(5.0)
    key = method.key(prof, ModelConfig("full", 3), noise, 2)
    assert key["grown_from"] == method.name(prof, ModelConfig("full", 2), noise, 2)
    assert key["embedded_from"]["name"] == method.name(prof, ModelConfig("diag", 3), noise, 2)
    assert key["train"] == method.recipe(prof.budget, ModelConfig("full", 3), noise).to_json() and key["seed"] == 2
    assert method.name(prof, ModelConfig("full", 3), noise, 2).startswith("full-L3-H1-u5-s2-")


def test_the_names_of_a_lineage_are_those_of_each_model_alone():
    prof, noise = method.get_profile("brisk"), Uniform(5.0)
    lineage = method.names(prof, ModelConfig("full", 4), noise, 3)
    assert list(lineage) == method.lineage(prof.budget, ModelConfig("full", 4), noise)
    assert all(n == method.name(prof, c, noise, 3) for c, n in lineage.items())


def test_the_wsd_rule_trains_each_candidate_on_while_it_falls_and_can_still_matter():
    go = lambda looks, starts, left=3: method.still_falling(np.array(looks, float), np.array(starts, float), 0.02, left).tolist()
    # the first look: every finite candidate goes on, one that rose too (a doubling to leave its start's basin)
    assert go([[0.5], [1.2]], [0.9, 1.0]) == [True, True] and go([[np.inf]], [0.1]) == [False] and go([[0.5]], [0.9], left=0) == [False]
    # later: each candidate against its own lowest earlier copy; one that training made worse stops once its fall
    # cannot take it below the model's best (an exact embedding)
    assert go([[0.5, 0.45], [1.2, 1.1]], [0.9, 1.0]) == [True, False]
    assert go([[np.inf, 5.0]], [np.inf]) == [True]  # nothing finite before: any finite copy falls
    # a fall too small to count, relative to the candidate's lowest earlier copy
    assert go([[0.5, 0.495]], [1.0]) == [False] and go([[0.5, 0.48]], [1.0]) == [True]
    # a grown candidate above its start (the parent, 0.25) that falls goes on while its fall can take it below the model's best;
    # one whose fall repeated for the doublings left stays above it stops
    assert go([[0.30, 0.28], [0.90, 0.80]], [0.25, 1.0], left=3) == [True, False]  # 0.28 - 3 x 0.02 < 0.245; 0.80 - 3 x 0.10 > 0.245
    assert go([[0.30, 0.28], [0.90, 0.80]], [0.25, 1.0], left=6) == [True, True]  # 0.80 - 6 x 0.10 < 0.25 x 0.98
    assert go([[0.30, 0.29]], [0.25], left=3) == [False]  # it falls, but 0.29 - 3 x 0.01 stays above 0.245
    assert go([[0.9, 0.8]], [1.0], left=0) == [False]  # no doubling left
    # a stopped candidate's later looks are NaN, and it stays out of the reference
    assert go([[0.5, np.nan, np.nan], [0.9, 0.6, 0.4]], [1.0, 1.0]) == [False, True]
    assert go([[-0.01, -0.0103]], [1.0]) == [True] and go([[-0.01, -0.0101]], [1.0]) == [False]  # a fall of the score's size, below 0 too
    cosine, wsd = method.Budget(), method.Budget(steps=4000, schedule="wsd", phase=200, cooldown=200, plateau=0.01)
    # 4000 held steps, looks after 200, 400 ... 3200: after the first, four doublings are left; after the fifth, none
    assert method.falling_rule(wsd, np.array([1.0]))(np.array([[0.5]])).tolist() == [True]
    assert method.falling_rule(wsd, np.array([1.0]))(np.array([[0.9, 0.8, 0.7, 0.6, 0.5]])).tolist() == [False]
    cfg, noise = ModelConfig("diag", 3), Uniform(1.0)
    key = method.key(method.Profile("a", wsd, 1, ""), cfg, noise, 0)
    assert key["wsd"]["plateau"] == 0.01 and key["train"]["phase"] == 200 and key["train"]["schedule"] == "wsd"
    assert "wsd" not in method.key(method.Profile("a", cosine, 1, ""), cfg, noise, 0)
    with pytest.raises(ValueError, match="phase"):
        method.Budget(schedule="wsd", phase=0)

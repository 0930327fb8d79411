"""The study's grid as the runner walks it: training order, disjoint shards that keep a lineage together,
and the cost behind the ETA."""

from lintx import grid
from lintx.method import get_profile
from lintx.model import ModelConfig
from lintx.tasks import noise_from_label

FAST = get_profile("fast")


def test_a_noise_setting_stays_in_one_shard_depth_by_depth_with_the_seeds_of_a_model_in_a_row():
    """Every model of a noise setting in one shard (its warm starts' parents are trained there), parents
    before children, and the seeds of a model one after the other (they share its compiled step); with
    fewer noise settings than shards, a noise setting and seed is the unit. The shards' union is the grid."""
    jobs = grid.jobs(FAST, [0, 1], depths=[1, 2], columns=["u1", "c13", "u3"], deep_u5=False)
    assert len(jobs) == 2 * 2 * 3 * 3
    shards = [grid.shard(jobs, i, 2) for i in range(2)]
    assert sorted(map(str, sum(shards, []))) == sorted(map(str, jobs))
    assert [{n.label for _, n, _ in s} for s in shards] == [{"c13", "u3"}, {"u1"}]
    first = [(c.variant, c.layers, s) for c, n, s in shards[0] if n.label == "c13"]
    assert first == [(v, L, s) for L in (1, 2) for v in ("gdpp", "diag", "full") for s in (0, 1)]
    one = grid.jobs(FAST, [0, 1], depths=[1, 2], columns=["u1"], deep_u5=False)
    assert [{s for _, _, s in grid.shard(one, i, 2)} for i in range(2)] == [{0}, {1}]


def test_the_default_seeds_are_the_profiles_and_the_study_is_its_1065_models():
    assert len(grid.jobs(FAST)) == 1065
    assert {s for _, _, s in grid.jobs(FAST)} == set(range(FAST.seeds))


def test_cost_grows_with_depth_batch_and_candidates():
    u5 = noise_from_label("u5")
    one, two = (grid.cost(FAST, ModelConfig("gdpp", L), u5) for L in (1, 2))
    assert two == 2 * one  # one random start at 1 layer; grown only at 2
    diag, full = (grid.cost(FAST, ModelConfig(v, 3), u5) for v in ("diag", "full"))
    assert full == 2 * diag  # FULL at d = 10 trains at twice DIAG's batch, from as many starts


def test_any_shape_and_head_count_is_a_grid_and_a_bad_one_is_refused_by_name():
    import pytest

    jobs = grid.jobs(FAST, [0], depths=[1, 2], columns=["u5"], variants=["diag", "full"], deep_u5=False, d=5, n=10, heads=2)
    assert {(c.d, c.n, c.heads) for c, _, _ in jobs} == {(5, 10, 2)} and len(jobs) == 4
    with pytest.raises(ValueError, match="heads"):
        grid.jobs(FAST, [0], depths=[1], columns=["u5"], deep_u5=False, heads=0)
